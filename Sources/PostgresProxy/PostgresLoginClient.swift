import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import PostgresWire
import ProxyCore

/// A connection logged in to PostgreSQL by `PostgresLoginClient`: its channel (the login's handler
/// removed, ready for the caller's), the server's parameter statuses and key data.
public struct PostgresLoggedIn: Sendable {
    public let channel: any Channel
    public let parameterStatus: [PostgresBackendMessage]
    public let keyData: (processID: Int32, secretKey: Int32)?
}

public struct PostgresLoginError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// The gate's upstream login (`PostgresUpstreamLogin`) over a connection of its own, from an
/// async context: for a tool (such as a replay) that talks to PostgreSQL as the gate does.
public enum PostgresLoginClient {
    /// Connects to `host:port` and logs in; throws with the server's or the login's reason.
    /// `tlsContext` is required unless `tls` is disable; verify-full checks `serverName`.
    public static func connect(host: String, port: Int, credentials: PostgresUpstreamLogin.Credentials,
                               tls: TargetConfig.UpstreamTLS = .disable, tlsContext: NIOSSLContext? = nil, serverName: String? = nil,
                               maxMessageSize: Int = 1 << 26,
                               group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> PostgresLoggedIn {
        if tls != .disable && tlsContext == nil { throw PostgresLoginError(description: "upstream_tls is \(tls.rawValue) and no TLS context was given") }
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: PostgresLoggedIn.self)
        let login = PostgresUpstreamLogin(credentials: credentials, tls: tls.loginTLS(hasContext: tlsContext != nil))
        let tlsSetup = LoginHandler.TLSSetup(context: tlsContext, serverName: serverName, mode: tls)
        // The login starts on the event loop the moment the connection is up, not when the caller's
        // task next runs: a starved task must not leave the server waiting (authentication_timeout).
        let bootstrap = ClientBootstrap(group: eventLoop).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(LoginHandler(login: login, tls: tlsSetup, maxMessageSize: maxMessageSize, promise: promise))
            }
        }
        do {
            _ = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            promise.fail(error)
            throw error
        }
        return try await promise.futureResult.get()
    }

    /// Drives the login on the channel's event loop, then removes itself.
    final class LoginHandler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        struct TLSSetup: Sendable {
            let context: NIOSSLContext?
            let serverName: String?
            let mode: TargetConfig.UpstreamTLS
        }

        var login: PostgresUpstreamLogin
        let tls: TLSSetup
        let promise: EventLoopPromise<PostgresLoggedIn>
        var frames: FramedDecoding<PostgresBackendDecoder>
        var context: ChannelHandlerContext?
        var finished = false

        init(login: PostgresUpstreamLogin, tls: TLSSetup, maxMessageSize: Int, promise: EventLoopPromise<PostgresLoggedIn>) {
            self.login = login; self.tls = tls; self.promise = promise
            frames = FramedDecoding(PostgresBackendDecoder(maxMessageSize: maxMessageSize))
        }

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }

        func channelActive(context: ChannelHandlerContext) {
            frames.decoder.expectingSSLResponse = login.expectsSSLResponse
            perform(login.start())
            context.fireChannelActive()
        }

        func perform(_ action: PostgresUpstreamLogin.Action) {
            guard let context, !finished else { return }
            switch action {
            case .send(let message):
                var buffer = context.channel.allocator.buffer(capacity: 64)
                do {
                    try message.encode(into: &buffer)
                } catch {
                    return fail("cannot encode \(message.messageName): \(error)")
                }
                context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            case .startTLS:
                guard let tlsContext = tls.context else { return fail("TLS setup failed: no TLS context") }
                do {
                    try context.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tlsContext, serverHostname: tls.serverName), position: .first)
                } catch {
                    return fail("TLS setup failed: \(error)")
                }
                // verify-full of a DNS name: nothing is sent until the handshake is done and the name checked.
                if tls.mode == .verifyFull, tls.serverName != nil { return }
                perform(login.tlsEstablished())
            case .fail(let detail):
                fail(detail)
            case .ready(let keyData, let parameterStatus, _):
                finished = true
                // The server sends nothing after ReadyForQuery until asked: no byte is left here.
                promise.succeed(PostgresLoggedIn(channel: context.channel, parameterStatus: parameterStatus, keyData: keyData))
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            case .none:
                break
            }
        }

        func fail(_ detail: String) {
            guard !finished else { return }
            finished = true
            promise.fail(PostgresLoginError(description: detail))
            context?.close(promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            frames.append(unwrapInboundIn(data))
            do {
                while !finished, let (message, _) = try frames.next() {
                    let action = login.received(message)
                    perform(action)
                }
            } catch {
                fail("invalid message from the database: \(error)")
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            fail("the database closed the connection during the login")
            context.fireChannelInactive()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted = event as? TLSUserEvent, !finished, tls.mode == .verifyFull, let serverName = tls.serverName {
                let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
                guard let certificate, UpstreamServerName.matches(certificate, expected: serverName) else {
                    return fail("the database's TLS certificate does not name \(serverName) (upstream_tls: verify-full)")
                }
                return perform(login.tlsEstablished())
            }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            fail("upstream connection error (upstream_tls: \(tls.mode.rawValue)): \(error)")
        }
    }
}

extension TargetConfig.UpstreamTLS {
    /// What the login decides for this setting: whether to ask for TLS, and whether it must be had.
    func loginTLS(hasContext: Bool) -> PostgresUpstreamLogin.TLS {
        guard self != .disable && hasContext else { return .disable }
        return self == .prefer ? .prefer : .required(mode: rawValue)
    }
}
