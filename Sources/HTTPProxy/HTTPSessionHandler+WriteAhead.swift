import CaptureFormat
import NIOCore
import ProxyCore

/// Strict recording (`recording.durability: strict`) for HTTP: a request's head and each part of
/// its body go upstream only once their records (the request, the decision, the body as `stdin`)
/// are durable in the capture. The rule is the core's (`ExchangeSession.flushBeforeForwarding`,
/// `WriteAheadQueue`), as for PostgreSQL; here the held parts wait under their tickets.
extension HTTPSessionHandler {
    /// A part for the upstream: sent now (batched), or held until what was recorded before it is durable (strict).
    func sendRecorded(_ write: UpstreamWrite, flush: Bool) {
        guard core.writesAhead else { send(write, flush: flush); return }
        var mine = [write]
        for action in core.flushBeforeForwarding(acknowledged: writeAheadAcknowledgement) {
            switch action {
            case .holdUpstream(let ticket):
                heldUpstream.append((ticket, mine))
                mine = []
            default:
                apply([action])
            }
        }
    }

    /// Sends the parts held up to `ticket`, in order.
    func releaseUpstream(through ticket: UInt64) {
        var sent = false
        while let first = heldUpstream.first, first.ticket <= ticket {
            heldUpstream.removeFirst()
            for w in first.writes { send(w, flush: false) }
            sent = true
        }
        if sent { upstream?.flush() }
    }

    /// Brings the recorder's acknowledgement (on a writer thread) back to the event loop.
    var writeAheadAcknowledgement: @Sendable (UInt64, CaptureError?) -> Void {
        guard let loop = context?.eventLoop else { return { _, _ in } }
        let handler = NIOLoopBound(self, eventLoop: loop)
        return { ticket, error in loop.execute { handler.value.recordAcknowledged(ticket, error: error) } }
    }

    /// The recorder's acknowledgement: forward what waited for it, or, when the records could not
    /// be written, drop it all (none of it reaches the upstream), answer 503 and end the connection.
    func recordAcknowledged(_ ticket: UInt64, error: CaptureError?) {
        guard !isClosed else { return }
        let (actions, closing) = core.recordAcknowledged(ticket, error: error)
        if let closing {
            heldUpstream.removeAll()
            logger.error("capture write failed; the request was not forwarded and the connection is ended",
                         metadata: ["target": "\(target.name)", "error": "\(error.map { "\($0)" } ?? "")"])
            dropUpstream()
            exchange = nil
            endReason = closing.reason
            // A switched pod stream cannot take an HTTP answer: its client gets a WebSocket close (1011).
            if let stream = podStream, case .relaying = stream.phase {
                stream.phase = .ended
                write(WebSocketFrame.close(1011, "tollgate: the gate cannot record this stream").encoded())
                closeAfterFlush()
                return
            }
            podStream = nil
            answerAndClose(GateResponse.json(status: 503, .init(error: "recording_failed", detail: closing.message), closes: true))
            return
        }
        apply(actions)
    }
}
