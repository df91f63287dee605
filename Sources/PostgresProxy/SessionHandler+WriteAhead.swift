import CaptureFormat
import NIOCore
import ProxyCore

/// Strict recording (`recording.durability: strict`): what the client sent is forwarded only once
/// its records are durable. The rule itself is `WriteAheadQueue`'s; here it meets the channels.
extension PostgresSessionHandler {
    /// Hands this read's events to the recorder and forwards the read's messages once they (and
    /// everything recorded before) are written and synced. The client's reads pause while a
    /// forward waits, so a session has at most a read or two in flight.
    func forwardAfterRecording(_ recorder: SessionRecorder, loop: any EventLoop) {
        guard upstreamOut.readableBytes > 0 else {
            submitRecorded()  // nothing to forward (a refusal): nothing waits for these
            return
        }
        let bytes = upstreamOut
        upstreamOut = ByteBuffer()
        let ticket = writeAhead!.reserve()
        let handler = NIOLoopBound(self, eventLoop: loop)
        let waits = recorder.submitDurably(&staged) { error in
            loop.execute { handler.value.recordedDurably(ticket, error: error) }
        }
        forward(writeAhead!.hold(bytes, ticket: ticket, waits: waits))
    }

    /// The recorder's acknowledgement of `ticket`: forward what waited for it, or, if the records
    /// could not be written, refuse it all (none of it reaches the server) and end the session.
    func recordedDurably(_ ticket: UInt64, error: CaptureError?) {
        guard state != .closed, writeAhead != nil, let context else { return }
        if let error {
            writeAhead!.dropAll()
            gate.logger.error("capture write failed; the request was not forwarded and the session is ended",
                              metadata: ["session": "\(session?.sessionID ?? "")", "error": "\(error)"])
            fail(context, code: "58030", "tollgate: the gate cannot record this request, so it was not forwarded; the session is ended",
                 reason: "recording-failed")
            return
        }
        forward(writeAhead!.acknowledged(ticket))
    }

    func forward(_ released: [ByteBuffer]) {
        guard let upstream, let context else { return }
        for bytes in released { upstream.write(bytes, promise: nil) }
        if !released.isEmpty { upstream.flush() }
        // Pause the client while a forward waits; resume (unless the server is not taking more) once none does.
        let holding = writeAhead?.isHolding ?? false
        if holding != readsPausedForRecording {
            readsPausedForRecording = holding
            let read = !holding && upstream.isWritable
            context.channel.setOption(ChannelOptions.autoRead, value: read).whenComplete { _ in }
            if read { context.read() }
        }
    }
}
