import CaptureFormat
import Foundation
import GateRuntime
import Identity
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ProxyCore

/// One client connection of an HTTP target: after `HTTPFramingHandler`, it takes the requests
/// in order (pipelined ones wait their turn, so responses go back in order), checks each one's
/// bearer token, opens the session (one capture per connection) at the first valid one, has the
/// core decide each request, forwards it upstream on one kept-alive connection, and relays the
/// response masked. The upstream connection runs on the same event loop: no locks.
final class HTTPSessionHandler: ChannelInboundHandler {
    typealias InboundIn = RequestStreamMachine.Event
    typealias OutboundOut = ByteBuffer

    enum Step {
        /// Between requests.
        case idle
        /// The token is being verified, or the capture opened.
        case verifying
        /// Admitted: the body goes upstream, the response comes back.
        case forwarding
        /// Answered by the gate: the rest of the request's body is read and dropped.
        case discarding(closeAfter: Bool)
        /// Waiting for an approver.
        case held
        case closed
    }

    let gate: Gate
    let adapter: HTTPAdapter
    let target: TargetConfig
    let settings: HTTPTargetSettings
    let credential: UpstreamCredential
    var core: ExchangeSession
    var context: ChannelHandlerContext?
    var clientAddress = "unknown"
    var tls: TLSInfo?
    var step = Step.idle
    /// The token this connection's last request proved, with what it proved: the same token on
    /// the next request is not checked again (its signature cannot have changed), only its expiry.
    var verifiedToken: (token: String, identity: VerifiedIdentity)?
    /// Events from the framing handler not yet taken (pipelined requests wait here).
    var inbox = CircularBuffer<RequestStreamMachine.Event>()
    var exchange: HTTPExchange?
    var upstream: (any Channel)?
    var connecting = false
    /// What waits for the upstream connection to be up.
    var upstreamQueue: [UpstreamWrite] = []
    var endReason = "client-disconnect"
    var heldApprovalID: String?
    /// An exec or attach relayed over WebSocket (HTTPSessionHandler+PodStream.swift).
    var podStream: PodStream?
    /// The upstream said it closes after the response being relayed.
    var upstreamWillClose = false
    /// Strict recording: upstream writes waiting for their records to be durable, by ticket.
    var heldUpstream: [(ticket: UInt64, writes: [UpstreamWrite])] = []

    /// The pipelined requests read ahead are bounded: past this many events the client is not read.
    static let inboxLimit = 256
    /// Reading was turned off because the inbox passed its limit: only then does `pump` turn it
    /// back on (setting autoRead on every request cost a promise and an option change, issue 20).
    var inboxFull = false

    init(gate: Gate, adapter: HTTPAdapter, target: TargetConfig) {
        self.gate = gate
        self.adapter = adapter
        self.target = target
        settings = target.http ?? HTTPTargetSettings()
        credential = switch settings.credential {
        case .none: .none
        case .bearer(let token): .bearer(token)
        case .basic(let user, let password): .basic(user: user, password: password)
        case .clientCertificate: .clientCertificate
        }
        var writerOptions = WriterOptions()
        writerOptions.compressionLevel = Int32(target.recordCompressionLevel)
        core = ExchangeSession(settings: .init(target: target.name, protocolName: settings.kind, proxyID: gate.config.proxy.id,
                                               writerName: "capture-proxy \(HTTPAdapter.version)",
                                               captureDirectory: gate.config.proxy.captureDirectory,
                                               writerOptions: writerOptions, maxValueBytes: target.recordMaxValueBytes,
                                               headerAttributes: [KeyValue("upstream", target.upstream.description)], holds: true,
                                               durability: target.recordDurability, metrics: gate.exchangeMetrics[target.name],
                                               recent: gate.config.admin?.login == nil ? nil : gate.sessions.recent),
                               policies: gate.policies)
    }

    var logger: Logger { gate.logger }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let address = context.channel.remoteAddress, let ip = address.ipAddress, let port = address.port {
            clientAddress = ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !isClosed else { return }
        inbox.append(unwrapInboundIn(data))
        if inbox.count > Self.inboxLimit {
            inboxFull = true
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        }
        pump()
    }

    /// What this read forwarded goes upstream in one flush.
    func channelReadComplete(context: ChannelHandlerContext) {
        upstream?.flush()
        submitRecorded()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        teardown(reason: endReason)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.info("HTTP client connection error", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
        if error is NIOSSLError || error is BoringSSLError { endReason = "tls-error" }
        context.close(promise: nil)
    }

    /// A client that stops reading stops the gate reading the upstream (the core's `peerSlow`).
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        apply(context.channel.isWritable ? core.resume(.upstream, .peerSlow) : core.pause(.upstream, .peerSlow))
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let end = event as? GateShutdown {
            endReason = end.endReason
            // Between requests the client is told why; in the middle of a response it can only be cut.
            if exchange == nil {
                answerAndClose(GateResponse.json(status: 503, .init(error: "shutdown", detail: end.detail), closes: true))
            } else {
                context.close(promise: nil)
            }
            return
        }
        // Idle between requests only: a response that takes long is not idleness.
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, case .idle = step, inbox.isEmpty {
            endReason = "idle-timeout"
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    var isClosed: Bool { if case .closed = step { true } else { false } }

    // MARK: Requests in order

    /// Takes events while the current step lets it: a request waits until the one before it has
    /// its whole response.
    func pump() {
        while let event = inbox.first {
            switch step {
            case .idle:
                inbox.removeFirst()
                startRequest(event)
            case .discarding(let closeAfter):
                inbox.removeFirst()
                if case .end = event {
                    step = .idle
                    if closeAfter { closeAfterFlush(); return }
                } else if case .refuse(let r) = event {
                    refused(r)
                }
            case .forwarding where exchange?.requestEnded == false:
                inbox.removeFirst()
                requestPart(event)
            case .verifying, .forwarding, .held, .closed:
                return
            }
        }
        if inboxFull, inbox.count <= Self.inboxLimit / 2, let context, !isClosed, core.pauses.reads(.client) {
            inboxFull = false
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        }
    }

    func startRequest(_ event: RequestStreamMachine.Event) {
        switch event {
        case .head(let head, let framing):
            switch BearerCredential.token(in: head) {
            case .failure(let problem):
                unauthorized(problem, head: head)
            case .success(let token):
                step = .verifying
                verify(token, head: head, framing: framing)
            }
        case .refuse(let refusal):
            refused(refusal)
        case .body, .end:
            // The machine puts a head before every body: nothing to take between requests.
            break
        }
    }

    /// A request with no valid token: 401 with the challenge. Before the session exists there is
    /// no capture (as a failed PostgreSQL login); after, the refusal is recorded in it.
    func unauthorized(_ problem: BearerCredential.Problem, head: RequestHead, close: Bool = false) {
        let response = GateResponse.unauthorized(realm: target.name, problem)
        if core.phase == .open {
            let n = core.nextExchange()
            core.record(.request(recordedRequest(head)), exchange: n)
            let why: String = switch problem { case .missing: "no bearer token"; case .invalid(let w): w }
            core.record(.decision(Decision(action: .deny, policy: "tollgate", rule: "authentication", reason: why)), exchange: n)
            core.record(.response(.http(HTTPResponse(status: 401))), exchange: n)
            core.countRefusal()
            submitRecorded()
        }
        logger.notice("HTTP request refused: no valid token", metadata: ["client": "\(clientAddress)", "target": "\(target.name)"])
        write(response.serialized)
        step = .discarding(closeAfter: close || head.closesConnection)
        if close { endReason = "authentication-failed"; closeAfterFlush() }
    }

    func verify(_ token: String, head: RequestHead, framing: BodyFraming) {
        guard let context else { return }
        if let memo = verifiedToken, memo.token == token, Date() < memo.identity.expiresAt {
            let identity = memo.identity
            context.eventLoop.assumeIsolated().execute {
                guard case .verifying = self.step else { return }
                self.identified(identity, head: head, framing: framing)
            }
            return
        }
        let verifier = gate.verifier
        context.eventLoop.makeFutureWithTask { () async -> Result<VerifiedIdentity, IdentityError> in
            do throws(IdentityError) { return .success(try await verifier.verify(token: token)) } catch { return .failure(error) }
        }.assumeIsolated().whenSuccess { result in
            guard case .verifying = self.step else { return }
            switch result {
            case .failure(let error):
                // operatorDetail (URLs, HTTP status) is for the log only.
                self.logger.notice("HTTP authentication failed", metadata: ["client": "\(self.clientAddress)", "reason": "\(error.reason)",
                                                                            "detail": "\(error.operatorDetail ?? "")"])
                self.unauthorized(.invalid("\(error)"), head: head)
                self.pump()
            case .success(let identity):
                self.verifiedToken = (token, identity)
                self.identified(identity, head: head, framing: framing)
            }
        }
    }

    func identified(_ identity: VerifiedIdentity, head: RequestHead, framing: BodyFraming) {
        switch core.phase {
        case .open:
            guard let session = core.context, session.subject == identity.subject else {
                // One connection, one session, one identity: another subject's token is not taken here.
                unauthorized(.invalid("the token is for another subject than this connection's session"), head: head, close: true)
                return
            }
            admit(head, framing: framing)
        case .identifying:
            guard let context else { return }
            if tls != nil, let version = try? context.pipeline.syncOperations.nioSSL_tlsVersion() {
                // NIOSSL exposes the negotiated version but not the cipher suite.
                tls = TLSInfo(version: HTTPAdapter.name(of: version), cipher: "")
            }
            let opening = core.identified(.init(subject: identity.subject, groups: identity.groups, issuer: identity.issuer,
                                                clientAddress: clientAddress, applicationName: head.fields.values("user-agent").first ?? "",
                                                tls: tls, startMicros: Int64(Date().timeIntervalSince1970 * 1_000_000)))
            let key = gate.signingKey, thread = gate.writerThreads.next()
            NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) { try opening.open(key: key, thread: thread) }
                .assumeIsolated().whenComplete { result in self.captureOpened(result, head: head, framing: framing) }
        case .opening, .ended:
            return
        }
    }

    func captureOpened(_ result: Result<SessionRecorder, any Error>, head: RequestHead, framing: BodyFraming) {
        switch result {
        case .failure(let error):
            logger.error("cannot create capture; refusing the session", metadata: ["error": "\(error)"])
            let closing = core.captureFailed(error as? CaptureError ?? CaptureError(.io, "\(error)"))
            endReason = closing.reason
            answerAndClose(GateResponse.json(status: 503, .init(error: "unavailable", detail: closing.message), closes: true))
        case .success(let recorder):
            guard case .verifying = step, let context else {
                let reason = endReason
                Task { _ = await recorder.finish(reason: reason) }
                return
            }
            watch(recorder, loop: context.eventLoop)
            if let finish = core.captureOpened(recorder) { Task { _ = await finish.run() } }
            if let session = core.context {
                gate.sessions.started(session.sessionID, channel: context.channel,
                                      listing: LiveSession(id: session.sessionID, target: session.target, subject: session.subject,
                                                           groups: session.groups, clientAddress: session.clientAddress,
                                                           applicationName: session.applicationName))
            }
            admit(head, framing: framing)
        }
    }

    /// The request with its credentials withheld: decided on its target as sent (the core records
    /// it through the masks); `masked`: through the masks already, for what the handler records itself.
    func recordedRequest(_ head: RequestHead, masked: Bool = true) -> Request {
        let text = { (s: String) in masked ? self.core.recording.text(s) : s }
        return .http(HTTPRequest(method: head.method, target: text(head.target), host: head.host,
                                 headers: RecordedFields.record(head.fields).map { KeyValue($0.key, text($0.value)) }))
    }

    /// Decided by the core: forwarded, refused (403 naming the rule), or held.
    func admit(_ head: RequestHead, framing: BodyFraming) {
        let n = core.nextExchange()
        exchange = HTTPExchange(number: n, head: head, framing: framing, started: .now())
        var request = recordedRequest(head, masked: false)
        if isKubernetes {
            // A request the gate cannot follow, or a stream into a pod, is answered there.
            guard let k = kubernetesRequest(request, head: head) else { return }
            request = k
        }
        let actions = core.request(request, exchange: n)
        // The decision's policy and rule only word a refusal: previewed (inspected and decided
        // again, nothing recorded) for a refused request alone, not for every request (issue 20).
        let refused = actions.contains { if case .refuse = $0 { true } else { false } }
        let decision = refused ? core.preview(request) : nil
        step = .forwarding
        perform(actions, decision: decision)
        submitRecorded()
        pump()
    }

    func perform(_ actions: [ExchangeAction], decision: Decision?) {
        for action in actions {
            switch action {
            case .forward:
                forward()
            case .refuse(_, let message):
                guard let ex = exchange else { continue }
                let response: GateResponse
                if isKubernetes {
                    response = kubernetesDenied(decision, message: message)
                } else if let decision, decision.action != .allow {
                    response = GateResponse.denied(policy: decision.policy, rule: decision.rule, detail: message)
                } else {
                    response = GateResponse.json(status: 403, .init(error: "denied", detail: message), closes: false)
                }
                write(response.serialized)
                exchange = nil
                step = ex.requestEnded ? .idle : .discarding(closeAfter: ex.head.closesConnection)
                if ex.requestEnded && ex.head.closesConnection { closeAfterFlush() }
            case .hold(let hold):
                startHold(hold)
            case .pauseReading, .resumeReading, .holdUpstream, .releaseUpstream:
                apply([action])
            }
        }
    }

    // MARK: Refusals, recording, teardown

    /// The framing handler refused what the client sent (smuggling forms, limits): answered in
    /// turn with the refusal's status, recorded where a session exists, and the connection closed.
    func refused(_ refusal: HTTPRefusal) {
        if core.phase == .open {
            let n = exchange?.number ?? core.nextExchange()
            core.record(.decision(Decision(action: .deny, policy: "tollgate", rule: "http-framing",
                                           reason: "\(refusal.reason.rawValue): \(refusal.detail)")), exchange: n)
            core.record(.response(.http(HTTPResponse(status: UInt16(refusal.status)))), exchange: n)
            core.countRefusal()
            submitRecorded()
        }
        logger.notice("HTTP request refused", metadata: ["client": "\(clientAddress)", "target": "\(target.name)",
                                                          "reason": "\(refusal.reason.rawValue)", "detail": "\(refusal.detail)"])
        endReason = "protocol-error"
        // Anything of a request already going upstream is cut off with the upstream connection.
        if exchange?.requestEnded == false { dropUpstream() }
        answerAndClose(GateResponse.refusal(refusal))
    }

    func answerAndClose(_ response: GateResponse) {
        guard !isClosed else { return }
        write(response.serialized)
        closeAfterFlush()
    }

    func write(_ bytes: [UInt8], flush: Bool = true) {
        guard let context, !isClosed else { return }
        core.countBytes(toClient: bytes.count)
        let buffer = context.channel.allocator.buffer(bytes: bytes)
        if flush { context.writeAndFlush(wrapOutboundOut(buffer), promise: nil) } else { context.write(wrapOutboundOut(buffer), promise: nil) }
    }

    /// Closes the client's connection once what was written is sent.
    func closeAfterFlush() {
        guard let context, !isClosed else { return }
        step = .closed
        inbox.removeAll()
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func submitRecorded() { apply(core.flush()) }

    func apply(_ actions: [ExchangeAction]) {
        for action in actions {
            switch action {
            case .pauseReading(let side), .resumeReading(let side):
                core.pauses.switchReading(side, client: context, upstream: upstream)
            case .releaseUpstream(let ticket):
                releaseUpstream(through: ticket)
            case .forward, .refuse, .hold, .holdUpstream:
                break
            }
        }
    }

    /// The recorder caught up (read again) or failed (the session ends: evidence or nothing).
    func watch(_ recorder: SessionRecorder, loop: any EventLoop) {
        let handler = NIOLoopBound(self, eventLoop: loop)
        recorder.whenDrained { loop.execute { handler.value.apply(handler.value.core.recorderDrained()) } }
        recorder.whenFailed { error in
            loop.execute {
                let session = handler.value
                session.logger.error("capture write failed; ending the session", metadata: ["error": "\(error)"])
                session.endReason = "recording-failed"
                session.dropUpstream()
                session.context?.close(promise: nil)
            }
        }
    }

    func teardown(reason: String) {
        step = .closed
        inbox.removeAll()
        dropUpstream()
        withdrawHold(reason: reason)
        endPodStream(cut: reason)
        if let ex = exchange, core.phase == .open {
            // Cut off mid-exchange: what was relayed is on the record, with the cut.
            core.record(.response(.http(HTTPResponse(status: UInt16(ex.response?.status ?? 0),
                                                     headers: [KeyValue("X-Tollgate-Cut", reason)]))), exchange: ex.number)
            exchange = nil
        }
        if let finish = core.end(reason: reason) {
            let gate = self.gate
            let id = finish.recorder.sessionID
            gate.sessions.ending(id)
            Task {
                if let error = await finish.run() {
                    gate.logger.error("capture write failed", metadata: ["session": "\(id)", "error": "\(error)"])
                }
                gate.sessions.ended(id)
            }
        }
    }
}
