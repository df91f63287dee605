import CaptureFormat

/// What to find in captures: filters on the session (header) and on exchanges (events that
/// share an exchange id: a request and its decision, approvals, response, mask summary, stream
/// chunks and annotations). Different fields AND; several values of one field OR (journalctl's
/// rule). Request fields (table, statement, function, method, path, Kubernetes verb, namespace,
/// resource, subresource) apply together to one request: `--table pii.users --statement delete`
/// is a DELETE on pii.users.
public struct CaptureQuery: Sendable, Equatable {
    // The session, from the file header.
    /// Session ids or unambiguous prefixes.
    public var sessions: [String] = []
    public var subjects: [Glob] = []
    public var groups: [Glob] = []
    public var targets: [Glob] = []
    public var protocols: [String] = []

    /// An exchange's time is that of its first event: since ≤ time < until (µs since the epoch).
    public var since: Int64?
    public var until: Int64?

    public var decisions: [DecisionOutcome] = []
    /// The exchange has an event of one of these kinds. Session start and end (which belong to
    /// no exchange) are found only through this filter, each as its own entry.
    public var kinds: [EventKind] = []
    public var request = RequestFilter()
    public var statuses: [StatusFilter] = []
    /// A mask fired whose detector matches one of these (`*`: any).
    public var masked: [Glob] = []
    public var prompts: [String] = []
    /// Trace ids (32 hex digits; a whole traceparent is reduced to its trace id).
    public var traces: [String] = []

    public var pattern: TextPattern?

    public init() {}

    /// True when nothing but the session header is asked about.
    public var isSessionOnly: Bool { conditions.isEmpty }
}

/// What a decision or an approval came to.
public enum DecisionOutcome: String, Sendable, CaseIterable {
    case allow, deny, review, approved, denied, expired, withdrawn, abandoned, reused

    public init?(name: String) {
        switch name.lowercased() {
        case "allow", "allowed": self = .allow
        case "deny": self = .deny
        case "review", "reviewed": self = .review
        case "approved", "granted": self = .approved
        case "denied": self = .denied
        case "expired": self = .expired
        case "withdrawn": self = .withdrawn
        case "abandoned": self = .abandoned
        case "reused", "reused-grant", "reused_grant": self = .reused
        default: return nil
        }
    }

    var term: String {
        switch self {
        case .allow, .deny, .review: "decision:\(rawValue)"
        case .approved: "approval:granted"
        case .denied: "approval:denied"
        // Format 1.3's states share the term of their 1.2 reading (the filter stays 1.2's).
        case .expired, .withdrawn, .abandoned: "approval:expired"
        case .reused: "approval:granted"
        }
    }

    var eventKind: EventKind { self == .allow || self == .deny || self == .review ? .decision : .approval }
}

/// An HTTP status code or a class of them (`404`, `4xx`).
public struct StatusFilter: Sendable, Equatable, CustomStringConvertible {
    public let low: UInt16
    public let high: UInt16

    public init?(_ text: String) {
        let t = text.lowercased()
        if t.count == 3, t.hasSuffix("xx"), let c = UInt16(t.prefix(1)), (1...5).contains(c) {
            low = c * 100; high = c * 100 + 99
        } else if let n = UInt16(t), (100...999).contains(n) {
            low = n; high = n
        } else {
            return nil
        }
    }

    public var description: String { low == high ? String(low) : "\(low / 100)xx" }
    func matches(_ status: UInt16) -> Bool { status >= low && status <= high }
    var terms: [String] { (low...high).map { "status:\($0)" } }
}

/// Filters on the request of an exchange, applied together to one request event.
public struct RequestFilter: Sendable, Equatable {
    /// `schema.table` globs; a glob without a dot matches the table name in any schema.
    public var tables: [Glob] = []
    /// Statement kinds as the inspector names them: select, insert, update, delete, ddl kinds…
    public var statementKinds: [String] = []
    /// Function names as recorded (lowercase, qualified as written); an unqualified name also
    /// matches it qualified by any schema (`pg_sleep` matches `pg_catalog.pg_sleep`). Globs allowed.
    public var functions: [Glob] = []
    public var methods: [String] = []
    /// Globs over the HTTP request path without its query string.
    public var paths: [Glob] = []
    public var verbs: [String] = []
    public var namespaces: [String] = []
    public var resources: [String] = []
    public var subresources: [String] = []

    public init() {}

    var isEmpty: Bool {
        tables.isEmpty && statementKinds.isEmpty && functions.isEmpty && methods.isEmpty && paths.isEmpty
            && verbs.isEmpty && namespaces.isEmpty && resources.isEmpty && subresources.isEmpty
    }
}

// MARK: - Matching single values

extension RequestFilter {
    static func tableMatches(_ glob: Glob, schema: String, name: String) -> Bool {
        if glob.pattern.contains(".") { return glob.matches(schema.isEmpty ? name : "\(schema).\(name)") }
        return glob.matches(name)
    }

    /// Index terms that a request touching a table matching `glob` certainly put in its block's
    /// filter; nil when the glob is too loose to name one.
    static func tableTerms(_ glob: Glob) -> [String]? {
        if let literal = glob.literal {
            return ["table:\(literal)"]  // both forms are indexed: table:NAME and table:SCHEMA.NAME
        }
        let p = glob.pattern
        // One dot splits schema from table; identifiers that themselves contain dots (quoted in SQL) are not guessed at.
        guard let dot = p.firstIndex(of: "."), p.filter({ $0 == "." }).count == 1, !glob.caseInsensitive else { return nil }
        let schema = Glob(String(p[..<dot])), name = Glob(String(p[p.index(after: dot)...]))
        if let s = schema.literal, let n = name.literal { return ["table:\(s).\(n)"] }
        if let s = schema.literal { return ["schema:\(s)"] }
        if let n = name.literal { return ["table:\(n)"] }
        return nil
    }

    static func functionMatches(_ glob: Glob, _ recorded: String) -> Bool {
        if glob.matches(recorded) { return true }
        // An unqualified name also matches a qualified call: investigators search for pg_sleep.
        if !glob.pattern.contains("."), let dot = recorded.lastIndex(of: ".") {
            return glob.matches(String(recorded[recorded.index(after: dot)...]))
        }
        return false
    }

    static func functionTerms(_ glob: Glob) -> [String]? {
        // Only a qualified exact name is indexed as itself; an unqualified one may have been called qualified.
        guard let literal = glob.literal, literal.contains(".") else { return nil }
        return ["fn:\(literal)"]
    }

    static func path(of target: String) -> String {
        target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
    }
}

extension CaptureQuery {
    /// A trace id from a trace id or a whole W3C traceparent.
    public static func traceID(_ text: String) -> String {
        let parts = text.split(separator: "-")
        if parts.count >= 4, parts[1].count == 32 { return String(parts[1]) }
        return text
    }

    /// Whether the session header passes the session filters.
    public func admits(header h: SessionHeader) -> Bool {
        if !sessions.isEmpty && !sessions.contains(where: { h.sessionID.lowercased().hasPrefix($0.lowercased()) }) { return false }
        if !subjects.isEmpty && !subjects.contains(where: { $0.matches(h.subject) }) { return false }
        if !groups.isEmpty && !groups.contains(where: { g in h.groups.contains { g.matches($0) } }) { return false }
        if !targets.isEmpty && !targets.contains(where: { $0.matches(h.target) }) { return false }
        if !protocols.isEmpty && !protocols.contains(where: { $0.lowercased() == h.protocolName.lowercased() }) { return false }
        return true
    }
}
