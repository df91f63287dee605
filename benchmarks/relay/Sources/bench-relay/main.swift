#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix

// Usage: bench-relay LISTEN_PORT UPSTREAM_PORT [THREADS]   (loopback only)
// Each accepted connection gets one upstream connection on the same event loop, with
// TCP_NODELAY both ways like the gate; bytes are passed on as they arrive, flushed per read.

/// Passes what one side reads to the other. Both handlers of a pair live on one event loop
/// and touch `peer` only there.
final class Relay: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var peer: Channel?
    /// Bytes that arrived before the upstream connection was up.
    var early: [ByteBuffer] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if let peer { peer.write(bytes, promise: nil) } else { early.append(bytes) }
    }

    func channelReadComplete(context: ChannelHandlerContext) { peer?.flush() }

    func connected(to peer: Channel) {
        self.peer = peer
        for bytes in early { peer.write(bytes, promise: nil) }
        early = []
        peer.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer?.close(promise: nil)
        peer = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

let args = CommandLine.arguments
guard args.count >= 3, let listenPort = Int(args[1]), let upstreamPort = Int(args[2]) else {
    print("usage: bench-relay LISTEN_PORT UPSTREAM_PORT [THREADS]")
    exit(2)
}
let threads = args.count > 3 ? Int(args[3]) ?? System.coreCount : System.coreCount
let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { client in
        let down = Relay()
        do { try client.pipeline.syncOperations.addHandler(down) } catch { return client.eventLoop.makeFailedFuture(error) }
        let relay = NIOLoopBound(down, eventLoop: client.eventLoop)
        ClientBootstrap(group: client.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { upstream in
                let up = Relay()
                up.peer = client
                return upstream.eventLoop.makeCompletedFuture { try upstream.pipeline.syncOperations.addHandler(up) }
            }
            .connect(host: "127.0.0.1", port: upstreamPort)
            .whenComplete { result in
                switch result {
                case .success(let upstream): relay.value.connected(to: upstream)
                case .failure: client.close(promise: nil)
                }
            }
        return client.eventLoop.makeSucceededVoidFuture()
    }
do {
    let server = try bootstrap.bind(host: "127.0.0.1", port: listenPort).wait()
    try server.closeFuture.wait()
} catch {
    print("bench-relay: cannot listen on 127.0.0.1:\(listenPort): \(error)")
    exit(2)
}
