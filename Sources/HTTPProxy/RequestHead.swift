/// A request's line and header section as the gate parsed them.
public struct RequestHead: Sendable, Equatable {
    public var method: String
    /// The request-target as sent (origin-form for a reverse proxy: path and query).
    public var target: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    public var fields: [HTTPField]

    public init(method: String, target: String, minorVersion: Int = 1, fields: [HTTPField]) {
        self.method = method; self.target = target; self.minorVersion = minorVersion; self.fields = fields
    }

    /// Whether the client asked for the connection to end after this exchange (RFC 9112 §9.3):
    /// HTTP/1.1 persists unless `close`; HTTP/1.0 persists only with `keep-alive`.
    public var closesConnection: Bool {
        let options = fields.listElements("connection").map { $0.lowercased() }
        if options.contains("close") { return true }
        return minorVersion == 0 && !options.contains("keep-alive")
    }

    public var host: String { fields.values("host").first ?? "" }
}
