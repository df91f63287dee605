import CaptureFormat
import NIOCore
import ProxyCore

/// Strict recording (`recording.durability: strict`): what the client sent is forwarded only once
/// its records are durable. The rule is the core's (`ExchangeSession.flushBeforeForwarding`,
/// `WriteAheadQueue`); here the held bytes wait under their tickets and meet the channels.
extension PostgresSessionHandler {
    /// Brings the recorder's acknowledgement (on a writer thread) back to the event loop.
    var writeAheadAcknowledgement: @Sendable (UInt64, CaptureError?) -> Void {
        guard let loop = context?.eventLoop else { return { _, _ in } }
        let handler = NIOLoopBound(self, eventLoop: loop)
        return { ticket, error in loop.execute { handler.value.recordAcknowledged(ticket, error: error) } }
    }

    /// Keeps this read's upstream output unsent, under `ticket`.
    func holdUpstream(_ ticket: UInt64) {
        guard upstreamOut.readableBytes > 0 else { return }
        heldUpstream.append((ticket, upstreamOut))
        upstreamOut = ByteBuffer()
    }

    /// Sends what was held up to `ticket`, in order.
    func releaseUpstream(through ticket: UInt64) {
        var sent = false
        while let first = heldUpstream.first, first.ticket <= ticket {
            heldUpstream.removeFirst()
            upstream?.write(first.bytes, promise: nil)
            sent = true
        }
        if sent { upstream?.flush() }
    }

    /// The recorder's acknowledgement of `ticket`: forward what waited for it, or, if the records
    /// could not be written, refuse it all (none of it reaches the server) and end the session.
    func recordAcknowledged(_ ticket: UInt64, error: CaptureError?) {
        guard state != .closed, let context else { return }
        let (actions, closing) = core.recordAcknowledged(ticket, error: error)
        if let closing {
            heldUpstream.removeAll()
            gate.logger.error("capture write failed; the request was not forwarded and the session is ended",
                              metadata: ["session": "\(session?.sessionID ?? "")", "error": "\(error.map { "\($0)" } ?? "")"])
            fail(context, code: "58030", closing.message, reason: closing.reason)
            return
        }
        apply(actions)
    }
}
