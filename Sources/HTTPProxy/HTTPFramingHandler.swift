import NIOCore

/// The first handler of a client connection: drives `RequestStreamMachine` with the bytes read
/// and passes its events on. A refusal is answered here (status, small JSON body,
/// `Connection: close`) and the connection closed once it is written, so nothing of a request the
/// gate cannot frame exactly goes further down the pipeline, let alone upstream.
public final class HTTPFramingHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = RequestStreamMachine.Event
    public typealias OutboundOut = ByteBuffer

    private var machine: RequestStreamMachine
    /// Called with each refusal before it is answered, for the capture and the log.
    private let onRefusal: @Sendable (HTTPRefusal) -> Void
    /// False: a refusal is passed down as an event, for a handler that answers requests in
    /// order (the gate's session, behind pipelined requests still being answered).
    private let answersRefusals: Bool

    public init(limits: HTTPLimits, answersRefusals: Bool = true, onRefusal: @escaping @Sendable (HTTPRefusal) -> Void = { _ in }) {
        self.machine = RequestStreamMachine(limits: limits)
        self.answersRefusals = answersRefusals
        self.onRefusal = onRefusal
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        for event in machine.receive(Array(buffer.readableBytesView)) {
            if case .refuse(let refusal) = event, answersRefusals {
                onRefusal(refusal)
                let response = GateResponse.refusal(refusal)
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: response.serialized)))
                    .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                return
            }
            context.fireChannelRead(wrapInboundOut(event))
        }
    }
}
