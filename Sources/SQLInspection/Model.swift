/// Whether a statement reads or writes a relation.
public enum Access: String, Sendable, Hashable, Codable {
    case read, write
}

/// One relation a statement touches.
public struct RelationAccess: Sendable, Hashable, Codable {
    /// The schema as written, or the resolved one for an unqualified name (see `schemaWasWritten`).
    public let schema: String
    public let name: String
    public let access: Access
    /// False when the name was unqualified and `schema` is the inspector's
    /// approximation (first search-path schema, or `pg_catalog` for `pg_*`).
    /// A strict policy can require qualified names.
    public let schemaWasWritten: Bool

    public init(schema: String, name: String, access: Access, schemaWasWritten: Bool = true) {
        self.schema = schema
        self.name = name
        self.access = access
        self.schemaWasWritten = schemaWasWritten
    }

    /// `schema.name`, for display and glob matching.
    public var qualifiedName: String { "\(schema).\(name)" }
}

/// A run-time setting a statement changes: `SET`, `RESET`, `set_config(...)`,
/// and the transaction modes of `BEGIN`/`SET TRANSACTION`.
public struct Setting: Sendable, Hashable, Codable {
    /// Lowercased setting name; `"*"` for `RESET ALL`; nil when `set_config`
    /// gets a name that is not a constant (treated as security-relevant).
    public let name: String?
    /// The new value as text (list values joined with ", "); nil for RESET or non-constant values.
    public let value: String?
    /// `SET LOCAL` or `set_config(…, true)`: ends with the transaction. Nil when `set_config`'s
    /// third argument is not a constant (the gate cannot tell, so it follows neither reading).
    public var local: Bool? = false
    /// True when `name` is in `SecuritySettings.names` or unknown.
    public var isSecurityRelevant: Bool {
        guard let name else { return true }
        return name == "*" || SecuritySettings.names.contains(name)
    }

    public init(name: String?, value: String?, local: Bool? = false) {
        self.name = name
        self.value = value
        self.local = local
    }
}

/// Settings whose change alters what later statements may do. A policy should
/// deny changing them (in particular `search_path`, on which the inspector's
/// schema resolution relies).
public enum SecuritySettings {
    public static let names: Set<String> = [
        "role", "session_authorization", "default_transaction_read_only",
        "transaction_read_only", "search_path", "session_replication_role",
    ]
}

/// What one statement of a query string does.
public struct StatementFacts: Sendable, Hashable, Codable {
    /// Lowercase kind; see `StatementKind` for the mapping from PostgreSQL node names.
    public var kind: String
    /// For `prepare`, `explain` and cursor declarations: the kind of the inner statement.
    public var innerKind: String?
    /// Relations in order of first appearance; a relation both read and written appears twice.
    public var relations: [RelationAccess]
    /// Functions called, lowercased, schema-qualified if written so; deduplicated.
    public var functions: [String]
    /// The functions among them that PostgreSQL does not ship (`BuiltinFunctions`), or that are
    /// qualified with a schema other than pg_catalog: user-defined or extension code, which may do anything.
    public var unknownFunctions: [String] = []
    /// Operators used, as written (`+`, `review17.#~#`), including the `=` that `CASE x WHEN`,
    /// `JOIN … USING` and `NATURAL JOIN` look up; deduplicated. An operator PostgreSQL does not
    /// ship, or one qualified with another schema, is also in `unknownFunctions` (`operator …`).
    public var operators: [String] = []
    /// `DISCARD TEMP` (or `DISCARD ALL`): the session's temporary tables are dropped.
    public var discardsTemporaryTables = false
    /// True when the statement can change data, schema, or security state.
    public var writes: Bool
    /// Why `writes` is true beyond the statement's kind (e.g. "data-modifying CTE").
    public var sideEffects: [String]
    /// Every setting the statement changes.
    public var settings: [Setting]
    /// Why the gate must refuse the statement whatever the policy says, each with its kind
    /// (`Refusal`: an option it cannot read, a change to how the server reads statements).
    public var refusals: [Refusal] = []
    /// `PREPARE name`, `EXECUTE name`, `DEALLOCATE name`: the prepared statement's name.
    public var preparedName: String?
    /// This statement's text, cut out of the query string.
    public var text: String
    /// Every column reference in the statement (select lists, FROM-clause functions and VALUES,
    /// subqueries, CTEs, conditions), as name parts (`["c", "ssn"]`, `["ssn"]`, `["c", "*"]`).
    /// Masking uses them to tell whether computed result columns may derive from a covered column.
    public var projections: [[String]] = []
    /// For a plain top-level SELECT over tables only (no subquery, CTE, function or VALUES in
    /// FROM, no set operation) whose list has no `*`: the column references of each output column,
    /// in order, so masking can tell which result column derives from which columns.
    public var outputs: [[[String]]]?
    /// The rows this statement returns come from something the text does not show: a cursor or
    /// prepared statement the inspector has not resolved, a procedure, a function PostgreSQL
    /// does not ship, or a built-in that runs SQL given as text. Masking then covers every
    /// computed column.
    public var opaqueResult = false
    /// Names a column reference cannot be traced by (see `ColumnLineage`): the names given by
    /// alias column lists (`FROM t u(a, b)`, `(…) s(a, b)`, `f() g(a)`) and CTE column lists
    /// (`WITH t(a, b) AS …`), which may rename any column, including a covered one.
    public var renamedColumns: [String] = []
    /// A `*` whose columns reach the result without the protocol naming their origin: anywhere
    /// but directly in the select list of a plain (non-UNION) top-level SELECT (a subquery's,
    /// a CTE's, a UNION arm's, `COPY (SELECT * …)`'s, `ARRAY(SELECT * …)`'s).
    public var nestedStar = false
    /// DECLARE, FETCH, MOVE and CLOSE: the cursor's name (nil for CLOSE ALL).
    public var cursorName: String?
    /// Table aliases (`FROM customers c`) to the relation they name.
    public var aliases: [String: RelationAccess] = [:]
    /// The text carries a credential (a password in CREATE/ALTER ROLE or a user mapping, a
    /// connection string in a subscription or a dblink call): record it without its literals.
    public var carriesSecret = false
    /// For COPY: what a masking gate needs to find the columns in the data stream.
    public var copy: CopyFacts?

    /// The most relevant setting: the first security-relevant one, else the first.
    public var setting: Setting? {
        settings.first(where: \.isSecurityRelevant) ?? settings.first
    }

    /// Relations by access.
    public var reads: [RelationAccess] { relations.filter { $0.access == .read } }
    public var writesTo: [RelationAccess] { relations.filter { $0.access == .write } }

    /// An `EXECUTE name(...)` with the facts of the statement prepared under
    /// that name (the `prepare` facts the gate recorded): the prepared
    /// statement's relations, functions, writes and side effects, plus any
    /// functions in the EXECUTE's own parameters. Kind stays `execute`,
    /// `innerKind` becomes the prepared statement's inner kind.
    public func resolvingExecute(with prepared: StatementFacts) -> StatementFacts {
        guard kind == "execute" else { return self }
        var out = adopting(prepared)
        for f in functions where !out.functions.contains(f) { out.functions.append(f) }
        for f in unknownFunctions where !out.unknownFunctions.contains(f) { out.unknownFunctions.append(f) }
        for o in operators where !out.operators.contains(o) { out.operators.append(o) }
        out.sideEffects = prepared.sideEffects
        for s in sideEffects where s != SideEffect.unresolvedExecute && !out.sideEffects.contains(s) {
            out.sideEffects.append(s)
        }
        out.settings = prepared.settings + settings
        out.refusals = prepared.refusals + refusals.filter { !prepared.refusals.contains($0) }
        out.copy = prepared.copy
        out.carriesSecret = prepared.carriesSecret || carriesSecret
        out.writes = prepared.writes || !out.sideEffects.isEmpty
        return out
    }

    /// A FETCH from a cursor whose DECLARE the caller saw: the rows are the cursor's query's, so
    /// are its relations, functions and column references (kind stays `fetch`, `innerKind`
    /// becomes the query's kind).
    public func resolvingFetch(with cursor: StatementFacts) -> StatementFacts {
        guard kind == "fetch" else { return self }
        var out = adopting(cursor)
        // The cursor's query runs at FETCH time: its side effects are the FETCH's.
        out.sideEffects = cursor.sideEffects
        for s in sideEffects where s != SideEffect.unresolvedFetch && !out.sideEffects.contains(s) { out.sideEffects.append(s) }
        out.writes = cursor.writes || !out.sideEffects.isEmpty
        return out
    }

    /// This statement (kept as its kind) running `inner`'s query: its inner kind, relations,
    /// functions and everything masking traces results by.
    func adopting(_ inner: StatementFacts) -> StatementFacts {
        var out = self
        out.innerKind = inner.innerKind ?? inner.kind
        out.relations = inner.relations
        out.functions = inner.functions
        out.unknownFunctions = inner.unknownFunctions
        out.operators = inner.operators
        out.projections = inner.projections
        out.outputs = inner.outputs
        out.aliases = inner.aliases
        out.opaqueResult = inner.opaqueResult
        out.renamedColumns = inner.renamedColumns
        out.nestedStar = inner.nestedStar
        return out
    }
}

/// The data layout of a COPY statement.
public struct CopyFacts: Sendable, Hashable, Codable {
    public enum Format: String, Sendable, Hashable, Codable { case text, csv, binary }
    public var format: Format
    /// Field separator: tab for text, comma for CSV, unless DELIMITER says otherwise.
    public var delimiter: UInt8
    /// CSV with HEADER: the first row names the columns.
    public var header: Bool
    /// The explicit column list (`COPY t (a, b) …`), empty when the whole table is copied.
    public var columns: [String]
    /// `COPY (query) TO …`: the data comes from a query, not a table.
    public var fromQuery: Bool
    /// Data goes to the client (`TO STDOUT`), the direction masking applies to.
    public var toClient: Bool
    /// CSV QUOTE and ESCAPE (ESCAPE defaults to QUOTE), as given: case kept.
    public var quote: UInt8 = UInt8(ascii: "\"")
    public var escape: UInt8 = UInt8(ascii: "\"")
    /// The NULL string: `\N` in text format, empty in CSV, unless NULL says otherwise.
    public var null: [UInt8] = Array("\\N".utf8)
    /// Why the row masker cannot follow this layout (refused while masks apply); nil when it can.
    public var unfollowable: String?

    public init(format: Format, delimiter: UInt8, header: Bool, columns: [String], fromQuery: Bool, toClient: Bool) {
        self.format = format; self.delimiter = delimiter; self.header = header; self.columns = columns
        self.fromQuery = fromQuery; self.toClient = toClient
    }
}

/// The result of inspecting one query string.
public struct Inspection: Sendable, Hashable, Codable {
    /// One entry per statement, in order. Empty for a string of only comments/whitespace.
    public let statements: [StatementFacts]
    /// libpg_query's fingerprint (hex) of the whole string: equal when only literals differ.
    public let fingerprint: String
    /// The whole string with literals replaced by `$n`.
    public let normalized: String

    /// True when any statement writes.
    public var writes: Bool { statements.contains(where: \.writes) }
}

/// Side-effect reason strings that callers may want to match exactly.
public enum SideEffect {
    public static let dataModifyingCTE = "data-modifying CTE"
    public static let selectInto = "SELECT INTO"
    public static let doBlock = "DO block"
    public static let call = "CALL"
    public static let unresolvedExecute = "EXECUTE of an unresolved prepared statement"
    public static let unresolvedFetch = "FETCH of a cursor the gate did not see declared"
}
