import NIOCore

/// The last handler of a connection to the upstream, an HTTP one or an exec stream's: what both
/// do alike with their session.
protocol UpstreamSessionHandler: ChannelInboundHandler {
    var session: HTTPSessionHandler { get }
}

extension UpstreamSessionHandler {
    /// What this read relayed goes to the client in one flush (so a slow client's buffer fills
    /// and turns the channel unwritable, which pauses this read: back-pressure).
    func channelReadComplete(context: ChannelHandlerContext) {
        session.context?.flush()
        session.submitRecorded()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        session.upstreamWritabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }
}
