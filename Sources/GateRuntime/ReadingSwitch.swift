import NIOCore
import ProxyCore

extension ReadingPauses {
    /// Turns reading on `side` on or off as these pauses say, for every adapter: the core's reasons
    /// (a slow peer, a capture writer behind, a hold) decide, the channel's autoRead follows, and a
    /// side that may read again is asked for a read at once.
    public func switchReading(_ side: ReadingSide, client: ChannelHandlerContext?, upstream: (any Channel)?) {
        let read = reads(side)
        switch side {
        case .upstream:
            upstream?.setOption(ChannelOptions.autoRead, value: read).whenComplete { _ in }
            if read { upstream?.read() }
        case .client:
            guard let client else { return }
            client.channel.setOption(ChannelOptions.autoRead, value: read).whenComplete { _ in }
            if read { client.read() }
        }
    }
}
