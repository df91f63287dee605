import PostgresWire
import SQLInspection

/// The settings that change how the server reads a statement, as the server itself reports them
/// (ParameterStatus), checked against the values the gate reads with (`ParserSettings`).
/// PostgreSQL reports `standard_conforming_strings` and `client_encoding` at login and on every
/// change; the gate refuses a login where either is not its value (a role or database default,
/// `ALTER ROLE … SET`, the server's configuration) and ends a session where one changes, however
/// it changed (a DO block, a function, a configuration reload): from then on the gate could not
/// read the statements as the server does. (`backslash_quote` and `escape_string_warning` are not
/// reported; see docs/policy.md.)
struct LexingSettings: Sendable, Equatable {
    /// The reported settings the gate depends on.
    static let reported = ["standard_conforming_strings", "client_encoding"]

    /// The values the server reported, by name.
    private(set) var values: [String: String] = [:]

    /// Takes one ParameterStatus. Returns why the session cannot go on, or nil.
    mutating func report(_ name: String, _ value: String) -> String? {
        guard Self.reported.contains(name) else { return nil }
        values[name] = value
        guard ParserSettings.isGateValue(name, value) else {
            return "the database reports \(name) = \(value); the gate reads statements only with \(name) = \(ParserSettings.gateValues[name]!)"
        }
        return nil
    }

    /// After the login's ParameterStatus messages: every reported setting must have been reported
    /// (an upstream that does not say cannot be followed) and be the gate's value.
    static func login(_ statuses: [(name: String, value: String)]) -> (LexingSettings, refusal: String?) {
        var settings = LexingSettings()
        var refusal: String?
        for (name, value) in statuses {
            if let r = settings.report(name, value), refusal == nil { refusal = r }
        }
        if refusal == nil, let missing = reported.first(where: { settings.values[$0] == nil }) {
            refusal = "the database did not report \(missing) at login; the gate cannot tell how it reads statements"
        }
        return (settings, refusal)
    }

    /// The same, from the login's messages as they came.
    static func login(_ messages: [PostgresBackendMessage]) -> (LexingSettings, refusal: String?) {
        login(messages.compactMap { m -> (name: String, value: String)? in
            guard case .parameterStatus(let name, let value) = m else { return nil }
            return (name, value)
        })
    }
}
