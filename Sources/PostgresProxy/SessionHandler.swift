import CaptureFormat
import Foundation
import Identity
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresWire
import ProxyCore

/// One client connection, from SSLRequest to Terminate: TLS termination, OIDC login
/// (the token is the password), the brokered upstream login, then relaying every
/// message through the exchange pipeline and recording it. Both this channel and
/// the upstream channel run on the same event loop, so the state needs no locks.
final class PostgresSessionHandler: ChannelInboundHandler {
    typealias InboundIn = PostgresFrontendMessage
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
    var state = State.startup
    var context: ChannelHandlerContext?
    var clientAddress = ""
    var tls: TLSInfo?
    var startupParameters: [(name: String, value: String)] = []
    var session: SessionContext?
    var recorder: SessionRecorder?
    var upstream: Channel?
    var upstreamLogin: UpstreamLogin?
    var gateKey: (Int32, Int32)?
    var endReason = "client-disconnect"
    var relay: RelayState
    /// Messages for each side, gathered during one read and written in one go: a statement's
    /// Bind/Execute/Sync (or a result's rows) become one write, not one per message.
    var clientOut = ByteBuffer()
    var upstreamOut = ByteBuffer()

    init(gate: PostgresGate, target: TargetConfig) {
        self.gate = gate
        self.target = target
        relay = RelayState(maxRows: target.recordMaxRows)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientAddress = context.channel.remoteAddress.map(describe) ?? "unknown"
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        switch state {
        case .startup: startupMessage(message, context: context)
        case .awaitingToken: tokenMessage(message, context: context)
        case .verifying, .connecting:
            // A client that does not wait for AuthenticationOk is not following the protocol.
            fail(context, code: "08P01", "message received before authentication completed", reason: "protocol-error")
        case .relaying: clientMessage(message, context: context)
        case .closed: break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushUpstream()
    }

    func flushUpstream() {
        guard let upstream, upstreamOut.readableBytes > 0 else { return }
        let out = upstreamOut
        upstreamOut = ByteBuffer()
        upstream.writeAndFlush(out, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        teardown(reason: endReason)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let e = error as? PostgresWireError {
            gate.logger.warning("protocol error from client", metadata: ["client": "\(clientAddress)", "error": "\(e)"])
            fail(context, code: "08P01", "invalid message from client: \(e)", reason: "protocol-error")
        } else if error is NIOSSLError || error is BoringSSLError {
            gate.logger.info("TLS error", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
            endReason = "tls-error"
            context.close(promise: nil)
        } else {
            gate.logger.info("client connection error", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Back-pressure: a slow client stops the gate reading from upstream, so a large
        // result waits in PostgreSQL, not in the gate's memory.
        let writable = context.channel.isWritable
        upstream?.setOption(ChannelOptions.autoRead, value: writable).whenComplete { _ in }
        if writable { upstream?.read() }
        context.fireChannelWritabilityChanged()
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
        let sessionID = UUID().uuidString.lowercased()
        let app = parameter("application_name") ?? ""
        let session = SessionContext(sessionID: sessionID, target: target.name, subject: identity.subject, groups: identity.groups,
                                     clientAddress: clientAddress, applicationName: app)
        self.session = session
        var header = SessionHeader(sessionID: sessionID, target: target.name, protocolName: "postgres", subject: identity.subject,
                                   groups: identity.groups, issuer: identity.issuer, proxyID: gate.config.proxy.id,
                                   startMicros: nowMicros(), writer: "capture-proxy \(gateVersion)")
        header.attributes = [KeyValue("upstream", target.upstream.description)]
        do {
            recorder = try SessionRecorder(directory: gate.config.proxy.captureDirectory, header: header, key: gate.signingKey)
        } catch {
            gate.logger.error("cannot create capture; refusing the session", metadata: ["error": "\(error)"])
            fail(context, code: "58000", "the gate cannot record this session; try again later", reason: "recording-failed")
            return
        }
        gate.sessionStarted(self, channel: context.channel)
        if tls != nil, let version = try? context.pipeline.syncOperations.nioSSL_tlsVersion() {
            // NIOSSL exposes the negotiated version but not the cipher suite.
            tls = TLSInfo(version: version.name, cipher: "")
        }
        // Startup parameters as the client sent them (never secrets: the token came in a password message).
        recorder?.record(.sessionStart(SessionStart(clientAddress: clientAddress, applicationName: app, tls: tls,
                                                    parameters: startupParameters.map { KeyValue($0.name, $0.value) })))
        state = .connecting
        connectUpstream(context: context)
    }

    // MARK: Upstream

    func connectUpstream(context: ChannelHandlerContext) {
        var parameters: [(name: String, value: String)] = [("user", target.credentials.user)]
        parameters.append(("database", parameter("database") ?? parameter("user") ?? target.credentials.user))
        // Pass through session settings the client asked for; never its user name.
        for (k, v) in startupParameters where !["user", "database", "replication", "client_encoding"].contains(k) {
            parameters.append((k, v))
        }
        parameters.append(("client_encoding", "UTF8"))
        let login = UpstreamLogin(user: target.credentials.user, password: target.credentials.password, parameters: parameters)
        upstreamLogin = login
        let target = self.target
        let maxMessage = target.maxMessageBytes
        let tlsMode = target.upstreamTLS
        let clientTLS = gate.upstreamTLSContext
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.autoRead, value: true)
            .connectTimeout(.seconds(10))
            .connect(host: target.upstream.host, port: target.upstream.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    self.gate.logger.error("cannot reach upstream", metadata: ["target": "\(target.name)", "error": "\(error)"])
                    self.fail(context, code: "08006", "the gate cannot reach the database", reason: "upstream-unreachable")
                case .success(let channel):
                    self.upstream = channel
                    let handler = UpstreamHandler(session: self, maxMessageSize: maxMessage, tlsMode: tlsMode,
                                                  tlsContext: clientTLS, serverName: target.upstream.host)
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
        state = .relaying
        writeBackend(context, .authentication(.ok), flush: false)
        for p in parameterStatus { writeBackend(context, p, flush: false) }
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

    func upstreamClosed() {
        guard let context, state != .closed else { return }
        if endReason == "client-terminate" { return }
        fail(context, code: "08006", "the connection to the database was lost", reason: "upstream-closed")
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        guard let context else { return }
        context.channel.setOption(ChannelOptions.autoRead, value: writable).whenComplete { _ in }
        if writable { context.read() }
    }

    // MARK: Relaying

    func clientMessage(_ message: PostgresFrontendMessage, context: ChannelHandlerContext) {
        guard upstream != nil else { return }
        // After the gate refuses a statement of an extended-protocol batch, the rest of the batch up to
        // Sync is discarded unseen, as PostgreSQL does after an error: no second error, no decision.
        if relay.skippingUntilSync, message.isSkippedAfterError { return }
        switch message {
        case .query(let text):
            relay.syncSequence += 1
            let exchange = relay.nextExchange()
            let request = Request.postgres(PostgresRequest(text: text, path: .simple))
            guard admit(request, exchange: exchange, text: text) else {
                writeBackend(context, .errorResponse(.init(severity: "ERROR", sqlState: "42501", message: relay.lastDenial)), flush: false)
                writeBackend(context, .readyForQuery(relay.transactionStatus), flush: true)
                relay.syncSequence -= 1
                return
            }
            relay.pending.append(.init(exchange: exchange, simple: true, sync: relay.syncSequence, started: .now()))
        case .parse(let name, let query, _):
            relay.statements[name] = query
            // Decided at Parse too, so a refused statement is never even prepared upstream; an allowed
            // one is recorded (and decided again) at Execute, where its parameters are known.
            if gate.enforcesPolicy, let session {
                let request = Request.postgres(PostgresRequest(text: query, path: .extended, statementName: name))
                if gate.pipeline.admit(request, in: session).1.action != .allow {
                    let exchange = relay.nextExchange()
                    _ = admit(request, exchange: exchange, text: query)
                    relay.skippingUntilSync = true
                    writeBackend(context, .errorResponse(.init(severity: "ERROR", sqlState: "42501", message: relay.lastDenial)), flush: true)
                    return
                }
            }
        case .bind(let bind):
            relay.portals[bind.portal] = .init(statement: bind.statement, text: relay.statements[bind.statement] ?? "",
                                               parameters: bind.parameters.enumerated().map { i, p in
                                                   Parameter(value: p.map { Array($0.readableBytesView) },
                                                             format: UInt8(truncatingIfNeeded: bind.format(ofParameter: i)))
                                               })
        case .execute(let portal, _):
            let exchange = relay.nextExchange()
            let bound = relay.portals[portal]
            let request = Request.postgres(PostgresRequest(text: bound?.text ?? "", path: .extended, statementName: bound?.statement ?? "",
                                                           portalName: portal, parameters: bound?.parameters ?? []))
            guard admit(request, exchange: exchange, text: bound?.text ?? "") else {
                // Denied: the server never sees it; the client gets the error as if the server raised it,
                // and the rest of the batch up to Sync is skipped, as PostgreSQL itself would do.
                relay.skippingUntilSync = true
                writeBackend(context, .errorResponse(.init(severity: "ERROR", sqlState: "42501", message: relay.lastDenial)), flush: true)
                return
            }
            relay.pending.append(.init(exchange: exchange, simple: false, sync: relay.syncSequence + 1, started: .now()))
        case .sync:
            relay.syncSequence += 1
            relay.skippingUntilSync = false
        case .close(let kind, let name):
            if kind == .statement { relay.statements[name] = nil } else { relay.portals[name] = nil }
        case .copyData(let data):
            recordCopy(.stdin, data)
        case .functionCall:
            let exchange = relay.nextExchange()
            guard admit(.postgres(PostgresRequest(text: "", path: .functionCall)), exchange: exchange, text: "") else {
                writeBackend(context, .errorResponse(.init(severity: "ERROR", sqlState: "42501", message: relay.lastDenial)), flush: false)
                writeBackend(context, .readyForQuery(relay.transactionStatus), flush: true)
                return
            }
            relay.syncSequence += 1
            relay.pending.append(.init(exchange: exchange, simple: true, sync: relay.syncSequence, started: .now()))
        case .terminate:
            endReason = "client-terminate"
        case .startup, .sslRequest, .gssEncRequest, .cancelRequest, .password:
            fail(context, code: "08P01", "unexpected \(message.messageName) message after startup", reason: "protocol-error")
            return
        default:
            break
        }
        do {
            try message.encode(into: &upstreamOut)
        } catch {
            fail(context, code: "08P01", "cannot forward \(message.messageName): \(error)", reason: "protocol-error")
            return
        }
        if case .terminate = message { flushUpstream() }
    }

    /// Inspects, decides and records one request. False when it must not be forwarded.
    func admit(_ request: Request, exchange: UInt64, text: String) -> Bool {
        guard let session else { return false }
        if let annotation = SQLCommenter.annotation(in: text) { recorder?.record(.annotation(annotation), exchange: exchange) }
        let (inspected, decision) = gate.pipeline.admit(request, in: session)
        recorder?.record(.request(inspected), exchange: exchange)
        recorder?.record(.decision(decision), exchange: exchange)
        if decision.action == .allow { return true }
        relay.lastDenial = decision.action == .review
            ? "tollgate: approval required by policy \"\(decision.policy)\" rule \"\(decision.rule)\"; approvals are not available on this gate"
            : "tollgate: denied by policy \"\(decision.policy)\" rule \"\(decision.rule)\"" + (decision.reason.isEmpty ? "" : ": \(decision.reason)")
        recorder?.record(.response(.postgres(PostgresResponse(error: CaptureFormat.PostgresNotice(severity: "ERROR", sqlState: "42501", message: relay.lastDenial)))),
                         exchange: exchange)
        return false
    }

    /// A message from upstream while relaying: record it against its exchange and pass it on.
    func upstreamMessage(_ message: PostgresBackendMessage) {
        guard let context, state == .relaying else { return }
        switch message {
        case .rowDescription(let fields):
            relay.beginResult(columns: fields.map { Column(name: $0.name, typeOID: $0.typeOID, tableOID: $0.tableOID,
                                                           attributeNumber: UInt16(bitPattern: $0.columnAttribute), format: UInt8(truncatingIfNeeded: $0.format)) })
        case .dataRow(let row):
            relay.rows.add(row.map { v in v.map { capValue(Array($0.readableBytesView)) } })
        case .commandComplete(let tag):
            finishResult(tag: tag, error: nil)
        case .emptyQueryResponse:
            finishResult(tag: "", error: nil)
        case .portalSuspended:
            finishResult(tag: "(portal suspended)", error: nil)
        case .errorResponse(let fields):
            finishResult(tag: "", error: fields.notice)
        case .noticeResponse(let fields):
            relay.notices.append(fields.notice)
        case .copyData(let data):
            recordCopy(.stdout, data)
        case .readyForQuery(let status):
            relay.transactionStatus = status
            relay.readyForQueryCount += 1
            // Executes the server skipped after an error in their batch get no result of their own.
            let answered = relay.readyForQueryCount
            relay.pending.removeAll { $0.sync <= answered }
        case .backendKeyData:
            // Never let the upstream's key reach the client.
            return
        default:
            break
        }
        writeBackend(context, message, flush: false)
    }

    func flushClient() {
        guard let context, clientOut.readableBytes > 0 else { return }
        let out = clientOut
        clientOut = ByteBuffer()
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    func finishResult(tag: String, error: CaptureFormat.PostgresNotice?) {
        guard let index = relay.pending.indices.first else { return }
        let pending = relay.pending[index]
        var response = relay.takeResult()
        response.commandTag = tag
        response.error = error
        response.rowCount = rowCount(fromTag: tag) ?? UInt64(response.rows.count) + (response.cut?.rows ?? 0)
        response.durationMicros = UInt64(max(0, (NIODeadline.now() - pending.started).nanoseconds / 1000))
        recorder?.record(.response(.postgres(response)), exchange: pending.exchange)
        // A simple Query may hold several statements: it stays pending until ReadyForQuery.
        if !pending.simple { relay.pending.remove(at: index) }
    }

    func recordCopy(_ stream: StreamChunk.Stream, _ data: ByteBuffer) {
        guard let exchange = relay.pending.first?.exchange else { return }
        relay.copyChunks += 1
        guard relay.copyChunks <= target.recordMaxRows else { return }
        recorder?.record(.streamChunk(StreamChunk(stream: stream, data: capValue(Array(data.readableBytesView)))), exchange: exchange)
    }

    /// Values longer than the cap are recorded cut, with a visible marker, never silently.
    func capValue(_ value: [UInt8]) -> [UInt8] {
        guard value.count > target.recordMaxValueBytes else { return value }
        return Array(value.prefix(target.recordMaxValueBytes)) + Array("…[tollgate: \(value.count) bytes, cut]".utf8)
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
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
    }

    /// Sends a FATAL error to the client and closes: the PostgreSQL way to refuse a connection.
    func fail(_ context: ChannelHandlerContext, code: String, _ message: String, reason: String) {
        guard state != .closed else { return }
        endReason = reason
        recorder?.record(.response(.postgres(PostgresResponse(error: CaptureFormat.PostgresNotice(severity: "FATAL", sqlState: code, message: message)))),
                         exchange: relay.pending.first?.exchange ?? 0)
        writeBackend(context, .errorResponse(.init(severity: "FATAL", sqlState: code, message: message)), flush: true)
        state = .closed
        context.close(promise: nil)
    }

    func teardown(reason: String) {
        if state != .closed { state = .closed }
        upstream?.close(promise: nil)
        upstream = nil
        if let (pid, key) = gateKey { gate.cancels.remove(processID: pid, secretKey: key) }
        gateKey = nil
        if let recorder {
            self.recorder = nil
            let gate = self.gate
            let logger = gate.logger
            let id = recorder.sessionID
            gate.sessionEnding(id)
            Task {
                if let error = await recorder.finish(reason: reason) {
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
    // "SELECT 5", "UPDATE 3", "INSERT 0 1", "COPY 10": the count is the last word.
    guard let last = tag.split(separator: " ").last, tag.contains(" ") else { return nil }
    return UInt64(last)
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
