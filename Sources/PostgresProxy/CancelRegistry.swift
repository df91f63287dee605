import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresWire
import ProxyCore

/// The gate gives each client its own BackendKeyData and keeps the upstream's here,
/// so a client's CancelRequest (which carries no identity) reaches only its own session.
public final class CancelRegistry: Sendable {
    public struct Upstream: Sendable {
        var address: HostPort
        var processID: Int32
        var secretKey: Int32
        /// The session's own handling of a cancel (a held request is withdrawn, not cancelled
        /// upstream); it decides on its event loop. Nil: the cancel goes upstream.
        var onCancel: (@Sendable () -> Void)? = nil
    }

    struct Key: Hashable { var processID: Int32; var secretKey: Int32 }

    let entries = NIOLockedValueBox<[Key: Upstream]>([:])

    public init() {}

    /// A fresh (processID, secretKey) for a client, mapped to the upstream's.
    func register(_ upstream: Upstream) -> (Int32, Int32) {
        entries.withLockedValue { map in
            while true {
                let key = Key(processID: Int32.random(in: 1...Int32.max), secretKey: Int32.random(in: .min ... .max))
                if map[key] == nil {
                    map[key] = upstream
                    return (key.processID, key.secretKey)
                }
            }
        }
    }

    func remove(processID: Int32, secretKey: Int32) {
        _ = entries.withLockedValue { $0.removeValue(forKey: Key(processID: processID, secretKey: secretKey)) }
    }

    func lookup(processID: Int32, secretKey: Int32) -> Upstream? {
        entries.withLockedValue { $0[Key(processID: processID, secretKey: secretKey)] }
    }

    /// Sends the upstream's CancelRequest on a new connection, as PostgreSQL requires.
    func cancel(_ upstream: Upstream, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        ClientBootstrap(group: eventLoop)
            .connect(host: upstream.address.host, port: upstream.address.port)
            .flatMap { channel in
                var buffer = channel.allocator.buffer(capacity: 16)
                try? PostgresFrontendMessage.cancelRequest(processID: upstream.processID, secretKey: upstream.secretKey).encode(into: &buffer)
                return channel.writeAndFlush(buffer).flatMap { channel.close() }
            }
    }
}
