import NIOCore
import PostgresWire

/// A request an approver must answer before it runs (`ExchangeAction.hold`), and the client's
/// messages that arrived behind it: they wait, as frames, in order, and are relayed only once
/// the held one is forwarded or refused (a later message may depend on it: a batch, a Sync).
/// Kept by `RelayStateMachine` (RelayStateMachine+Holds).
struct HoldQueue {
    /// The approval the held message waits for; nil when nothing is held.
    var approvalID: String?
    /// The held message's bytes: forwarded as the client sent them once it is approved.
    var frame = ByteBuffer()
    private(set) var waiting = CircularBuffer<(message: PostgresFrontendMessage, frame: ByteBuffer)>()
    /// The bytes of the waiting messages.
    private(set) var waitingBytes = 0

    mutating func append(_ message: PostgresFrontendMessage, frame: ByteBuffer) {
        waiting.append((message, frame))
        waitingBytes += frame.readableBytes
    }

    mutating func popFirst() -> (message: PostgresFrontendMessage, frame: ByteBuffer)? {
        guard let first = waiting.popFirst() else { return nil }
        waitingBytes -= first.frame.readableBytes
        return first
    }

    mutating func removeAll() {
        approvalID = nil
        frame = ByteBuffer()
        waiting.removeAll()
        waitingBytes = 0
    }
}
