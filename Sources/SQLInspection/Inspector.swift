import Foundation

/// Statement inspection with PostgreSQL's own parser.
///
/// Decisions (documented here because policies depend on them):
/// - **Whole-tree walk.** The JSON parse tree is walked generically: every
///   dictionary and array, recognising nodes by key (`RangeVar`, `FuncCall`,
///   `InsertStmt`…, and bare struct fields by their shape, e.g. a dictionary
///   with `relname` is a RangeVar). A write hidden in a CTE, subquery or
///   function argument is therefore found wherever the grammar allows it.
/// - **Schema resolution is approximate.** An unqualified name resolves to the
///   first schema of `searchPath` (skipping `$user`, whose schema may not
///   exist), except names starting with `pg_`, which resolve to `pg_catalog`
///   (searched first by PostgreSQL), and unqualified temporary tables, which
///   resolve to `pg_temp`. The server's real lookup tries every schema on the
///   path, so a policy should deny `search_path` changes (they are reported as
///   security-relevant settings) and may require `schemaWasWritten`.
/// - **CTE names are scoped.** An unqualified name in a read position that
///   names a CTE visible there (earlier sibling, or any sibling of a RECURSIVE
///   WITH, or an enclosing WITH) is not a relation; elsewhere the same name is
///   a real table. Write targets never refer to CTEs.
/// - **Access.** DML targets are written, everything they read from is read.
///   In DDL and other writing utilities every relation outside a nested query
///   is written (`CREATE TABLE t (LIKE s)` reports `s` as written: strict).
///   `SELECT … FOR UPDATE/SHARE` keeps its relations as read but sets
///   `writes` (it takes row locks) with the reason in `sideEffects`.
/// - **EXPLAIN without ANALYZE** does not execute its statement: it reports
///   the inner statement's relations as read and its functions, with
///   `writes == false` unless a function it calls has a side effect (the planner
///   may call it: see below). `EXPLAIN ANALYZE` reports the inner statement's facts
///   as is. Options are read as `ExplainQuery` reads them (`ExplainOptions`: the last
///   ANALYZE wins); one the gate cannot read refuses the statement.
/// - **PREPARE** reports its inner statement's facts; **EXECUTE** reports
///   `preparedName` and, until the caller resolves it with
///   `StatementFacts.resolvingExecute(with:)`, `writes == true` with
///   `SideEffect.unresolvedExecute`, so an unresolved EXECUTE is never read-only.
///   **FETCH**/**MOVE** likewise (`SideEffect.unresolvedFetch`) until resolved with
///   `StatementFacts.resolvingFetch(with:)` to the cursor's DECLARE.
/// - **COPY** TO STDOUT reads; FROM STDIN writes; TO/FROM a server file or
///   PROGRAM adds a side effect ("COPY TO PROGRAM", "COPY FROM file", …).
/// - **DO** bodies are not parsed (PL/pgSQL): a DO block always writes.
/// - **SET/RESET** of a security-relevant setting, `set_config` with such (or a
///   non-constant) name, `BEGIN/SET TRANSACTION READ WRITE` and `DISCARD ALL`
///   count as writes: they change what later statements may do.
/// - `writes` = the kind writes by itself (`StatementKind.writingKinds`, COPY
///   FROM or to a file/program) or `sideEffects` is not empty.
/// - Unknown node kinds map to `unknown`, which writes.
///
/// - **Not visible in the text** (limits a policy must accept or close with
///   database privileges): code that runs server-side on its own — triggers,
///   rules, column defaults, functions inside views, operators and casts backed
///   by user functions, and the bodies of DO blocks and called procedures.
/// - A data-modifying statement nested anywhere (a CTE, or `COPY (DELETE …
///   RETURNING …) TO STDOUT`) is reported as "data-modifying CTE".
///
/// Performance (this machine, `swiftc -O`, the 240-character three-table
/// SELECT of `BehaviourTests.benchmark`): libpg_query's JSON parse alone
/// ~97k/s; `statementFacts` (parse + JSON read + walk) ~19k/s; `inspect`
/// (plus fingerprint and normalization, each a further parse) ~14k/s. The
/// JSON read was the bottleneck with `JSONSerialization` (~7k/s in all), hence
/// `TreeJSON`. A gate can cache `statementFacts` per exact text, never per
/// normalized text (a decision may depend on a literal such as
/// `set_config`'s setting name).
public enum SQLInspector {
    /// Inspect every statement of `sql`, with fingerprint and normalized text.
    public static func inspect(_ sql: String, searchPath: [String] = ["public"]) throws(SQLParseError) -> Inspection {
        let statements = try statementFacts(sql, searchPath: searchPath)
        return Inspection(statements: statements,
                          fingerprint: try PgQuery.fingerprint(sql),
                          normalized: try PgQuery.normalize(sql))
    }

    /// The per-statement facts only (one parse; no fingerprint or normalization).
    public static func statementFacts(_ sql: String, searchPath: [String] = ["public"]) throws(SQLParseError) -> [StatementFacts] {
        let json = try PgQuery.parseJSON(sql)
        guard let root = TreeJSON.parse(json)?.object else {
            throw SQLParseError(message: "unreadable parse tree", cursorPosition: 0)
        }
        let schema = searchPath.first(where: { $0 != "$user" && !$0.isEmpty }) ?? "public"
        let bytes = Array(sql.utf8)
        var out: [StatementFacts] = []
        for case .obj(let raw) in root["stmts"]?.array ?? [] {
            let text = PgQuery.slice(bytes, location: raw["stmt_location"]?.integer ?? 0,
                                     length: raw["stmt_len"]?.integer ?? 0)
            guard let (node, body) = Walker.node(raw["stmt"]) else { continue }
            var facts = Walker.facts(node: node, body: body, defaultSchema: schema)
            if let refusal = facts.parseRefusal {
                // An option the gate cannot read as the server would: the whole request is refused.
                throw SQLParseError(message: refusal.reason, cursorPosition: (raw["stmt_location"]?.integer ?? 0) + 1)
            }
            facts.text = text
            out.append(facts)
        }
        return out
    }
}

/// The generic tree walk, collecting facts for one top-level statement.
struct Walker {
    let defaultSchema: String
    var relations: [RelationAccess] = []
    var seen: Set<RelationAccess> = []
    var functions: [String] = []
    var unknownFunctions: [String] = []
    /// Operator names as written (`+`, `review17.#~#`), for `StatementFacts.operators`.
    var operators: [String] = []
    var discardsTemporaryTables = false
    var sideEffects: [String] = []
    var settings: [Setting] = []
    /// Why the gate refuses the statement whatever the policy (see `Refusal`).
    var refusals: [Refusal] = []
    var preparedName: String?
    var projections: [[String]] = []
    var outputs: [[[String]]]?
    var opaqueResult = false
    var renamedColumns: [String] = []
    /// Bare `*` column references seen anywhere in the tree.
    var bareStars = 0
    var cursorName: String?
    var aliases: [String: RelationAccess] = [:]
    var carriesSecret = false
    var copy: CopyFacts?

    /// `{"NodeName": {...}}` → (name, body).
    static func node(_ value: JSON?) -> (String, JSONObject)? {
        guard case .obj(let d)? = value, d.pairs.count == 1 else { return nil }
        return node(d)
    }

    static func node(_ d: JSONObject) -> (String, JSONObject)? {
        guard d.pairs.count == 1, case .obj(let body) = d.pairs[0].1,
              let first = d.pairs[0].0.utf8.first, first >= 0x41, first <= 0x5A else { return nil }
        return (d.pairs[0].0, body)
    }

    static func facts(node: String, body: JSONObject, defaultSchema: String) -> StatementFacts {
        let kind = StatementKind.of(node: node, body: body)
        var w = Walker(defaultSchema: defaultSchema)
        var innerKind: String?
        var kindWrites = StatementKind.writingKinds.contains(kind)
        switch node {
        case "ExplainStmt", "PrepareStmt", "DeclareCursorStmt":
            // Wrappers: the facts are the inner statement's.
            guard let (iNode, iBody) = Walker.node(body["query"]) else { break }
            let inner = facts(node: iNode, body: iBody, defaultSchema: defaultSchema)
            innerKind = inner.kind
            // Even when not executed (EXPLAIN, PREPARE): strict, and such a statement has no use.
            w.refusals = inner.refusals
            var analyzes = false
            if node == "ExplainStmt" {
                do throws(OptionError) { analyzes = try ExplainOptions.read(body["options"]).analyze }
                catch { w.addRefusal(error.message, kind: .cannotFollow); analyzes = true }
            }
            if node == "ExplainStmt" && !analyzes {
                // Planned, not executed: nothing is written. But the planner folds immutable and
                // stable functions with constant arguments, and EXPLAIN VERBOSE prints what they
                // returned, so the functions count as called: their side effects are kept
                // (fail closed: a volatile one would not run, and is reported all the same). Settings
                // are not carried: set_config is volatile, never run at plan time, so the session's
                // search path stays as it was.
                w.functions = inner.functions
                w.unknownFunctions = inner.unknownFunctions
                w.operators = inner.operators
                w.sideEffects = inner.sideEffects.filter {
                    $0.hasPrefix("side-effect function ") || $0.hasPrefix("set_config(")
                }
                for r in inner.relations {
                    w.addRelation(RelationAccess(schema: r.schema, name: r.name, access: .read,
                                                 schemaWasWritten: r.schemaWasWritten))
                }
            } else {
                w.relations = inner.relations
                w.functions = inner.functions
                w.unknownFunctions = inner.unknownFunctions
                w.operators = inner.operators
                w.sideEffects = inner.sideEffects
                w.settings = inner.settings
                kindWrites = inner.writes
            }
            w.projections = inner.projections
            w.outputs = inner.outputs
            w.opaqueResult = inner.opaqueResult
            w.renamedColumns = inner.renamedColumns
            w.bareStars = inner.nestedStar ? 1 : 0
            if node == "DeclareCursorStmt" { w.cursorName = body["portalname"]?.string }
            w.aliases = inner.aliases
            w.carriesSecret = inner.carriesSecret
            w.copy = inner.copy
            if node == "PrepareStmt" { w.preparedName = body["name"]?.string }
        default:
            w.visit(node: node, body: body, access: kindWrites ? .write : .read, ctes: [], top: true)
            if node == "CopyStmt" {
                kindWrites = (body["is_from"]?.boolean ?? false) || (body["is_program"]?.boolean ?? false)
                    || body["filename"]?.string != nil
            }
        }
        let writes = kindWrites || !w.sideEffects.isEmpty
        if secretBearing.contains(node) { w.carriesSecret = true }
        var facts = StatementFacts(kind: kind, innerKind: innerKind, relations: w.relations,
                                   functions: w.functions, writes: writes, sideEffects: w.sideEffects,
                                   settings: w.settings, preparedName: w.preparedName, text: "")
        facts.projections = w.projections
        facts.unknownFunctions = w.unknownFunctions
        facts.operators = w.operators
        facts.discardsTemporaryTables = w.discardsTemporaryTables
        facts.cursorName = w.cursorName
        facts.refusals = w.refusals
        facts.opaqueResult = w.opaqueResult || kind == "unknown" || !w.unknownFunctions.isEmpty
            || w.functions.contains(where: SideEffectFunctions.runsQuery)
        // A prepared or cursor SELECT returns its SELECT's columns; EXPLAIN returns plan text.
        switch node {
        case "SelectStmt": facts.outputs = Walker.outputs(body)
        case "CopyStmt": facts.outputs = Walker.node(body["query"]).flatMap { $0.0 == "SelectStmt" ? Walker.outputs($0.1) : nil }
        case "ExplainStmt": facts.outputs = nil
        default: facts.outputs = w.outputs
        }
        facts.aliases = w.aliases
        facts.renamedColumns = w.renamedColumns
        // Only a plain SELECT's own list has its `*` columns' origins reported by the protocol.
        let direct = node == "SelectStmt" ? ColumnLineage.directStars(body) : 0
        facts.nestedStar = w.bareStars > direct
        facts.carriesSecret = w.carriesSecret
        facts.copy = w.copy
        return facts
    }

    /// Per output column of a plain SELECT, the column references in its expression; nil for set
    /// operations (UNION…) and lists with `*`, whose columns cannot be told apart by position.
    static func outputs(_ select: JSONObject) -> [[[String]]]? {
        guard let list = select["targetList"]?.array, !list.isEmpty, select["withClause"] == nil,
              (select["op"]?.string ?? "SETOP_NONE") == "SETOP_NONE",
              (select["fromClause"]?.array ?? []).allSatisfy(isPlainTables) else { return nil }
        var out: [[[String]]] = []
        for entry in list {
            var refs: [[String]] = []
            collectReferences(entry, into: &refs)
            if refs.contains(where: { $0.last == "*" }) { return nil }
            out.append(refs)
        }
        return out
    }

    /// A FROM item that is tables only: a RangeVar, or joins of RangeVars.
    static func isPlainTables(_ item: JSON) -> Bool {
        guard let (name, body) = node(item) else { return false }
        switch name {
        case "RangeVar": return true
        case "JoinExpr": return body["larg"].map(isPlainTables) == true && body["rarg"].map(isPlainTables) == true
        default: return false
        }
    }

    static func collectReferences(_ value: JSON, into refs: inout [[String]]) {
        switch value {
        case .arr(let a): for v in a { collectReferences(v, into: &refs) }
        case .obj(let d):
            if let (name, body) = node(d), name == "ColumnRef" {
                let fields = (body["fields"]?.array ?? []).map { f -> String in
                    guard let (n, b) = node(f) else { return "?" }
                    return n == "A_Star" ? "*" : (b["sval"]?.string ?? "?")
                }
                if !refs.contains(fields) { refs.append(fields) }
                if let row = attributeNotationRow(fields), !refs.contains(row) { refs.append(row) }
                return
            }
            if let (name, body) = node(d), name == "A_Indirection" {
                var scratch = Walker(defaultSchema: "")
                scratch.addIndirection(body)
                for r in scratch.projections where !refs.contains(r) { refs.append(r) }
            }
            for (_, v) in d.pairs { collectReferences(v, into: &refs) }
        default: break
        }
    }

    /// Statements whose text may hold a credential: role passwords, user-mapping and server
    /// options, subscription connection strings.
    static let secretBearing: Set<String> = [
        "CreateRoleStmt", "AlterRoleStmt", "CreateUserMappingStmt", "AlterUserMappingStmt",
        "CreateForeignServerStmt", "AlterForeignServerStmt", "CreateSubscriptionStmt", "AlterSubscriptionStmt",
    ]

    // MARK: walking

    mutating func walk(_ value: JSON, _ access: Access, _ ctes: Set<String>) {
        switch value {
        case .arr(let array):
            for v in array { walk(v, access, ctes) }
        case .obj(let dict):
            if let (name, body) = Walker.node(dict) {
                visit(node: name, body: body, access: access, ctes: ctes, top: false)
            } else {
                walkFields(dict, access, ctes)
            }
        default:
            break
        }
    }

    /// A struct's fields; `override` sets the access of one direct field.
    mutating func walkFields(_ dict: JSONObject, _ access: Access, _ ctes: Set<String>,
                             override: (field: String, access: Access)? = nil) {
        // One pass to find the keys that need attention.
        var isRangeVar = false, isFuncCall = false
        var with: JSONObject?, locks: [JSON]?, into: JSON?
        for (key, value) in dict.pairs {
            switch key {
            case "relname": isRangeVar = true
            case "funcformat": isFuncCall = true
            case "withClause": with = value.object
            case "lockingClause": locks = value.array
            case "intoClause": into = value
            case "colnames", "aliascolnames": addRenamed(value)
            default: break
            }
        }
        if isRangeVar {  // a RangeVar, bare or unwrapped
            addRangeVar(dict, access, ctes)
            return
        }
        if isFuncCall {  // a FuncCall, wrapped or bare (CALL's funccall)
            addFunction(dict)
        }
        var scope = ctes
        if let with {
            scope = walkWith(with, ctes)
        }
        for lock in locks ?? [] {
            let strength = Walker.node(lock)?.1["strength"]?.string ?? ""
            addSideEffect([
                "LCS_FORUPDATE": "FOR UPDATE", "LCS_FORNOKEYUPDATE": "FOR NO KEY UPDATE",
                "LCS_FORSHARE": "FOR SHARE", "LCS_FORKEYSHARE": "FOR KEY SHARE",
            ][strength] ?? "FOR UPDATE")
        }
        if let into {
            addSideEffect(SideEffect.selectInto)
            walk(into, .write, scope)
        }
        for (key, value) in dict.pairs where key != "withClause" && key != "intoClause" {
            switch value {
            case .obj, .arr:
                walk(value, override?.field == key ? override!.access : access, scope)
            default:
                break
            }
        }
    }

    /// Walk CTE bodies with the names each may see; returns the scope for the statement body.
    mutating func walkWith(_ with: JSONObject, _ ctes: Set<String>) -> Set<String> {
        let list = (with["ctes"]?.array ?? []).compactMap { Walker.node($0)?.1 }
        let names = list.compactMap { $0["ctename"]?.string }
        let recursive = with["recursive"]?.boolean ?? false
        var scope = recursive ? ctes.union(names) : ctes
        for cte in list {
            if let names = cte["aliascolnames"] { addRenamed(names) }
            if let q = cte["ctequery"] { walk(q, .read, scope) }
            if let n = cte["ctename"]?.string { scope.insert(n) }
        }
        return ctes.union(names)
    }

    mutating func visit(node: String, body: JSONObject, access: Access, ctes: Set<String>, top: Bool) {
        switch node {
        case "SelectStmt":
            walkFields(body, .read, ctes)
        case "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt":
            if !top { addSideEffect(SideEffect.dataModifyingCTE) }
            walkFields(body, .read, ctes, override: ("relation", .write))
        case "CopyStmt":
            let from = body["is_from"]?.boolean ?? false
            let direction = from ? "FROM" : "TO"
            if body["is_program"]?.boolean ?? false {
                addSideEffect("COPY \(direction) PROGRAM")
            } else if body["filename"]?.string != nil {
                addSideEffect("COPY \(direction) file")
            }
            if top {
                do throws(OptionError) { copy = try CopyOptions.facts(body) } catch { addRefusal(error.message, kind: .cannotFollow) }
            }
            walkFields(body, .read, ctes, override: ("relation", from ? .write : .read))
        case "ColumnRef":
            // Every reference, wherever it is: a value can reach a result through FROM-clause
            // functions, VALUES, subqueries and CTEs, not only through select lists.
            let fields = (body["fields"]?.array ?? []).map { f -> String in
                guard let (name, b) = Walker.node(f) else { return "?" }
                return name == "A_Star" ? "*" : (b["sval"]?.string ?? "?")
            }
            if fields == ["*"] { bareStars += 1 }
            if !fields.isEmpty && !projections.contains(fields) { projections.append(fields) }
            addAttributeNotation(fields)
        case "A_Indirection":
            addIndirection(body)
            walkFields(body, access, ctes)
        case "RangeVar":
            addRangeVar(body, access, ctes)
        case "FuncCall":
            walkFields(body, access, ctes)  // recorded there, like a bare FuncCall
        case "A_Expr", "SubLink", "SortBy", "CaseExpr", "JoinExpr":
            // Operators run functions too, found by name on the search path (OperatorLookup).
            addOperators(node: node, body: body)
            walkFields(body, access, ctes)
        case "DoStmt":
            addSideEffect(SideEffect.doBlock)
            opaqueResult = true  // its body (not parsed) may read anything and RAISE it as a notice
        case "CallStmt":
            addSideEffect(SideEffect.call)
            opaqueResult = true  // a procedure's OUT parameters come back as a row
            walkFields(body, access, ctes)
        case "NotifyStmt":
            addSideEffect("NOTIFY")
        case "ExecuteStmt":
            preparedName = body["name"]?.string
            opaqueResult = true  // until resolved to what was prepared
            addSideEffect(SideEffect.unresolvedExecute)
            walkFields(body, .read, ctes)
        case "FetchStmt":
            cursorName = body["portalname"]?.string
            opaqueResult = true  // until resolved to the cursor's query
            // Like an unresolved EXECUTE: a cursor the caller did not see declared runs a query
            // (and its functions) no one decided on, so it is never read-only.
            addSideEffect(SideEffect.unresolvedFetch)
        case "ClosePortalStmt":
            cursorName = body["portalname"]?.string ?? "*"  // CLOSE ALL
        case "DeallocateStmt":
            preparedName = body["name"]?.string
        case "VariableSetStmt":
            addVariableSet(body)
        case "CreateFunctionStmt", "AlterFunctionStmt":
            // A SET clause applies while the function runs, not to this session: checked (above, in
            // addVariableSet) but not reported as a change of the session's settings, which the
            // session would otherwise follow (its search path).
            let before = settings.count
            walkFields(body, .write, ctes)
            settings.removeSubrange(before...)
        case "AlterRoleSetStmt", "AlterDatabaseSetStmt", "AlterSystemStmt":
            // A later login's defaults, not this session's: refused if the gate could not read
            // with them, and not followed as a change of this session. (The SET is a bare struct here.)
            if let set = body["setstmt"]?.object, Walker.node(set) == nil { addParserSettingRefusal(set) }
            walkFields(body, .write, ctes)
        case "TransactionStmt":
            addTransactionModes(body["options"], name: "transaction_read_only")
            // Two-phase commit: PREPARE TRANSACTION keeps a transaction (and its locks) past the
            // session; COMMIT/ROLLBACK PREPARED finish any prepared transaction of the same account.
            if let phase = ["TRANS_STMT_PREPARE": "PREPARE TRANSACTION", "TRANS_STMT_COMMIT_PREPARED": "COMMIT PREPARED",
                            "TRANS_STMT_ROLLBACK_PREPARED": "ROLLBACK PREPARED"][body["kind"]?.string ?? ""] {
                addSideEffect(phase)
            }
        case "DiscardStmt":
            if body["target"]?.string == "DISCARD_ALL" { addSetting(Setting(name: "*", value: nil), verb: "DISCARD ALL") }
            if ["DISCARD_ALL", "DISCARD_TEMP"].contains(body["target"]?.string ?? "") { discardsTemporaryTables = true }
        case "CheckPointStmt":
            addSideEffect("CHECKPOINT")
        case "LoadStmt":
            addSideEffect("LOAD library")
        case "DropStmt":
            addObjectNames(body["objects"]?.array ?? [], type: body["removeType"]?.string)
            walkFields(body, .write, ctes)
        case "CommentStmt":
            if let o = body["object"] { addObjectNames([o], type: body["objtype"]?.string) }
            walkFields(body, .write, ctes)
        default:
            // Writing DDL/utility: relations outside nested queries are written.
            // (Suffix test first: expression nodes are by far the most common here.)
            let writing = top ? access == .write
                : node.hasSuffix("Stmt") && StatementKind.writingKinds.contains(StatementKind.of(node: node, body: body))
            walkFields(body, writing ? .write : access, ctes)
        }
    }
}
