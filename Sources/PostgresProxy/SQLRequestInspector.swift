import Foundation
import CaptureFormat
import NIOConcurrencyHelpers
import Policy
import ProxyCore
import SQLInspection

/// Inspects PostgreSQL requests with PostgreSQL's own parser and fills their recorded
/// facts. Results are cached by exact statement text — never by normalized text, since a
/// decision may depend on a literal (`set_config('role', …)`) — so prepared statements and
/// repeated queries are parsed once. What depends on the session (its search path, the
/// statements it PREPAREd) is applied per session on top of the cached facts.
public final class SQLRequestInspector: RequestInspector {
    /// The facts of one query string, parsed once. Unqualified names are resolved to `public`
    /// here; sessions with another search path re-resolve them.
    /// Immutable and shared: a class, so a cache hit is one retain, not one per field.
    final class Entry: Sendable {
        let facts: [StatementFacts]
        let fingerprint: String
        let normalized: String
        let parseError: String?
        /// The request as it is when no session state changes it (the common case, kept ready).
        let inspected: InspectedRequestParts
        /// Some relation is unqualified, or a statement EXECUTEs a prepared statement.
        let dependsOnSession: Bool
        /// Some statement changes what later ones mean: PREPARE, DEALLOCATE, a setting, DDL.
        let changesSession: Bool

        init(facts: [StatementFacts], fingerprint: String, normalized: String, parseError: String?, inspected: InspectedRequestParts,
             dependsOnSession: Bool, changesSession: Bool) {
            self.facts = facts; self.fingerprint = fingerprint; self.normalized = normalized; self.parseError = parseError
            self.inspected = inspected; self.dependsOnSession = dependsOnSession; self.changesSession = changesSession
        }
    }

    /// An entry with its parts resolved for one session's state.
    final class Resolved {
        let entry: Entry
        let parts: InspectedRequestParts
        /// What `ConfirmedSessionState` checks the answers against, for a text that changes
        /// nothing in the session (SQLSessionInspector.forwarded): made once, not per request.
        var planned: [ConfirmedSessionState.Planned]?
        init(entry: Entry, parts: InspectedRequestParts) { self.entry = entry; self.parts = parts }
    }

    struct InspectedRequestParts {
        let statements: [StatementInfo]
        var projections: [Projection]
        var rowStreams: [RowStreamLayout]
        var carriesSecret: Bool
        var kinds: [String]
        var resources: [CaptureFormat.Resource]
        var functions: [String]
        /// A statement the parser rejected (its literals are withheld): found once, not per request.
        let unparsed: Bool

        init(statements: [StatementInfo], projections: [Projection], rowStreams: [RowStreamLayout], carriesSecret: Bool,
             kinds: [String], resources: [CaptureFormat.Resource], functions: [String]) {
            self.statements = statements; self.projections = projections; self.rowStreams = rowStreams
            self.carriesSecret = carriesSecret; self.kinds = kinds; self.resources = resources; self.functions = functions
            unparsed = statements.contains { $0.parseError != nil }
        }
    }

    static let defaultSchema = "public"
    let cache = NIOLockedValueBox<[String: Entry]>([:])
    let capacity: Int
    /// Each target's catalog, for resolving unqualified names.
    let catalogs: [String: CatalogCache]

    /// `catalogs`: each target's, for name resolution; none outside a running gate.
    public convenience init(capacity: Int = 4096) { self.init(catalogs: [:], capacity: capacity) }

    init(catalogs: [String: CatalogCache], capacity: Int = 4096) {
        self.catalogs = catalogs
        self.capacity = capacity
    }

    public func makeSession(target: String, parameters: [KeyValue]) -> any SessionInspector {
        SQLSessionInspector(inspector: self, catalog: catalogs[target], searchPath: SearchPath.fromStartup(parameters))
    }

    func lookup(_ text: String) -> Entry {
        if let hit = cache.withLockedValue({ $0[text] }) { return hit }
        let entry = Self.entry(text)
        cache.withLockedValue { c in
            if c.count >= capacity { c.removeAll(keepingCapacity: true) }
            c[text] = entry
        }
        return entry
    }

    static func entry(_ text: String) -> Entry {
        do {
            let inspection = try SQLInspector.inspect(text, searchPath: [defaultSchema])
            let dependent = inspection.statements.contains { s in
                s.kind == "execute" || s.kind == "fetch" || s.relations.contains { !$0.schemaWasWritten }
                    // Checked against the catalog's functions, operators and views (CatalogRoutines).
                    || !s.functions.isEmpty || !s.operators.isEmpty || !s.relations.isEmpty || !s.projections.isEmpty
            }
            let changes = inspection.statements.contains { s in
                ["prepare", "deallocate", "rollback"].contains(s.kind) || !s.settings.isEmpty || (s.cursorName != nil && s.kind != "fetch")
                    || s.discardsTemporaryTables
                    || (StatementKind.writingKinds.contains(s.kind) && !["insert", "update", "delete", "merge", "lock"].contains(s.kind))
            }
            return Entry(facts: inspection.statements, fingerprint: inspection.fingerprint, normalized: inspection.normalized,
                         parseError: nil, inspected: parts(inspection.statements), dependsOnSession: dependent, changesSession: changes)
        } catch {
            // Fail closed: what cannot be parsed is denied, with the parser's message.
            return Entry(facts: [], fingerprint: "", normalized: "", parseError: "\(error)",
                         inspected: InspectedRequestParts(statements: [.unparseable("\(error)")], projections: [.unknown], rowStreams: [],
                                                          carriesSecret: false, kinds: ["unparseable"], resources: [], functions: []),
                         dependsOnSession: false, changesSession: false)
        }
    }

    /// Everything the pipeline needs from a list of statement facts.
    static func parts(_ facts: [StatementFacts]) -> InspectedRequestParts {
        var kinds: [String] = [], resources: [CaptureFormat.Resource] = [], functions: [String] = []
        var projections: [Projection] = [], rowStreams: [RowStreamLayout] = []
        for s in facts {
            if !kinds.contains(s.kind) { kinds.append(s.kind) }
            for r in s.relations {
                let res = CaptureFormat.Resource(schema: r.schema, name: r.name, access: r.access == .read ? .read : .write)
                if !resources.contains(res) { resources.append(res) }
            }
            for f in s.functions where !functions.contains(f) { functions.append(f) }
            projections.append(Projection(references: s.projections, outputs: s.outputs,
                                          aliases: s.aliases.mapValues { TableName(schema: $0.schema, name: $0.name) },
                                          relations: s.relations.map { TableName(schema: $0.schema, name: $0.name) },
                                          opaque: s.opaqueResult, renamed: Set(s.renamedColumns), nestedStar: s.nestedStar))
            if let copy = s.copy, copy.toClient {
                let table = copy.fromQuery ? nil : s.relations.first.map { TableName(schema: $0.schema, name: $0.name) }
                let format: RowStreamLayout.Format = copy.format == .csv ? .csv : copy.format == .text ? .text : .binary
                rowStreams.append(RowStreamLayout(format: format, delimiter: copy.delimiter, header: copy.header, table: table, columns: copy.columns,
                                                  quote: copy.quote, escape: copy.escape, null: copy.null, unfollowable: copy.unfollowable))
            }
        }
        return InspectedRequestParts(statements: facts.map(\.policyInfo), projections: projections, rowStreams: rowStreams,
                                     carriesSecret: facts.contains(where: \.carriesSecret),
                                     kinds: kinds, resources: resources, functions: functions)
    }

    /// A dry run outside any session (`capture-proxy explain`): the same facts the gate decides on.
    public static func explain(_ text: String, searchPath: [String]) -> (facts: [StatementFacts], request: InspectedRequest, fingerprint: String, normalized: String) {
        let entry = Self.entry(text)
        let session = SQLSessionInspector(inspector: SQLRequestInspector(), catalog: nil, searchPath: SearchPath(schemas: searchPath))
        let facts = session.resolve(entry)
        let inspected = session.inspected(.postgres(PostgresRequest(text: text, path: .simple)), entry: entry,
                                          parts: entry.parseError == nil ? SQLRequestInspector.parts(facts) : entry.inspected)
        return (facts, inspected, entry.fingerprint, entry.normalized)
    }
}

/// A session's view: its search path and the statements it PREPAREd, applied to cached facts.
final class SQLSessionInspector: SessionInspector {
    let inspector: SQLRequestInspector
    let catalog: CatalogCache?
    var searchPath: SearchPath { didSet { if searchPath != oldValue { resolved = [:]; stateChanges &+= 1 } } }
    /// Cursors DECLAREd in this session, so a FETCH is inspected as the cursor's query.
    var cursors: [String: StatementFacts] = [:] { didSet { resolved = [:]; stateChanges &+= 1 } }
    /// Temporary tables this session created: PostgreSQL looks in pg_temp first, so an
    /// unqualified name of one of them means the temporary table, whatever the search path.
    var tempTables: Set<String> = [] { didSet { if tempTables != oldValue { resolved = [:]; stateChanges &+= 1 } } }
    var stateChanges = 0
    /// Changes forwarded but not yet confirmed by the server (see SQLSessionInspector+Confirmed).
    var pending = PendingChanges() { didSet { resolved = [:]; stateChanges &+= 1 } }
    /// The state at the end of the last transaction, to undo what a rollback undoes.
    var stable: StableState?
    /// The statements of the last forwarded request, for `ConfirmedSessionState`.
    var lastPlanned: [ConfirmedSessionState.Planned] = []
    var generation: Int { stateChanges &+ (catalog?.generation ?? 0) &* 1_000_003 }
    let startupPath: SearchPath
    /// How the protocol's named statements (Parse, Close: the same namespace on the server) hold
    /// a name; set by the session handler.
    var protocolStatement: (String) -> ProtocolStatementState = { _ in .free }
    /// Code the gate does not read has run in this session (`StatementFacts.runsHiddenCode`):
    /// no statement or cursor name is known to be free any more.
    var hiddenCodeRan = false
    /// Counts `forgetHiddenState` calls: the relay (RelayStateMachine+HiddenCode) compares it with
    /// the count it last followed and forgets its protocol names' contents when it moved. A counter,
    /// not a callback: the inspector is called from inside the relay's own mutating calls.
    var hiddenCodeGeneration = 0
    /// Whether the protocol side holds (or has an unconfirmed Bind of) a portal of this name:
    /// SQL cursors share the namespace. Set by the session handler.
    var protocolPortal: (String) -> Bool = { _ in false }
    /// SQL-level prepared statements (`PREPARE name AS …`), by name, with their facts.
    var prepared: [String: StatementFacts] = [:] { didSet { resolved = [:]; stateChanges &+= 1 } }
    /// Entries and their session-resolved parts by text, valid for one catalog generation and one search path.
    var resolved: [String: SQLRequestInspector.Resolved] = [:]
    var resolvedGeneration = 0

    init(inspector: SQLRequestInspector, catalog: CatalogCache?, searchPath: SearchPath) {
        self.inspector = inspector
        self.catalog = catalog
        self.searchPath = searchPath
        startupPath = searchPath
        stable = StableState(searchPath: searchPath, tempTables: [], cursors: [])
    }

    /// Consumes the request: its facts are filled in place, with no copy of what it holds.
    func inspect(_ request: consuming Request, in session: SessionContext) -> InspectedRequest {
        guard let (text, path) = request.postgresTextAndPath else { return InspectedRequest(request: request, statements: []) }
        if path == .functionCall {
            // A FunctionCall message carries an OID, not SQL: nothing to inspect, so it counts as a write.
            return InspectedRequest(request: request, statements: [StatementInfo(kind: "function_call", writes: true,
                                                                                sideEffects: ["FunctionCall message"])])
        }
        // The session's own cache first: no lock on the path of a repeated statement.
        let generation = catalog?.generation ?? 0
        if generation != resolvedGeneration || resolved.count >= 1024 { resolved = [:]; resolvedGeneration = generation }
        let hit = resolved[text]
        let entry = hit?.entry ?? inspector.lookup(text)
        // A change of a name with a change still unanswered (here or by the protocol's Parse/Close).
        if entry.changesSession, let conflict = pendingConflict(entry) {
            return InspectedRequest(request: request, statements: [.unparseable(conflict)], withheldText: SQLLiterals.withheld(text))
        }
        if let hit { return inspected(request, entry: hit.entry, parts: hit.parts) }
        let parts = entry.dependsOnSession ? SQLRequestInspector.parts(resolve(entry)) : entry.inspected
        resolved[text] = SQLRequestInspector.Resolved(entry: entry, parts: parts)
        return inspected(request, entry: entry, parts: parts)
    }

    /// The request with its recorded facts filled in, from the cached parts or from session-resolved facts.
    func inspected(_ request: consuming Request, entry: SQLRequestInspector.Entry, parts: SQLRequestInspector.InspectedRequestParts) -> InspectedRequest {
        switch consume request {
        case .postgres(var p):
            p.fingerprint = entry.fingerprint
            p.normalized = entry.normalized
            p.statementKinds = parts.kinds
            p.resources = parts.resources
            p.functions = parts.functions
            // Text the parser rejected cannot be known to carry no credential: its literals are withheld.
            let withheld = parts.unparsed ? SQLLiterals.withheld(p.text) : nil
            return InspectedRequest(request: .postgres(p), statements: parts.statements, projections: parts.projections,
                                    rowStreams: parts.rowStreams, carriesSecret: parts.carriesSecret, withheldText: withheld)
        case let other:
            return InspectedRequest(request: other, statements: [])
        }
    }

    /// The entry's facts with unqualified names resolved on this session's search path and
    /// EXECUTEs resolved to what was PREPAREd under their name.
    func resolve(_ entry: SQLRequestInspector.Entry) -> [StatementFacts] {
        let snapshot = catalog?.snapshot
        // A PREPARE earlier in the same query string counts for the EXECUTEs after it.
        // Pending PREPAREs and DECLAREs were of free names: if they fail, what uses them fails too.
        var known = prepared.merging(pending.prepared) { confirmed, _ in confirmed }
        var knownCursors = self.knownCursors()
        var pathChanged = false
        return entry.facts.map { s in
            var s = s
            s.relations = s.relations.map(requalify(snapshot, pathUnknown: pathChanged))
            s.aliases = s.aliases.mapValues(requalify(snapshot, pathUnknown: pathChanged))
            // After a search_path change earlier in the same request the gate cannot know the path (fail closed).
            if s.settings.contains(where: { $0.name == nil || $0.name == "search_path" || $0.name == "*" }) { pathChanged = true }
            if s.kind == "execute", let name = s.preparedName, let p = known[name] { s = s.resolvingExecute(with: p) }
            if s.kind == "prepare", let name = s.preparedName { known[name] = s }
            if s.kind == "fetch", let name = s.cursorName, let c = knownCursors[name] { s = s.resolvingFetch(with: c) }
            if s.isCursorDeclaration, let name = s.cursorName { knownCursors[name] = s }
            // A ROLLBACK earlier in the request may close any cursor of the transaction: none is known after it.
            if s.kind == "rollback" { knownCursors = [:] }
            if let snapshot {
                s = s.checkingRoutines(snapshot.routines, path: pathChanged || pending.pathChanges > 0 ? .unknown : searchPath)
            }
            // Code the gate does not read may replace any name and change the path (HiddenCode.swift).
            if s.runsHiddenCode { known = [:]; knownCursors = [:]; pathChanged = true }
            return s
        }
    }

    func requalify(_ snapshot: CatalogCache.Snapshot?, pathUnknown: Bool = false) -> (RelationAccess) -> RelationAccess {
        // A search_path or temporary table change not yet confirmed: the name resolves to no schema.
        let unknown = pathUnknown || pending.pathChanges > 0
        return { r in
            // `pg_…` names come as pg_catalog from the inspector; PostgreSQL looks further along the path.
            guard !r.schemaWasWritten, r.schema == SQLRequestInspector.defaultSchema || r.schema == "pg_catalog" else { return r }
            let schema = unknown || self.pending.tempTables.contains(r.name) ? ""
                : self.tempTables.contains(r.name) ? "pg_temp" : self.searchPath.resolve(r.name, in: snapshot)
            return RelationAccess(schema: schema, name: r.name, access: r.access, schemaWasWritten: false)
        }
    }

    /// The request was allowed and goes to the server: what it would change is kept as pending
    /// (see `ConfirmedSessionState`), and applied when the server confirms it (`confirmed`).
    func forwarded(_ request: InspectedRequest) {
        lastPlanned = []
        guard let (text, path) = request.request.postgresTextAndPath, path != .functionCall else { return }
        let hit = resolved[text]
        let entry = hit?.entry ?? inspector.lookup(text)
        // Code the gate does not read (a user function, also one a view calls) changes the session too.
        let changes = entry.changesSession || request.statements.contains(where: { $0.mayRunHiddenCode })
        if !changes, let hit {
            // Nothing to apply: only the kinds, for the tag check, built once per cached text
            // (the statements are the entry's; checked, since a refusal may have replaced them).
            if let planned = hit.planned, planned.count == request.statements.count,
               zip(planned, request.statements).allSatisfy({ $0.kind == $1.kind }) {
                lastPlanned = planned
                return
            }
            hit.planned = request.statements.map { ConfirmedSessionState.Planned(kind: $0.kind) }
            lastPlanned = hit.planned ?? []
            return
        }
        let facts = changes ? resolve(entry) : []
        lastPlanned = request.statements.indices.map { i in
            let change = i < facts.count ? facts[i] : nil
            return ConfirmedSessionState.Planned(kind: request.statements[i].kind, change: change.flatMap { changesSession($0) ? $0 : nil })
        }
        for s in facts where changesSession(s) {
            pend(s)
            // New tables, dropped tables, renamed columns: the next session reads the catalog again
            // (at once: a stale catalog only makes the gate read it again).
            if StatementKind.writingKinds.contains(s.kind) && !["insert", "update", "delete", "merge", "lock"].contains(s.kind) {
                catalog?.markStale()
            }
        }
    }
}

/// A session's `search_path`, as far as the gate can follow it: from the startup packet
/// (`search_path`, or `-c search_path=…` in `options`) and from SET/RESET/set_config that
/// went through the gate. An unqualified table resolves to the first schema on the path that
/// holds a relation of that name (PostgreSQL's rule) when the gate has the catalog, else to
/// the first schema on the path. `$user` is skipped.
struct SearchPath: Sendable, Equatable {
    var schemas: [String]

    init(schemas: [String]) {
        let clean = schemas.filter { !$0.isEmpty && $0 != "$user" }
        self.schemas = clean.isEmpty ? [SQLRequestInspector.defaultSchema] : clean
    }

    /// A path the gate cannot know (a change it could not follow): unqualified names resolve to
    /// no schema, so no schema rule matches them.
    static var unknown: SearchPath { var p = SearchPath(schemas: []); p.schemas = [""]; return p }

    /// `analytics, "$user", public` → [analytics, public].
    init(setting: String) {
        self.init(schemas: setting.split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        })
    }

    /// From the startup packet, read as PostgreSQL reads it (`StartupSettings`). The session
    /// handler has refused packets that cannot be read, so a failure here only means "default".
    static func fromStartup(_ parameters: [KeyValue]) -> SearchPath {
        let value = (try? StartupSettings.read(parameters))?["search_path"]
        return value.map(SearchPath.init(setting:)) ?? SearchPath(schemas: [SQLRequestInspector.defaultSchema])
    }

    /// With the catalog: the first schema on the path that has the relation, or "" when none
    /// has (no schema rule matches "", so such a statement is not allowed by schema: the name
    /// means nothing the gate knows). Without it: the first schema on the path.
    func resolve(_ table: String, in snapshot: CatalogCache.Snapshot?) -> String {
        guard let snapshot else { return table.hasPrefix("pg_") ? "pg_catalog" : schemas[0] }
        // pg_catalog is searched first unless the path names it (then where it names it), so
        // `pg_people` is the path's table when pg_catalog has none of that name.
        let effective = schemas.contains("pg_catalog") ? schemas : ["pg_catalog"] + schemas
        if let holders = snapshot.schemasOf[table], let first = effective.first(where: holders.contains) { return first }
        return ""
    }
}

extension StatementFacts {
    /// The facts a policy decides on.
    public var policyInfo: StatementInfo {
        var info = StatementInfo(kind: kind, innerKind: innerKind,
                                 resources: relations.map { Resource(schema: $0.schema, name: $0.name, access: $0.access == .read ? .read : .write) },
                                 functions: functions, unknownFunctions: unknownFunctions, writes: writes, sideEffects: sideEffects)
        info.refusal = policyRefusal
        return info
    }
}

extension StatementFacts {
    /// DECLARE name CURSOR FOR query (the inner query's kind is known).
    var isCursorDeclaration: Bool { kind == "other_utility" && cursorName != nil && innerKind != nil }
    /// CLOSE name, or CLOSE ALL (name "*").
    var isCursorClose: Bool { kind == "other_utility" && cursorName != nil && innerKind == nil }
}

extension Request {
    /// A PostgreSQL request's text and path, read in place: binding the whole payload
    /// (`case .postgres(let p)`) copies it, a retain for each of its fields, on every request.
    var postgresTextAndPath: (text: String, path: PostgresRequest.Path)? {
        if case .postgres(let p) = self { return (p.text, p.path) }
        return nil
    }
}
