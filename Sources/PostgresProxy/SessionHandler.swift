import CaptureFormat
import Foundation
import GateRuntime
import Identity
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresWire
import Masking
import ProxyCore
import SQLInspection

/// One client connection, from SSLRequest to Terminate: TLS termination, OIDC login
/// (the token is the password), the brokered upstream login, then relaying every
/// message through the exchange pipeline and recording it. Both this channel and
/// the upstream channel run on the same event loop, so the state needs no locks.
final class PostgresSessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum State {
        case startup
        case awaitingToken
        case verifying
        case connecting
        case relaying
        case closed
    }

    let gate: PostgresGate
    let target: TargetConfig
    /// The target's catalog cache (looked up once, not per result).
    let catalog: CatalogCache?
    var state = State.startup
    var context: ChannelHandlerContext?
    var clientAddress = ""
    var tls: TLSInfo?
    var startupParameters: [(name: String, value: String)] = []
    /// Every step of every exchange that is not PostgreSQL's own: identity, decisions, recording, counts.
    var core: ExchangeSession
    var session: SessionContext? { core.context }
    var upstream: Channel?
    var upstreamLogin: UpstreamLogin?
    var gateKey: (Int32, Int32)?
    var endReason = "client-disconnect"
    /// How the server reads statements, as it reports it: the gate ends the session when it changes.
    var lexing = LexingSettings()
    var relay: RelayState
    /// The session's SQL inspection (the core's inspector), for what protocol messages share with
    /// SQL: prepared statement names, what the server confirms.
    var sqlInspection: SQLSessionInspector?
    /// The session's masks for results as they stream (nil: none configured for it), made from
    /// the core's masks of policy generation `maskingGeneration`.
    var masking: PostgresResultMasker?
    var maskingGeneration = -1
    /// Messages for each side, gathered during one read and written in one go: a statement's
    /// Bind/Execute/Sync (or a result's rows) become one write, not one per message.
    var clientOut = ByteBuffer()
    var upstreamOut = ByteBuffer()
    /// Strict recording: upstream output waiting for its record, by the core's ticket.
    var heldUpstream: [(ticket: UInt64, bytes: ByteBuffer)] = []
    /// The client's messages, decoded here as they arrive, each with the bytes it came in.
    var frames: FramedDecoding<PostgresFrontendDecoder>

    init(gate: PostgresGate, target: TargetConfig) {
        self.gate = gate
        self.target = target
        catalog = gate.catalogs[target.name]
        var writerOptions = WriterOptions()
        writerOptions.compressionLevel = Int32(target.recordCompressionLevel)
        core = ExchangeSession(settings: .init(target: target.name, protocolName: "postgres", proxyID: gate.config.proxy.id,
                                               writerName: "capture-proxy \(gateVersion)", captureDirectory: gate.config.proxy.captureDirectory,
                                               writerOptions: writerOptions, maxValueBytes: target.recordMaxValueBytes,
                                               headerAttributes: [KeyValue("upstream", target.upstream.description)],
                                               durability: target.recordDurability),
                               policies: gate.policies)
        relay = RelayState(maxRows: target.recordMaxRows)
        frames = FramedDecoding(PostgresFrontendDecoder(maxMessageSize: target.maxMessageBytes))
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientAddress = context.channel.remoteAddress.map(describe) ?? "unknown"
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a refusal the connection only drains (see `closeAfterError`): nothing is kept.
        guard state != .closed else { return }
        let bytes = unwrapInboundIn(data)
        core.countBytes(fromClient: bytes.readableBytes)
        frames.append(bytes)
        do {
            while state != .closed, let (message, frame) = try frames.next() {
                switch state {
                case .startup: startupMessage(message, context: context)
                case .awaitingToken: tokenMessage(message, context: context)
                case .verifying, .connecting:
                    // A client that does not wait for AuthenticationOk is not following the protocol.
                    fail(context, code: "08P01", "message received before authentication completed", reason: "protocol-error")
                case .relaying: clientMessage(message, frame: frame, context: context)
                case .closed: break
                }
            }
        } catch {
            protocolError(error, context: context)
        }
    }

    func protocolError(_ error: any Error, context: ChannelHandlerContext) {
        gate.logger.warning("protocol error from client", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
        fail(context, code: "08P01", "invalid message from client: \(error)", reason: "protocol-error")
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushUpstream()
    }

    func flushUpstream() {
        // Strict recording holds the output until it is recorded (SessionHandler+WriteAhead).
        apply(upstreamOut.readableBytes > 0 ? core.flushBeforeForwarding(acknowledged: writeAheadAcknowledgement) : core.flush())
        guard let upstream, upstreamOut.readableBytes > 0 else { return }
        upstream.writeAndFlush(upstreamOut, promise: nil)
        Self.recycle(&upstreamOut)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if state != .closed, frames.bufferedBytes > 0 {
            do { _ = try frames.last() } catch {
                // The client went away in the middle of a message: nothing of it was forwarded.
                gate.logger.notice("client closed the connection mid-message", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
                endReason = "protocol-error"
            }
        }
        teardown(reason: endReason)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOSSLError || error is BoringSSLError {
            gate.logger.info("TLS error", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
            endReason = "tls-error"
            context.close(promise: nil)
        } else {
            gate.logger.info("client connection error", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        apply(context.channel.isWritable ? core.resume(.upstream, .peerSlow) : core.pause(.upstream, .peerSlow))
        context.fireChannelWritabilityChanged()
    }

    /// Back-pressure, from the core's reasons: a slow client, or a capture writer that has fallen
    /// behind, stops the gate reading from upstream, so a large result waits in PostgreSQL, not in
    /// the gate's memory; a slow upstream stops it reading from the client.
    func apply(_ actions: [ExchangeAction]) {
        for action in actions {
            switch action {
            case .pauseReading(.upstream), .resumeReading(.upstream):
                let read = core.pauses.reads(.upstream)
                upstream?.setOption(ChannelOptions.autoRead, value: read).whenComplete { _ in }
                if read { upstream?.read() }
            case .pauseReading(.client), .resumeReading(.client):
                guard let context else { continue }
                let read = core.pauses.reads(.client)
                context.channel.setOption(ChannelOptions.autoRead, value: read).whenComplete { _ in }
                if read { context.read() }
            case .holdUpstream(let ticket): holdUpstream(ticket)
            case .releaseUpstream(let ticket): releaseUpstream(through: ticket)
            case .forward, .refuse, .hold:
                break
            }
        }
    }

    /// Stamps an event now; it reaches the recorder with the rest of this read's (`submitRecorded`).
    func record(_ payload: consuming Payload, exchange: UInt64) {
        core.record(payload, exchange: exchange)
    }

    /// Hands this read's events to the recorder. Called where the handlers flush their output,
    /// and before the session ends, so nothing stamped is left behind.
    func submitRecorded() {
        apply(core.flush())
    }

    /// The writer caught up: read again. Set once per session, so a drain cannot be missed; it
    /// runs on the event loop after whatever paused reading.
    func resumeWhenRecorderDrains(_ recorder: SessionRecorder, loop: any EventLoop) {
        let handler = NIOLoopBound(self, eventLoop: loop)
        recorder.whenDrained {
            loop.execute {
                handler.value.apply(handler.value.core.recorderDrained())
            }
        }
        // Evidence or nothing: a session whose capture cannot be written is ended (fail closed).
        recorder.whenFailed { error in
            loop.execute {
                let session = handler.value
                session.gate.logger.error("capture write failed; ending the session", metadata: ["error": "\(error)"])
                guard let context = session.context else { return }
                session.fail(context, code: "58000", "the gate cannot record this session; it was ended", reason: "recording-failed")
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is GateShutdown {
            fail(context, code: "57P01", "terminating connection due to administrator command (the gate is shutting down)", reason: "shutdown")
            return
        }
        // Silence while a statement runs (pg_sleep, a long report) is not idleness.
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, relay.pending.isEmpty {
            fail(context, code: "57P05", "terminating connection due to idle timeout (\(target.idleTimeout))", reason: "idle-timeout")
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Startup

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
                gate.cancels.cancel(entry, on: context.eventLoop).whenComplete { _ in }
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
        resumeWhenRecorderDrains(recorder, loop: context.eventLoop)
        if let finish = core.captureOpened(recorder) { Task { _ = await finish.run() } }
        gate.sessionStarted(self, channel: context.channel)
        sqlInspection = core.inspection as? SQLSessionInspector
        sqlInspection?.protocolStatement = { [weak self] name in self?.protocolStatementState(name) ?? .pending }
        sqlInspection?.protocolPortal = { [weak self] name in self?.protocolPortalHeld(name) ?? true }
        syncMasking()
        state = .connecting
        connectUpstream(context: context)
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
            let mine = gate.cancels.register(.init(address: target.upstream, processID: pid, secretKey: key))
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

    func upstreamClosed(afterFatal: Bool = false) {
        guard let context, state != .closed else { return }
        if endReason == "client-terminate" { return }
        if afterFatal { return endAfterUpstreamFatal(context) }
        fail(context, code: "08006", "the connection to the database was lost", reason: "upstream-closed")
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        apply(writable ? core.resume(.client, .peerSlow) : core.pause(.client, .peerSlow))
    }

    // MARK: Relaying

    func clientMessage(_ message: PostgresFrontendMessage, frame: ByteBuffer, context: ChannelHandlerContext) {
        // An ending session forwards nothing new (see `endAfterAnswers`): the client gets its FATAL error.
        guard upstream != nil, relay.confirmed.ending == nil else { return }
        // After the gate refuses a statement of an extended-protocol batch, the rest of the batch up to
        // Sync is discarded unseen, as PostgreSQL does after an error: no second error, no decision.
        if relay.skippingUntilSync, message.isSkippedAfterError { return }
        if refusedBeforeForwarding(message, context: context) { return }
        switch message {
        case .query(let text):
            relay.syncSequence += 1
            guard let admitted = admit(.postgres(PostgresRequest(text: text, path: .simple))) else {
                relay.syncSequence -= 1
                refuse(context, ownReady: true)
                return
            }
            relay.pending.append(.init(exchange: admitted.exchange, simple: true, sync: relay.syncSequence, started: .now(),
                                       projections: admitted.projections, rowStreams: admitted.rowStreams))
        case .parse(let name, let query, _):
            // A named statement is registered when the server confirms it (ParseComplete, see
            // SessionHandler+Confirmed); one whose name has a change still unconfirmed is refused.
            if !name.isEmpty, let refusal = pendingNameRefusal(name) {
                core.countRefusal()
                relay.lastDenial = refusal
                relay.skippingUntilSync = true
                refuse(context, ownReady: false)
                return
            }
            // Decided at Parse too, so a refused statement is never even prepared upstream; an allowed
            // one is recorded (and decided again) at Execute, where its parameters are known.
            if core.currentPolicy().enforcing {
                let request = Request.postgres(PostgresRequest(text: query, path: .extended, statementName: name))
                if core.preview(request).action != .allow {
                    _ = admit(request)
                    relay.skippingUntilSync = true
                    refuse(context, ownReady: false)
                    return
                }
            }
            if name.isEmpty { registerStatement(name, text: query) }
        case .bind(let bind):
            // A named portal is registered when the server confirms it (SessionHandler+Confirmed).
            guard bindPortal(bind, context: context) else { return }
        case .describe(let kind, let name):
            relay.describes.append(.init(target: kind == .statement ? .statement(name) : .portal(name), injected: false,
                                         sync: relay.syncSequence + 1))
        case .execute(let portal, _):
            // A portal whose Bind is pipelined before this Execute: if that Bind fails, the server skips this too.
            let bound = relay.portals[portal] ?? relay.pendingPortals[portal]
            let text = bound?.text ?? statementText(nil)
            let request = Request.postgres(PostgresRequest(text: text, path: .extended, statementName: bound?.statement ?? "",
                                                           portalName: portal, parameters: bound?.parameters ?? []))
            guard let admitted = admit(request) else {
                // Denied: the server never sees it; the client gets the error as if the server raised it,
                // and the rest of the batch up to Sync is skipped, as PostgreSQL itself would do.
                relay.skippingUntilSync = true
                refuse(context, ownReady: false)
                return
            }
            // Masking needs the portal's real columns (a statement's Describe may be stale: the server
            // re-plans after DDL or a search_path change): ask the server, and keep the answer to itself.
            if masking != nil, relay.portalDescribed[portal] == nil,
               !relay.describes.contains(where: { if case .portal(let p) = $0.target { return p == portal } else { return false } }) {
                do {
                    try PostgresFrontendMessage.describe(.portal, name: portal).encode(into: &upstreamOut)
                    relay.describes.append(.init(target: .portal(portal), injected: true, sync: relay.syncSequence + 1))
                    relay.expected.append(.describe)
                    relay.confirmed.forwarded(.describe)
                } catch {
                    fail(context, code: "08P01", "cannot describe portal: \(error)", reason: "protocol-error")
                    return
                }
            }
            relay.pending.append(.init(exchange: admitted.exchange, simple: false, sync: relay.syncSequence + 1, started: .now(),
                                       projections: admitted.projections, rowStreams: admitted.rowStreams,
                                       portal: portal, statement: bound?.statement))
        case .sync:
            relay.syncSequence += 1
            relay.skippingUntilSync = false
        case .close(let kind, let name):
            if kind == .statement {
                // A named statement is forgotten when the server confirms the Close (CloseComplete).
                if name.isEmpty { forgetStatement(name) }
            } else {
                relay.portals[name] = nil
                relay.pendingPortals[name] = nil  // its BindComplete (before the Close's) must not bring it back
                relay.portalDescribed[name] = nil
            }
        case .copyData(let data):
            recordCopy(.stdin, data)
        case .functionCall:
            guard let admitted = admit(.postgres(PostgresRequest(text: "", path: .functionCall))) else {
                refuse(context, ownReady: true)
                return
            }
            relay.syncSequence += 1
            relay.pending.append(.init(exchange: admitted.exchange, simple: true, sync: relay.syncSequence, started: .now()))
        case .terminate:
            endReason = "client-terminate"
        case .startup, .sslRequest, .gssEncRequest, .cancelRequest, .password:
            fail(context, code: "08P01", "unexpected \(message.messageName) message after startup", reason: "protocol-error")
            return
        default:
            break
        }
        // Requests go upstream exactly as the client sent them.
        upstreamOut.writeImmutableBuffer(frame)
        if let expectation = Self.expectation(for: message) { relay.expected.append(expectation) }
        noteForwarded(message)
        if case .terminate = message {
            flushUpstream()
            endAfterTerminate(context)
        }
    }

    /// The SQL an Execute of `statement` runs: its Parse text, or for a statement PREPAREd in SQL
    /// (or one the gate never saw parsed) an EXECUTE of it, which inspection resolves or treats as
    /// unknown (a write, with results masked as untraceable).
    func statementText(_ statement: String?) -> String {
        if let statement, let text = relay.statements[statement] { return text }
        // A pending Parse of a name SQL PREPARE holds fails (the server keeps the PREPAREd one).
        if let statement, sqlInspection?.prepared[statement] == nil, let text = relay.confirmed.pendingParses[statement] { return text }
        return "EXECUTE \"" + (statement ?? "").replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Answers a refused request with 42501 in its place: now, if the server owes nothing for
    /// what was sent before it, else as soon as it has answered that. `ownReady`: a simple Query
    /// or FunctionCall, which the gate answers with its own ReadyForQuery (nothing went upstream).
    func refuse(_ context: ChannelHandlerContext, ownReady: Bool) {
        relay.expected.append(.refusal(relay.lastDenial, ownReady: ownReady))
        emitReadyRefusals(context)
        flushClient()
    }

    /// The refusals at the head of what the server owes: their turn has come.
    func emitReadyRefusals(_ context: ChannelHandlerContext) {
        while case .refusal(let message, let ownReady)? = relay.expected.first {
            relay.expected.removeFirst()
            core.countError()
            writeBackend(context, .errorResponse(.init(severity: "ERROR", sqlState: "42501", message: message)), flush: false)
            if ownReady { writeBackend(context, .readyForQuery(relay.transactionStatus), flush: false) }
        }
    }

    /// What the server will answer for a message the gate forwards.
    static func expectation(for message: PostgresFrontendMessage) -> RelayState.Expectation? {
        switch message {
        case .query, .functionCall: .query
        case .parse: .parse
        case .bind: .bind
        case .close: .close
        case .describe: .describe
        case .execute: .execute
        case .sync: .sync
        default: nil
        }
    }

    /// Moves past what an upstream message answers. After an error the server skips the rest
    /// of an extended batch until Sync, so those answers (and the gate's refusals among them,
    /// which the server's error supersedes) are not owed any more.
    func upstreamAnswered(_ message: PostgresBackendMessage) {
        guard let head = relay.expected.first else { return }
        switch (head, message) {
        case (.parse, .parseComplete), (.bind, .bindComplete), (.close, .closeComplete),
             (.describe, .rowDescription), (.describe, .noData),
             (.execute, .commandComplete), (.execute, .emptyQueryResponse), (.execute, .portalSuspended),
             (.sync, .readyForQuery), (.query, .readyForQuery):
            relay.expected.removeFirst()
        case (.query, _):
            break
        case (_, .errorResponse):
            if case .sync = head { return }
            while let first = relay.expected.first {
                if case .sync = first { break }
                relay.expected.removeFirst()
            }
        default:
            break
        }
    }

    /// Inspects, decides and records one request (the core's steps). Nil when it must not be
    /// forwarded (`relay.lastDenial` then says why); otherwise what masking needs to place the
    /// columns of its results.
    func admit(_ request: consuming Request) -> Admitted? {
        let actions = core.request(request)
        relay.exchangeStarted()
        syncMasking()
        var admitted: Admitted?
        for action in actions {
            switch action {
            case .forward(let a): admitted = a
            case .refuse(_, let message): relay.lastDenial = message
            case .hold(let hold):
                // Holds are not configured for this adapter (approvals come with their own issue): fail closed.
                relay.lastDenial = "tollgate: approval \(hold.approvalID) required; approvals are not available on this gate"
            case .pauseReading, .resumeReading, .holdUpstream, .releaseUpstream: apply([action])
            }
        }
        return admitted
    }

    /// The result masker follows the core's masks: after a reload, the new ones. A result or COPY
    /// in flight keeps the plan it was opened with; the new masks apply from the next one. (A
    /// plan dropped in the middle would let the rest of a COPY through.)
    func syncMasking() {
        guard let generation = core.policy?.generation, generation != maskingGeneration else { return }
        maskingGeneration = generation
        let previous = masking
        masking = core.recording.session.map { PostgresResultMasker(masker: $0) }
        if let previous, masking != nil {
            masking!.tally = previous.tally
            masking!.columns = previous.columns
            masking!.columnCounts = previous.columnCounts
            masking!.copy = previous.copy
        }
    }

    /// A message from upstream while relaying: mask it, record it against its exchange and pass it on.
    func upstreamMessage(_ message: PostgresBackendMessage, frame: ByteBuffer) {
        guard let context, state == .relaying else { return }
        /// Set when masking rewrote the message; otherwise its frame is forwarded as it came.
        var replacement: PostgresBackendMessage?
        switch message {
        case .rowDescription(let fields):
            // In the extended protocol a RowDescription answers a Describe; the result of an Execute
            // opens with its first row, from its portal's description. In a simple Query it opens the result.
            if relay.pending.first?.simple != true, !relay.describes.isEmpty {
                if answerDescribe(fields) { return finishUpstreamMessage(message) }
            } else {
                startResult(fields)
            }
        case .noData:
            if !relay.describes.isEmpty, answerDescribe([]) { return finishUpstreamMessage(message) }
        case .dataRow(let row):
            if !relay.resultStarted { startResult(pendingColumns()) }
            var sent = row
            if masking != nil, let masked = masking!.mask(row) { sent = masked; replacement = .dataRow(masked) }
            let kept = !relay.rows.isFull
            relay.rows.add { packForRecording(sent, kept: kept, into: &$0) }
        case .commandComplete(let tag):
            finishResult(tag: tag, error: nil)
        case .emptyQueryResponse:
            finishResult(tag: "", error: nil)
        case .portalSuspended:
            finishResult(tag: "(portal suspended)", error: nil)
        case .errorResponse(let fields):
            var fields = fields
            if masking != nil, let masked = masking!.mask(fields, at: .error, withhold: withholdsDiagnostics()) {
                fields = masked; replacement = .errorResponse(masked)
            }
            finishResult(tag: "", error: fields.notice)
        case .noticeResponse(let fields):
            var fields = fields
            if masking != nil, let masked = masking!.mask(fields, at: .notice, withhold: withholdsDiagnostics()) {
                fields = masked; replacement = .noticeResponse(masked)
            }
            relay.notices.append(fields.notice)
        case .notificationResponse(let pid, let channel, let payload):
            if masking != nil, let masked = masking!.mask(text: payload, at: .notice) {
                replacement = .notificationResponse(processID: pid, channel: channel, payload: masked)
            }
        case .copyOutResponse(let response):
            if masking != nil {
                // One layout per COPY of the request, in order; a COPY without one is refused below.
                let head = relay.pending.startIndex
                let layout = relay.pending.isEmpty || relay.pending[head].rowStreams.isEmpty ? nil : relay.pending[head].rowStreams.removeFirst()
                if layout == nil {
                    // The gate could not read the COPY's options (it let the statement through unparsed,
                    // as a target without policies does): its fields cannot be placed, so no row passes.
                    fail(context, code: "42501", "tollgate: COPY output whose options the gate could not read cannot be masked", reason: "protocol-error")
                    return
                }
                if response.format != 0 || layout?.format == .binary {
                    // Refused at admission; should the server still send binary COPY rows, they must not pass.
                    fail(context, code: "42501", "tollgate: binary COPY output cannot be masked", reason: "protocol-error")
                    return
                }
                masking!.beginCopy(layout ?? RowStreamLayout(format: .text, delimiter: 0x09, header: false, table: nil, columns: []),
                                   projections: layout == nil ? [.unknown] : relay.pending.first?.projections ?? [],
                                   catalog: catalogLookup())
            }
        case .copyData(let data):
            var data = data
            if masking != nil, let masked = masking!.maskCopyData(data) { data = masked; replacement = .copyData(masked) }
            recordCopy(.stdout, data)
        case .copyDone:
            masking?.copy = nil
        case .functionCallResponse(let value):
            // The result's format is the client's choice: a flagged value is replaced by NULL, never passed clear.
            if masking != nil, let value, let r = masking!.masker.mask(Array(value.readableBytesView)) {
                masking!.tally.record(r, at: MaskLocation("function result"))
                replacement = .functionCallResponse(nil)
            }
        case .readyForQuery(let status):
            relay.transactionStatus = status
            relay.readyForQueryCount += 1
            // Executes the server skipped after an error in their batch get no result of their own.
            let answered = relay.readyForQueryCount
            relay.batchesAnswered(through: answered)
            // No result stays open across ReadyForQuery (a portal described but not executed).
            if relay.resultStarted { _ = relay.takeResult() }
            masking?.columns = PostgresResultMasker.ResultColumns()
            // Portals end with their transaction; outside one, those of the answered batches are gone.
            if status == .idle { relay.endPortals(answeredSyncs: answered) }
        case .backendKeyData:
            // Never let the upstream's key reach the client.
            return
        case .parameterStatus(let name, let value) where LexingSettings.reported.contains(name):
            if let refusal = lexing.report(name, value) { return lexingChanged(refusal, context: context) }
        case .parameterStatus(let name, let value) where name == "application_name" && value != core.applicationName:
            // `SET application_name` mid-session (an assistant naming the prompt it works on): on the
            // record from here on, as an annotation of its own.
            core.applicationNameChanged(to: value)
        default:
            break
        }
        // What masking left alone goes to the client as the database sent it; nothing once the session is ending.
        if relay.confirmed.ending == nil {
            if let replacement { writeBackend(context, replacement, flush: false) } else { clientOut.writeImmutableBuffer(frame) }
        }
        finishUpstreamMessage(message)
    }

    /// After a message is handled (forwarded or kept back): what it answered, and the refusals now due.
    func finishUpstreamMessage(_ message: PostgresBackendMessage) {
        upstreamAnswered(message)
        confirmAnswered(message)
        if endIfAnswered() { return }
        if let context, state == .relaying, relay.confirmed.ending == nil { emitReadyRefusals(context) }
    }

    /// Stores a Describe's answer. True when it was the gate's own Describe: not forwarded.
    func answerDescribe(_ fields: [PostgresBackendMessage.ColumnDescription]) -> Bool {
        let describe = relay.describes.removeFirst()
        switch describe.target {
        case .statement(let name): relay.described[name] = fields
        case .portal(let name): relay.portalDescribed[name] = fields
        }
        return describe.injected
    }

    /// The columns of the result of the Execute being answered: its portal's, from a Describe of
    /// the portal, else from its statement's Describe with the portal's formats (for recording;
    /// masking describes portals itself). Read field by field: a method on `relay` would copy it whole.
    func pendingColumns() -> [PostgresBackendMessage.ColumnDescription] {
        guard let pending = relay.pending.first, !pending.simple, let portal = pending.portal else { return [] }
        if let described = relay.portalDescribed[portal] { return described }
        guard let p = relay.portals[portal], var fields = relay.described[p.statement] else { return [] }
        for i in fields.indices {
            fields[i].format = p.resultFormats.isEmpty ? 0 : p.resultFormats.count == 1 ? p.resultFormats[0]
                : (i < p.resultFormats.count ? p.resultFormats[i] : 0)
        }
        return fields
    }

    /// The target's catalog as masking sees it; while it is stale (DDL went through the gate),
    /// views cannot be traced and count as untraceable.
    func catalogLookup() -> CatalogLookup {
        guard let catalog, let snapshot = catalog.snapshot else { return .none }
        return snapshot.lookup(stale: catalog.isStale)
    }

    /// Opens a result: its columns for the capture, and which of them column rules mask.
    func startResult(_ fields: [PostgresBackendMessage.ColumnDescription]) {
        // A prepared statement's every Execute has the same columns: their plan is made once
        // (for the same masks and catalog), not per result.
        let head = relay.pending.startIndex
        let statement = relay.pending.isEmpty || relay.pending[head].simple ? nil : relay.pending[head].statement
        let generation = (core.policy?.generation ?? -1, catalog?.generation ?? 0, core.inspection?.generation ?? 0)
        if let statement, let cached = relay.resultPlans[statement], cached.fields == fields, cached.generation == generation {
            relay.beginResult(columns: cached.columns)
            if let plan = cached.masking { masking?.columns = plan }
            return
        }
        relay.beginResult(columns: fields.map { Column(name: $0.name, typeOID: $0.typeOID, tableOID: $0.tableOID,
                                                       attributeNumber: UInt16(bitPattern: $0.columnAttribute), format: UInt8(truncatingIfNeeded: $0.format)) })
        defer {
            if let statement {
                if relay.resultPlans.count >= 256 { relay.resultPlans.removeAll(keepingCapacity: true) }
                relay.resultPlans[statement] = RelayState.ResultPlan(fields: fields, generation: generation, columns: relay.columns,
                                                                      masking: masking?.columns)
            }
        }
        guard masking != nil else { return }
        let snapshot = catalog?.snapshot
        var stale = false
        let sources = fields.map { f -> ResultColumn in
            guard f.tableOID != 0 else { return ResultColumn(name: f.name, source: .computed) }
            guard let (table, column) = snapshot?.column(tableOID: f.tableOID, attribute: f.columnAttribute) else {
                stale = true
                return ResultColumn(name: f.name, source: .unresolved)
            }
            return ResultColumn(name: f.name, source: .table(table, column: column))
        }
        if stale && masking!.masker.hasColumnRules { catalog?.markStale() }
        masking!.beginResult(fields, sources: sources, projections: relay.pending.first?.projections ?? [.unknown],
                             catalog: catalogLookup())
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

    func finishResult(tag: String, error: CaptureFormat.PostgresNotice?) {
        guard let pending = relay.pending.first else {
            if error != nil { core.countError() }
            return
        }
        var response = relay.takeResult()
        response.commandTag = tag
        response.error = error
        // Every DataRow of the result is either kept or counted in the cut.
        let rowsSent = UInt64(response.packedRows.count) + (response.cut?.rows ?? 0)
        response.rowCount = rowCount(fromTag: tag) ?? rowsSent
        response.durationMicros = UInt64(max(0, (NIODeadline.now() - pending.started).nanoseconds / 1000))
        core.responded(.postgres(response), exchange: pending.exchange, rows: rowsSent, masked: masking?.takeTally())
        // A simple Query may hold several statements: it stays pending until ReadyForQuery.
        if !pending.simple { relay.pending.removeFirst() }
    }

    func recordCopy(_ stream: StreamChunk.Stream, _ data: ByteBuffer) {
        guard let exchange = relay.pending.first?.exchange else { return }
        relay.copyChunks += 1
        guard relay.copyChunks <= target.recordMaxRows else { return }
        // Data sent to the database is recorded as masked as results are: the client's masks apply to the record.
        core.streamed(Array(data.readableBytesView), stream: stream, exchange: exchange)
    }

    /// Writes a row in the capture's packed form straight from the DataRow's bytes; returns the
    /// total length of its values as sent. A row that is kept gets each value capped and the
    /// secrets pass; a row past the cap is only hashed, as sent.
    func packForRecording(_ row: PostgresBackendMessage.DataRow, kept: Bool, into w: inout WireWriter) -> Int {
        // Read once, not per value inside the closure (each read of a property is a retain).
        let secrets = kept ? core.recording.secrets : nil, maxValue = target.recordMaxValueBytes
        var valueBytes = 0
        row.forEachValue { _, _, value in
            guard let value else { w.varint(0); return }
            valueBytes += value.count
            // Secrets first, then the cap: a token across the cut would no longer be recognised.
            // Scanned in place; only a value the pass or the cap changes is copied.
            let secret = secrets?.mask(value.assumingMemoryBound(to: UInt8.self))
            if kept && (secret != nil || value.count > maxValue) {
                let recorded = core.recording.capped(secret?.bytes ?? Array(value))
                w.varint(UInt64(recorded.count) + 1)
                w.append(raw: recorded)
            } else {
                w.varint(UInt64(value.count) + 1)
                w.append(raw: value)
            }
        }
        return valueBytes
    }

    // MARK: Output and teardown

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
                       exchange: relay.pending.first?.exchange ?? 0)
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

func describe(_ address: SocketAddress) -> String {
    if let ip = address.ipAddress, let port = address.port { return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)" }
    return "\(address)"
}

func rowCount(fromTag tag: String) -> UInt64? {
    // "SELECT 5", "UPDATE 3", "INSERT 0 1", "COPY 10": the count is the last word (read without
    // Foundation: this runs for every result).
    guard let space = tag.utf8.lastIndex(of: UInt8(ascii: " ")) else { return nil }
    return UInt64(Substring(tag.utf8[tag.utf8.index(after: space)...]))
}

extension PostgresFrontendMessage.Bind {
    /// The format of parameter `i`: none listed means text, one applies to all.
    func format(ofParameter i: Int) -> Int16 {
        parameterFormats.isEmpty ? 0 : parameterFormats.count == 1 ? parameterFormats[0] : (i < parameterFormats.count ? parameterFormats[i] : 0)
    }
}

extension PostgresFrontendMessage {
    /// After an error in an extended-protocol batch PostgreSQL discards messages until Sync; the
    /// gate does the same with a batch it refused, so the server never sees its remainder.
    var isSkippedAfterError: Bool {
        switch self {
        case .parse, .bind, .describe, .execute, .close, .flush: true
        default: false
        }
    }
}

extension PostgresBackendMessage.Diagnostics {
    /// As recorded: the fields an investigator needs, after masking.
    var notice: CaptureFormat.PostgresNotice {
        CaptureFormat.PostgresNotice(severity: severity ?? "", sqlState: sqlState ?? "", message: message ?? "",
                                     detail: detail ?? "", hint: hint ?? "")
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

