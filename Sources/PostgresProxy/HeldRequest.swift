import NIOCore
import PostgresWire

/// A request an approver must answer before it runs (`ExchangeAction.hold`), and the client's
/// messages that arrived behind it: they wait, as frames, in order, and are relayed only once
/// the held one is forwarded or refused (a later message may depend on it: a batch, a Sync).
struct HeldRequest {
    let approvalID: String
    /// The held message, kept until the approval's final event (the relay is still inspecting it).
    let message: PostgresFrontendMessage
    let frame: ByteBuffer
    /// Whether the approvals service registered it (a withdraw then has something to withdraw).
    var registered = false
}

/// The client's messages waiting behind a held request, in arrival order.
struct WaitingMessages {
    private(set) var messages: [(message: PostgresFrontendMessage, frame: ByteBuffer)] = []
    private(set) var bytes = 0

    mutating func append(_ message: PostgresFrontendMessage, frame: ByteBuffer) {
        messages.append((message, frame))
        bytes += frame.readableBytes
    }

    mutating func popFirst() -> (message: PostgresFrontendMessage, frame: ByteBuffer)? {
        guard !messages.isEmpty else { return nil }
        let first = messages.removeFirst()
        bytes -= first.frame.readableBytes
        return first
    }
}
