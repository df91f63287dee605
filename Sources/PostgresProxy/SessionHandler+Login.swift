import CaptureFormat
import Foundation
import GateRuntime
import Identity
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresWire
import ProxyCore

/// From the client's first message to relaying: TLS, the OIDC token, the capture opened, the
/// brokered upstream login, and the client let in with the gate's own key data.
extension PostgresSessionHandler {
    func startupMessage(_ message: PostgresFrontendMessage, context: ChannelHandlerContext) {
        switch message {
        case .sslRequest:
            guard let tlsContext = gate.tlsContexts[target.name] else {
                writeRaw(context, [UInt8(ascii: "N")])
                return
            }
            writeRaw(context, [UInt8(ascii: "S")])
            let ssl = NIOSSLServerHandler(context: tlsContext)
            do {
                try context.pipeline.syncOperations.addHandler(ssl, position: .first)
                tls = TLSInfo(version: "TLS", cipher: "")  // completed once the handshake is done (see authenticated)
            } catch {
                context.close(promise: nil)
            }
        case .gssEncRequest:
            writeRaw(context, [UInt8(ascii: "N")])
        case .cancelRequest(let pid, let key):
            if let entry = gate.cancels.lookup(processID: pid, secretKey: key) {
                if let onCancel = entry.onCancel { onCancel() } else { gate.cancels.cancel(entry, on: context.eventLoop).whenComplete { _ in } }
            }
            endReason = "cancel-request"
            context.close(promise: nil)
        case .startup(let startup):
            startupParameters = startup.parameters
            if tls == nil && !target.listen.isLoopback && !target.allowPlaintext {
                fail(context, code: "28000", "this gate requires TLS: connect with sslmode=require", reason: "tls-required")
                return
            }
            // The gate reads every statement and result as UTF-8 text; another encoding would make it
            // misread (and so misjudge) what passes, so it is refused up front rather than half-supported.
            if let encoding = startup.parameter("client_encoding"),
               !["UTF8", "UTF-8", "UNICODE"].contains(encoding.uppercased().trimmingCharacters(in: CharacterSet(charactersIn: "'\""))) {
                fail(context, code: "0A000", "the gate requires client_encoding UTF8, not \(encoding)", reason: "protocol-error")
                return
            }
            // Settings in the startup packet are read as PostgreSQL reads them (the gate must know
            // the session's search path), and none may change who the session is.
            do throws(StartupSettings.Refusal) {
                _ = try StartupSettings.read(startup.parameters.map { KeyValue($0.name, $0.value) })
            } catch {
                fail(context, code: "0A000", "\(error)", reason: "protocol-error")
                return
            }
            state = .awaitingToken
            writeBackend(context, .authentication(.cleartextPassword), flush: true)
        default:
            fail(context, code: "08P01", "expected a startup message", reason: "protocol-error")
        }
    }

    func tokenMessage(_ message: PostgresFrontendMessage, context: ChannelHandlerContext) {
        guard case .password(let body) = message, let token = try? PostgresFrontendMessage.parseCleartextPassword(body) else {
            fail(context, code: "08P01", "expected a password message carrying the OIDC token", reason: "protocol-error")
            return
        }
        state = .verifying
        let verifier = gate.verifier
        context.eventLoop.makeFutureWithTask { () async -> Result<VerifiedIdentity, IdentityError> in
            do throws(IdentityError) { return .success(try await verifier.verify(token: token)) } catch { return .failure(error) }
        }.assumeIsolated().whenSuccess { result in
            switch result {
            case .success(let identity): self.authenticated(identity, context: context)
            case .failure(let error):
                // operatorDetail (URLs, HTTP status) is for the log only, never for the client.
                self.gate.logger.notice("authentication failed", metadata: ["client": "\(self.clientAddress)", "reason": "\(error.reason)",
                                                                            "detail": "\(error.operatorDetail ?? "")"])
                self.fail(context, code: "28000", "authentication failed: \(error)", reason: "authentication-failed")
            }
        }
    }

    func parameter(_ name: String) -> String? { startupParameters.first { $0.name == name }?.value }

    func authenticated(_ identity: VerifiedIdentity, context: ChannelHandlerContext) {
        guard state == .verifying else { return }
        if tls != nil, let version = try? context.pipeline.syncOperations.nioSSL_tlsVersion() {
            // NIOSSL exposes the negotiated version but not the cipher suite.
            tls = TLSInfo(version: version.name, cipher: "")
        }
        // Startup parameters as the client sent them, recorded through the masks: the token came in
        // a password message, but nothing stops a client from putting a secret in `options`.
        let opening = core.identified(.init(subject: identity.subject, groups: identity.groups, issuer: identity.issuer,
                                            clientAddress: clientAddress, applicationName: parameter("application_name") ?? "", tls: tls,
                                            parameters: startupParameters.map { KeyValue($0.name, $0.value) }, startMicros: nowMicros()))
        // Off the event loop (LoginRecording); the state stays .verifying meanwhile, so anything
        // the client sends before AuthenticationOk is refused as it was during token verification.
        LoginRecording.openCapture(opening, key: gate.signingKey, thread: gate.writerThreads.next(), on: context.eventLoop)
            .assumeIsolated().whenComplete { result in self.captureOpened(result, context: context) }
    }

    /// The capture exists (or could not be made): let the client in, or refuse the session.
    func captureOpened(_ result: Result<SessionRecorder, any Error>, context: ChannelHandlerContext) {
        let recorder: SessionRecorder
        switch result {
        case .failure(let error):
            gate.logger.error("cannot create capture; refusing the session", metadata: ["error": "\(error)"])
            let closing = core.captureFailed(error as? CaptureError ?? CaptureError(.io, "\(error)"))
            fail(context, code: "58000", closing.message, reason: closing.reason)
            return
        case .success(let created):
            guard state == .verifying else {
                // The client left (or the gate shut down) meanwhile: the capture is sealed, not left open.
                let reason = endReason
                Task { _ = await created.finish(reason: reason) }
                return
            }
            recorder = created
        }
        sessionOpened(recorder, context: context)
        state = .connecting
        connectUpstream(context: context)
    }

    /// The session's capture is open: the core records to it, and the relay reads with the
    /// session's SQL inspection and masks.
    func sessionOpened(_ recorder: SessionRecorder, context: ChannelHandlerContext) {
        resumeWhenRecorderDrains(recorder, loop: context.eventLoop)
        if let finish = core.captureOpened(recorder) { Task { _ = await finish.run() } }
        gate.sessionStarted(self, channel: context.channel)
        machine.sql = core.inspection as? SQLSessionInspector
        machine.sql?.protocolStatement = { [weak self] name in self?.machine.protocolStatementState(name) ?? .pending }
        machine.sql?.protocolPortal = { [weak self] name in self?.machine.protocolPortalHeld(name) ?? true }
        syncMasking()
    }

    // MARK: Upstream

    func connectUpstream(context: ChannelHandlerContext) {
        guard let credentials = upstreamCredentials(context) else { return }
        var parameters: [(name: String, value: String)] = [("user", credentials.user)]
        parameters.append(("database", parameter("database") ?? parameter("user") ?? credentials.user))
        // Pass through session settings the client asked for; never its user name.
        for (k, v) in startupParameters where !["user", "database", "replication", "client_encoding"].contains(k) {
            parameters.append((k, v))
        }
        parameters.append(("client_encoding", "UTF8"))
        let login = UpstreamLogin(user: credentials.user, password: credentials.password, parameters: parameters)
        upstreamLogin = login
        let target = self.target
        let maxMessage = target.maxMessageBytes
        let tlsMode = target.upstreamTLS
        let clientTLS = gate.upstreamTLS[target.name]
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.autoRead, value: true)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .connect(host: target.upstream.host, port: target.upstream.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    self.gate.logger.error("cannot reach upstream", metadata: ["target": "\(target.name)", "error": "\(error)"])
                    self.fail(context, code: "08006", "the gate cannot reach the database", reason: "upstream-unreachable")
                case .success(let channel):
                    // The session may have ended while connecting (shutdown, idle, a client that did
                    // not wait): no login with the gate's credentials for nobody.
                    guard self.state == .connecting else {
                        channel.close(promise: nil)
                        return
                    }
                    self.upstream = channel
                    let handler = UpstreamHandler(session: self, maxMessageSize: maxMessage, tlsMode: tlsMode,
                                                  tlsContext: clientTLS, serverName: target.upstreamTLSHostname)
                    do {
                        try channel.pipeline.syncOperations.addHandler(handler)
                        handler.begin(context: channel)
                    } catch {
                        channel.close(promise: nil)
                        self.fail(context, code: "08006", "the gate cannot reach the database", reason: "upstream-unreachable")
                    }
                }
            }
    }

    /// The upstream login finished: tell the client it is in, with the gate's own key data.
    func upstreamReady(keyData: (Int32, Int32)?, parameterStatus: [PostgresBackendMessage], ready: PostgresBackendMessage) {
        guard let context, state == .connecting else { return }
        let (lexing, refusal) = LexingSettings.login(parameterStatus)
        if let refusal { return lexingRefused(refusal, context: context, reason: "lexing-settings-at-login") }
        self.lexing = lexing
        state = .relaying
        writeBackend(context, .authentication(.ok), flush: false)
        for p in parameterStatus {
            // The name as PostgreSQL keeps it (truncated to 63 bytes, or the fallback name), so
            // that only a real change later is recorded as one.
            if case .parameterStatus("application_name", let value) = p { core.applicationNameReported(value) }
            writeBackend(context, p, flush: false)
        }
        if let (pid, key) = keyData {
            let mine = gate.cancels.register(.init(address: target.upstream, processID: pid, secretKey: key,
                                                   onCancel: cancelHandler(context, upstream: .init(address: target.upstream, processID: pid, secretKey: key))))
            gateKey = mine
            writeBackend(context, .backendKeyData(processID: mine.0, secretKey: mine.1), flush: false)
        }
        writeBackend(context, ready, flush: true)
    }

    /// Upstream refused the brokered login or failed during it: the client learns only that the gate could not log in.
    func upstreamLoginFailed(_ detail: String) {
        guard let context else { return }
        gate.logger.error("upstream login failed", metadata: ["target": "\(target.name)", "detail": "\(detail)"])
        fail(context, code: "08006", "the gate could not log in to the database", reason: "upstream-login-failed")
    }

    func upstreamClosed(afterFatal: Bool) {
        guard let context, state != .closed else { return }
        if endReason == "client-terminate" { return }
        if afterFatal { return endAfterUpstreamFatal(context) }
        fail(context, code: "08006", "the connection to the database was lost", reason: "upstream-closed")
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        apply(writable ? core.resume(.client, .peerSlow) : core.pause(.client, .peerSlow))
    }
}

/// What the upstream connection reports to (see `UpstreamSession`).
extension PostgresSessionHandler: UpstreamSession {
    var logger: Logger { gate.logger }
    var targetName: String { target.name }

    func catalogToRead() -> CatalogCache? {
        guard let session, gate.needsCatalog(session) else { return nil }
        return catalog
    }
}

extension TLSVersion {
    var name: String {
        switch self {
        case .tlsv1: "TLSv1.0"
        case .tlsv11: "TLSv1.1"
        case .tlsv12: "TLSv1.2"
        case .tlsv13: "TLSv1.3"
        }
    }
}
