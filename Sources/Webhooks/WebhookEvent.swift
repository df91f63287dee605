import Foundation

/// One event for the webhook receivers: its type ("approval.requested"), the event's own JSON
/// object (`data`, encoded by whoever raised it), and a line for chat receivers.
public struct WebhookEvent: Sendable {
    public var type: String
    /// Unique per event: a receiver that sees it twice (a retry after a lost answer) can tell.
    public var id: String
    public var time: Date
    /// A JSON object: the event's details (approval id, subject, target, statement, rule…).
    public var data: [UInt8]
    /// One line, for Slack-compatible receivers: who asks for what, or who decided what.
    public var summary: String
    /// Where to act on it (the approvals page), if there is one.
    public var link: String?

    public init(type: String, id: String = UUID().uuidString.lowercased(), time: Date = Date(), data: [UInt8], summary: String,
                link: String? = nil) {
        self.type = type; self.id = id; self.time = time; self.data = data; self.summary = summary; self.link = link
    }
}
