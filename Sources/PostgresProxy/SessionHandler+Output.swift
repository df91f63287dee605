import CaptureFormat
import NIOCore
import PostgresWire
import ProxyCore

/// What the session writes to either side, and how it ends: the FATAL error, the close, the capture sealed.
extension PostgresSessionHandler {
    func flushUpstream() {
        // Strict recording holds the output until it is recorded (SessionHandler+WriteAhead).
        apply(upstreamOut.readableBytes > 0 ? core.flushBeforeForwarding(acknowledged: writeAheadAcknowledgement) : core.flush())
        guard let upstream, upstreamOut.readableBytes > 0 else { return }
        upstream.writeAndFlush(upstreamOut, promise: nil)
        Self.recycle(&upstreamOut)
    }

    func flushClient() {
        submitRecorded()
        guard let context, clientOut.readableBytes > 0 else { return }
        core.countBytes(toClient: clientOut.readableBytes)
        context.writeAndFlush(wrapOutboundOut(clientOut), promise: nil)
        Self.recycle(&clientOut)
    }

    /// Empties an output buffer after its bytes were handed to a write. When the write went out
    /// at once the storage is the handler's alone again, so the next read's output needs no
    /// allocation; a write still pending keeps its bytes (`clear` then allocates). A buffer a
    /// large result grew is let go, not kept for the rest of the session.
    static func recycle(_ buffer: inout ByteBuffer) {
        if buffer.capacity > 64 << 10 { buffer = ByteBuffer() } else { buffer.clear() }
    }

    func writeBackend(_ context: ChannelHandlerContext, _ message: PostgresBackendMessage, flush: Bool) {
        do {
            try message.encode(into: &clientOut)
        } catch {
            // Only a message the gate itself built can fail here (a NUL in a string): drop the connection.
            gate.logger.error("cannot encode message to client", metadata: ["message": "\(message.messageName)", "error": "\(error)"])
            context.close(promise: nil)
            return
        }
        if flush { flushClient() }
    }

    func writeRaw(_ context: ChannelHandlerContext, _ bytes: [UInt8]) {
        core.countBytes(toClient: bytes.count)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
    }

    /// The server reads statements with settings the gate cannot follow: the session cannot go on.
    func lexingRefused(_ refusal: String, context: ChannelHandlerContext, reason: String) {
        gate.logger.error("session ended: the database reads statements differently from the gate",
                          metadata: ["target": "\(target.name)", "session": "\(session?.sessionID ?? "")", "reason": "\(refusal)"])
        fail(context, code: "0A000", "tollgate: \(refusal); the session is ended", reason: reason)
    }

    /// Sends a FATAL error to the client and closes: the PostgreSQL way to refuse a connection.
    func fail(_ context: ChannelHandlerContext, code: String, _ message: String, reason: String) {
        guard state != .closed else { return }
        endReason = reason
        core.responded(.postgres(PostgresResponse(error: CaptureFormat.PostgresNotice(severity: "FATAL", sqlState: code, message: message))),
                       exchange: machine.relay.pending.first?.exchange ?? 0)
        submitRecorded()
        writeBackend(context, .errorResponse(.init(severity: "FATAL", sqlState: code, message: message)), flush: true)
        state = .closed
        // Nothing more goes upstream, whatever the client still sends.
        upstream?.close(promise: nil)
        upstream = nil
        closeAfterError(context)
    }

    /// Closes the connection once the error just sent has a chance to be read: the gate's side
    /// first, then the whole connection when the client closes its side, or after a second.
    /// Closed at once while bytes the client sent are still unread (the rest of an oversized
    /// message), TCP answers with a reset, and a client's TCP stack may discard what it has not
    /// read yet when the reset arrives (Windows does), the error with it. (Linux keeps it: the
    /// tests here pass either way.)
    func closeAfterError(_ context: ChannelHandlerContext) {
        let channel = context.channel
        let closing = context.eventLoop.makePromise(of: Void.self)
        context.close(mode: .output, promise: closing)
        // Where half-closing is not supported (it is for TCP), close at once.
        closing.futureResult.whenFailure { _ in channel.close(promise: nil) }
        channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
    }

    func teardown(reason: String) {
        if state != .closed { state = .closed }
        upstream?.close(promise: nil)
        upstream = nil
        if let (pid, key) = gateKey { gate.cancels.remove(processID: pid, secretKey: key) }
        gateKey = nil
        withdrawHold(reason: reason)
        if let finish = core.end(reason: reason) {
            let gate = self.gate
            let logger = gate.logger
            let id = finish.recorder.sessionID
            gate.sessionEnding(id)
            Task {
                if let error = await finish.run() {
                    logger.error("capture write failed", metadata: ["session": "\(id)", "error": "\(error)"])
                }
                gate.sessionEnded(id)
            }
        }
    }
}
