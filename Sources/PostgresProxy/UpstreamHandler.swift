import GateRuntime
import Logging
import NIOCore
import NIOSSL
import NIOTLS
import PostgresWire
import ProxyCore

/// The brokered login: the gate's own account, never the client's token.
struct UpstreamLogin {
    var user: String
    var password: String?
    var parameters: [(name: String, value: String)]
}

/// What the upstream connection reports to: the session handler. A protocol, so that the
/// connection is tested on an EmbeddedChannel with a session written in the test.
protocol UpstreamSession: AnyObject {
    var upstreamLogin: UpstreamLogin? { get }
    var logger: Logger { get }
    var targetName: String { get }
    /// The target's catalog, when this session must read it before the client is let in.
    func catalogToRead() -> CatalogCache?
    /// The login finished (and the catalog was read, if it had to be).
    func upstreamReady(keyData: (Int32, Int32)?, parameterStatus: [PostgresBackendMessage], ready: PostgresBackendMessage)
    func upstreamLoginFailed(_ detail: String)
    /// A message from the database while relaying, with the bytes it came in.
    func upstreamMessage(_ message: PostgresBackendMessage, frame: ByteBuffer)
    func upstreamClosed(afterFatal: Bool)
    /// The end of a read from the database: what was gathered for the client goes out.
    func flushClient()
    func upstreamWritabilityChanged(_ writable: Bool)
}

/// The gate's connection to the database: logs in with the target's credentials (trust,
/// cleartext, md5 or SCRAM-SHA-256, by `PostgresUpstreamLogin`), then hands every message to the session.
/// Generic over the session so that the per-message call is direct, not through an existential.
final class UpstreamHandler<Session: UpstreamSession>: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// login: authenticating; catalog: reading the target's catalog before the client is let in.
    enum Phase { case login, catalog, relaying }

    let session: Session
    let maxMessageSize: Int
    let tlsMode: TargetConfig.UpstreamTLS
    let tlsContext: NIOSSLContext?
    /// SNI and the name verify-full checks; nil for an IP address (checked against the certificate's IP names).
    let serverName: String?
    var phase = Phase.login
    /// The login's state machine, made when the connection is up (nil: the session has no login).
    var login: PostgresUpstreamLogin?
    var context: ChannelHandlerContext?
    var catalogLoader: CatalogCache.Loader?
    var catalogFailed = false
    var loginReady: PostgresBackendMessage?
    /// The catalog whose shared refresh this connection is reading.
    var refreshing: CatalogCache?
    /// Closed (by either side): no further message is handled. Kept here rather than asked of the
    /// channel for every message.
    /// The server sent a FATAL error while relaying: its close that follows ends the session as
    /// the server ended it, without an error of the gate's after the server's.
    var sawFatal = false
    // Touched for every message: no runtime exclusivity check in release builds, as for
    // PostgresSessionHandler's relay state (see there why it is safe: one event loop, and the
    // decoder is a value whose methods call nothing of the handler). Debug builds keep the checks.
    #if DEBUG
    var open = true
    /// The database's messages, decoded here as they arrive, each with the bytes it came in.
    var frames: FramedDecoding<PostgresBackendDecoder>
    #else
    @exclusivity(unchecked) var open = true
    @exclusivity(unchecked) var frames: FramedDecoding<PostgresBackendDecoder>
    #endif

    init(session: Session, maxMessageSize: Int, tlsMode: TargetConfig.UpstreamTLS, tlsContext: NIOSSLContext?, serverName: String?) {
        self.session = session
        self.maxMessageSize = maxMessageSize
        self.tlsMode = tlsMode
        self.tlsContext = tlsContext
        self.serverName = serverName
        frames = FramedDecoding(PostgresBackendDecoder(maxMessageSize: maxMessageSize))
    }

    /// Called once the TCP connection is up: negotiate TLS if configured, then send the startup message.
    func begin(context channel: Channel) {
        guard let upstream = session.upstreamLogin else { return }
        let login = PostgresUpstreamLogin(credentials: .init(user: upstream.user, password: upstream.password, parameters: upstream.parameters),
                                          tls: tlsMode.loginTLS(hasContext: tlsContext != nil))
        self.login = login
        frames.decoder.expectingSSLResponse = login.expectsSSLResponse
        perform(login.start())
    }

    /// Carries out what the login asks for.
    func perform(_ action: PostgresUpstreamLogin.Action) {
        switch action {
        case .send(let message): send(message)
        case .startTLS: startTLS()
        case .fail(let detail): loginFailed(detail)
        case .ready(_, _, let ready): loggedIn(ready)
        case .none: break
        }
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    /// The server accepted SSLRequest: the TLS handler goes first in the pipeline.
    func startTLS() {
        guard let context, let tlsContext, let login else { return loginFailed("TLS setup failed: no TLS context") }
        do {
            try context.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tlsContext, serverHostname: serverName), position: .first)
        } catch {
            return loginFailed("TLS setup failed: \(error)")
        }
        // verify-full of a DNS name: nothing is sent until the handshake is done and the name checked.
        if tlsMode == .verifyFull, serverName != nil { return }
        perform(login.tlsEstablished())
    }

    func send(_ message: PostgresFrontendMessage) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        do {
            try message.encode(into: &buffer)
        } catch {
            return loginFailed("cannot encode \(message.messageName): \(error)")
        }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        frames.append(unwrapInboundIn(data))
        do {
            while open, let (message, frame) = try frames.next() {
                switch phase {
                case .relaying:
                    if case .errorResponse(let d) = message, d.severity == "FATAL" || d.severity == "PANIC" { sawFatal = true }
                    session.upstreamMessage(message, frame: frame)
                case .catalog: catalogMessage(message)
                case .login: loginMessage(message, context: context)
                }
            }
        } catch {
            session.logger.error("invalid message from the database", metadata: ["error": "\(error)"])
            if phase == .relaying {
                session.upstreamClosed(afterFatal: false)
                close()
            } else {
                loginFailed("invalid message from the database: \(error)")
            }
        }
    }

    func loginMessage(_ message: PostgresBackendMessage, context: ChannelHandlerContext) {
        guard var login else { return }
        let action = login.received(message)
        self.login = login
        perform(action)
    }

    /// Logged in: the catalog is read first if it must be, then the session is told.
    func loggedIn(_ message: PostgresBackendMessage) {
        guard let context else { return }
        if let catalog = session.catalogToRead() {
            switch catalog.refresh.claim(catalog, on: context.eventLoop) {
            case .fresh:
                break
            case .load:
                session.logger.info("reading the target's catalog", metadata: [
                    "target": "\(session.targetName)", "refresh": "\(catalog.refresh.started.load(ordering: .relaxed))"])
                refreshing = catalog
                phase = .catalog
                catalogLoader = CatalogCache.Loader()
                loginReady = message
                send(.query(CatalogCache.query))
                return
            case .wait(let done):
                session.logger.debug("waiting for the catalog refresh in flight", metadata: ["target": "\(session.targetName)"])
                phase = .catalog
                loginReady = message
                done.assumeIsolated().whenComplete { _ in self.catalogReady() }
                return
            }
        }
        phase = .relaying
        session.upstreamReady(keyData: login?.keyData.map { ($0.processID, $0.secretKey) }, parameterStatus: login?.parameterStatus ?? [], ready: message)
    }

    /// The answer to the catalog query. A failure is logged and the session goes on without a
    /// fresh catalog: columns it cannot name are then masked whole wherever column rules apply.
    func catalogMessage(_ message: PostgresBackendMessage) {
        switch message {
        case .dataRow(let row):
            catalogLoader?.add(row.columns)
        case .errorResponse(let fields):
            catalogFailed = true
            session.logger.warning("cannot read the target's catalog; unresolved columns will be masked whole",
                                        metadata: ["target": "\(session.targetName)", "error": "\(fields.notice.message)"])
        case .readyForQuery:
            guard let loader = catalogLoader, !catalogFailed, let context else {
                catalogLoader = nil
                endRefresh()
                return catalogReady()
            }
            catalogLoader = nil
            let target = session.targetName, logger = session.logger, catalog = refreshing
            CatalogRefresh.finish(loader, on: context.eventLoop).assumeIsolated().whenComplete { result in
                if case .success(let snapshot) = result {
                    catalog?.store(snapshot)
                    if !snapshot.complete {
                        logger.warning("catalog larger than the gate reads; columns beyond it are masked whole",
                                       metadata: ["target": "\(target)", "limit": "\(CatalogCache.rowLimit)"])
                    }
                }
                self.endRefresh()
                self.catalogReady()
            }
        default:
            break
        }
    }

    /// The catalog is as fresh as it gets (read here or by the session that was reading it): the client is let in.
    func catalogReady() {
        guard open, phase == .catalog, let ready = loginReady else { return }
        phase = .relaying
        session.upstreamReady(keyData: login?.keyData.map { ($0.processID, $0.secretKey) }, parameterStatus: login?.parameterStatus ?? [], ready: ready)
    }

    /// Ends the refresh this connection was reading, once (also when the connection is lost).
    func endRefresh() {
        refreshing?.refresh.end()
        refreshing = nil
    }

    func loginFailed(_ detail: String) {
        session.upstreamLoginFailed(detail)
        close()
    }

    /// Closes the upstream connection; no message after this one is handled.
    func close() {
        open = false
        context?.close(promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        session.flushClient()
    }

    func channelInactive(context: ChannelHandlerContext) {
        open = false
        endRefresh()
        session.upstreamClosed(afterFatal: sawFatal)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        session.upstreamWritabilityChanged(context.channel.isWritable)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent, phase == .login, tlsMode == .verifyFull, let serverName {
            let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate()
            guard let certificate, UpstreamServerName.matches(certificate, expected: serverName) else {
                return loginFailed("the database's TLS certificate does not name \(serverName) (upstream_tls: verify-full)")
            }
            if let login { perform(login.tlsEstablished()) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // During login this is most often the TLS handshake (a certificate that does not verify):
        // the session is refused saying so, before the startup message, let alone a password, is sent.
        if open && phase != .relaying {
            return loginFailed("upstream connection error (upstream_tls: \(tlsMode.rawValue)): \(error)")
        }
        session.logger.error("upstream connection error", metadata: ["error": "\(error)"])
        close()
    }
}

