import NIOCore

/// How a session ends, as PostgreSQL ends it: the client sees what it would see from the server
/// (its FATAL, then the connection closed), and the session's end is recorded at once.
extension PostgresSessionHandler {
    /// After Terminate the backend exits and the server closes the connection; drivers that wait
    /// for that close (asyncpg's `close()`) would wait on the gate forever if it kept the client's
    /// socket open. The Terminate has been flushed upstream: the upstream connection is closed
    /// once that write is done, and the client's now, which records the end (`channelInactive`).
    func endAfterTerminate(_ context: ChannelHandlerContext) {
        guard state != .closed else { return }
        endReason = "client-terminate"
        state = .closed
        if let upstream {
            self.upstream = nil
            // Writes complete in order: when this empty one is done, the Terminate before it is written.
            upstream.writeAndFlush(upstream.allocator.buffer(capacity: 0)).whenComplete { _ in upstream.close(promise: nil) }
        }
        context.close(promise: nil)
    }

    /// The server ended the session with a FATAL (pg_terminate_backend, its own shutdown, its
    /// idle_session_timeout), already relayed to the client: the client gets that error alone,
    /// as from PostgreSQL, then the close; not a second FATAL of the gate's.
    func endAfterUpstreamFatal(_ context: ChannelHandlerContext) {
        guard state != .closed else { return }
        endReason = "upstream-fatal"
        state = .closed
        upstream = nil
        submitRecorded()
        context.flush()
        closeAfterError(context)
    }
}
