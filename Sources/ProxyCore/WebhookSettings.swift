import Foundation

/// One receiver of the gate's events (`webhooks:` in the configuration): where to POST, the
/// secret that signs each delivery, which events, and how hard to try.
public struct WebhookSettings: Sendable {
    public enum Format: String, Sendable { case json, slack }

    /// A name for logs and metrics (the URL may carry a token: Slack's do).
    public var name: String
    public var url: URL
    /// Signs every delivery (HMAC-SHA256); nil only for `check` without secrets.
    public var secret: String?
    public var secretSource: String
    /// Event types sent (`eventTypes`: "approval.requested", "approval.approved"…); empty: all.
    public var events: Set<String>
    /// `json`: the event as JSON; `slack`: a Slack-compatible message (text with the statement and a link).
    public var format: Format
    public var timeout: Duration
    /// Attempts per event, the first included; retried with exponential backoff from `retryAfter`.
    public var attempts: Int
    public var retryAfter: Duration

    public init(name: String, url: URL, secret: String?, secretSource: String = "", events: Set<String> = [], format: Format = .json,
                timeout: Duration = .seconds(5), attempts: Int = 5, retryAfter: Duration = .seconds(1)) {
        self.name = name; self.url = url; self.secret = secret; self.secretSource = secretSource; self.events = events
        self.format = format; self.timeout = timeout; self.attempts = attempts; self.retryAfter = retryAfter
    }

    /// One per approval change (docs/webhooks.md); `approval.decided` in a configuration stands for
    /// every final outcome (`decidedTypes`).
    public static let eventTypes: Set<String> = Set(["requested", "approved_in_part", "grant_reused", "grant_revoked"].map { "approval." + $0 })
        .union(decidedTypes).union(["approval.decided"])
    public static let decidedTypes: Set<String> = Set(["approved", "denied", "expired", "withdrawn", "abandoned"].map { "approval." + $0 })

    static func parse(name: String, node: ConfigNode, resolve: (String) -> String, environment: [String: String],
                      requireSecrets: Bool) throws -> WebhookSettings {
        let f = try node.fields(["url", "secret", "secret_env", "secret_file", "events", "format", "timeout", "attempts", "retry_after"])
        guard let text = try f["url"]?.string(), let url = URL(string: text), let scheme = url.scheme, url.host != nil else {
            throw node.error("missing or invalid 'url' (http or https)")
        }
        guard scheme == "https" || (scheme == "http" && ["127.0.0.1", "localhost", "::1"].contains(url.host ?? "")) else {
            throw f["url"]!.error("the url must be https (plain http only to a loopback receiver): deliveries carry statements")
        }
        guard let secret = try ConfigSecret.read("secret", from: f, of: node, resolve: resolve, environment: environment,
                                                 requireSecrets: requireSecrets, what: "secret") else {
            throw node.error("missing 'secret_env' or 'secret_file' (the key that signs each delivery)")
        }
        var events = Set(try f["events"]?.strings() ?? [])
        if let unknown = events.subtracting(eventTypes).sorted().first {
            throw f["events"]!.error("unknown event '\(unknown)' (known: \(eventTypes.sorted().joined(separator: ", ")))")
        }
        if events.remove("approval.decided") != nil { events.formUnion(decidedTypes) }
        return WebhookSettings(name: name, url: url, secret: secret.value, secretSource: secret.source, events: events,
                               format: try f["format"]?.oneOf(["json": .json, "slack": .slack]) ?? .json,
                               timeout: try f["timeout"]?.duration() ?? .seconds(5),
                               attempts: try f["attempts"]?.int(in: 1...20) ?? 5,
                               retryAfter: try f["retry_after"]?.duration() ?? .seconds(1))
    }
}
