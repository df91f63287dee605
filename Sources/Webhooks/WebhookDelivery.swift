import Crypto
import Foundation
import ProxyCore

/// What one delivery sends: the body in the receiver's format, and the headers that let it
/// check the sender and the time. The signature is HMAC-SHA256, keyed with the receiver's
/// secret, over "TIMESTAMP.BODY" (the timestamp signed with the body, so a captured delivery
/// cannot be replayed as a new one past the receiver's tolerance).
struct WebhookDelivery: Equatable {
    var body: [UInt8]
    var headers: [(String, String)]

    static func == (a: WebhookDelivery, b: WebhookDelivery) -> Bool {
        a.body == b.body && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
    }

    init(_ event: WebhookEvent, to receiver: WebhookSettings, gate: String, timestamp: Int64) {
        switch receiver.format {
        case .json:
            // The envelope is ours; `data` is already a JSON object: spliced in, not re-encoded.
            let head = #"{"type":\#(Self.quoted(event.type)),"id":\#(Self.quoted(event.id)),"time":\#(Self.quoted(Self.iso8601(event.time))),"gate":\#(Self.quoted(gate)),"data":"#
            body = Array(head.utf8) + event.data + Array("}".utf8)
        case .slack:
            var text = Self.slackEscaped(event.summary)
            if let link = event.link { text += " <\(Self.slackEscaped(link))|Review it>" }
            body = Array(#"{"text":\#(Self.quoted(text))}"#.utf8)
        }
        let key = SymmetricKey(data: Array((receiver.secret ?? "").utf8))
        let signed = Array("\(timestamp).".utf8) + body
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: key)
        headers = [("Content-Type", "application/json"), ("User-Agent", "tollgate-webhooks"),
                   ("Tollgate-Event", event.type), ("Tollgate-Delivery", event.id), ("Tollgate-Timestamp", "\(timestamp)"),
                   ("Tollgate-Signature", "sha256=" + mac.map { String(format: "%02x", $0) }.joined())]
    }

    /// A JSON string literal.
    static func quoted(_ s: String) -> String {
        // Encoding a String cannot fail.
        String(decoding: (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8), as: UTF8.self)
    }

    static func iso8601(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    /// Slack's mrkdwn reserves &, < and >: escaped, so a statement cannot forge a link.
    static func slackEscaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
