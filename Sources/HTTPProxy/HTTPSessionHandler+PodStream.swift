import CaptureFormat
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import ProxyCore

/// An exec or attach over WebSocket on a `kind: kubernetes` target, once the policy let it run
/// (allowed, or approved after a hold: nothing reached the upstream before). The gate opens a
/// connection of its own to the upstream for it, sends the upgrade as the upstream's client, and
/// only when the upstream has switched answers the client's upgrade; then every frame both ways
/// goes through `KubernetesStreamRelay` (parsed, masked, recorded). The client's connection
/// ends with the stream.
final class PodStream {
    enum Phase {
        /// The upgrade is on its way upstream; the upstream's answer is read into `head`.
        case upgrading
        /// The upstream refused the upgrade: its answer (a Status) is read whole, then passed on.
        case refusedUpstream(WebSocketUpgrade.ResponseHead, length: Int)
        case relaying
        case ended
    }

    let upgrade: WebSocketUpgrade
    var phase = Phase.upgrading
    var received: [UInt8] = []
    var relay: KubernetesStreamRelay?
    var recordedFields: [KeyValue] = []
    var status: BodyRecording
    var closes: [String] = []
    var refusal: String?
    var flushScheduled = false
    /// The upstream ended the stream: the client's close frame is awaited (read, not relayed) before the
    /// gate closes, so that closing on unread bytes does not reset the connection under what it still reads.
    var lingering = false

    init(_ upgrade: WebSocketUpgrade, cap: Int) {
        self.upgrade = upgrade
        status = BodyRecording(cap: cap)
    }
}

extension HTTPSessionHandler {
    /// The admitted exec or attach: its own upstream connection, the upgrade sent as the gate's.
    func startPodStream() {
        guard let ex = exchange, let context else { return }
        guard case .success(let upgrade) = WebSocketUpgrade.request(ex.head) else { return }
        dropUpstream()
        podStream = PodStream(upgrade, cap: target.recordMaxValueBytes)
        var sent = ex.head
        // The caller is impersonated on the stream as on any request (`impersonate: true`).
        sent.fields = impersonating(Self.kubernetesUpstreamFields(sent.fields))
        let fields = upgrade.upstreamFields(UpstreamRequestFields.make(sent, framing: .none, credential: credential, clientAddress: clientHost))
        var text = "GET \(ex.head.target) HTTP/1.1\r\n"
        for f in fields { text += "\(f.name): \(f.value)\r\n" }
        let request = Array((text + "\r\n").utf8)
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let tls = adapter.upstreamTLS[target.name]
        let serverName = HTTPAdapter.serverName(target)
        connecting = true
        upstreamQueue = []
        // Strict: the upgrade waits (queued, or held under its ticket) until the request and decision are durable.
        sendRecorded(.raw(request), flush: true)
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ops = channel.pipeline.syncOperations
                    if let tls { try ops.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverName)) }
                    try ops.addHandler(PodStreamUpstreamHandler(session: handler.value))
                }
            }
            .connect(host: target.upstream.host, port: target.upstream.port)
            .assumeIsolated().whenComplete { result in
                let session = handler.value
                session.connecting = false
                switch result {
                case .success(let channel):
                    guard !session.isClosed, session.podStream != nil else { channel.close(promise: nil); return }
                    session.upstream = channel
                    if !session.core.pauses.reads(.upstream) { channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in } }
                    let queued = session.upstreamQueue
                    session.upstreamQueue = []
                    for w in queued { session.send(w, flush: false) }
                    channel.flush()
                case .failure(let error):
                    session.logger.warning("cannot reach the Kubernetes upstream for a stream", metadata: ["target": "\(session.target.name)", "error": "\(error)"])
                    session.upstreamQueue = []
                    session.podStream = nil
                    session.upstreamFailed("the gate cannot reach the upstream")
                }
            }
    }

    /// Bytes from the upstream's stream connection: its answer to the upgrade, then frames.
    func podStreamUpstream(_ bytes: [UInt8]) {
        guard let stream = podStream, !isClosed else { return }
        switch stream.phase {
        case .relaying:
            guard var relay = stream.relay else { return }
            let actions = relay.fromUpstream(bytes)
            stream.relay = relay
            perform(podStream: actions)
        case .upgrading:
            stream.received += bytes
            guard let end = WebSocketUpgrade.headEnd(stream.received) else {
                if stream.received.count > settings.maxHeaderBytes { podStreamFailed("the upstream's answer to the upgrade has no end of head in \(settings.maxHeaderBytes) bytes") }
                return
            }
            guard let head = WebSocketUpgrade.parseHead(Array(stream.received[..<end])) else {
                podStreamFailed("the upstream's answer to the upgrade is not an HTTP/1.1 response head")
                return
            }
            let rest = Array(stream.received[end...])
            stream.received = []
            if head.status == 101 {
                switched(head, rest: rest)
            } else {
                stream.phase = .refusedUpstream(head, length: head.fields.values("content-length").first.flatMap { Int($0) } ?? -1)
                podStreamUpstream(rest)
            }
        case .refusedUpstream(let head, let length):
            stream.received += bytes
            if length >= 0, stream.received.count >= length { upstreamRefusedStream(head) }
            if stream.received.count > settings.maxBodyBytes { podStreamFailed("the upstream's refusal of the upgrade is over \(settings.maxBodyBytes) bytes") }
        case .ended:
            return
        }
    }

    /// The upstream switched: checked, the client's 101 sent, the client's connection given to the relay.
    private func switched(_ head: WebSocketUpgrade.ResponseHead, rest: [UInt8]) {
        guard let stream = podStream, let context, var ex = exchange else { return }
        let chosen: KubernetesStreamRelay.Subprotocol
        switch stream.upgrade.accepted(head) {
        case .failure(let why): podStreamFailed(why.detail); return
        case .success(let c): chosen = c
        }
        // The client waits for the 101 before it sends frames: anything read after its request is not taken.
        guard inbox.isEmpty, ex.requestEnded else {
            podStreamFailed("the client sent more after its upgrade request, before the gate switched")
            return
        }
        do {
            let ops = context.pipeline.syncOperations
            let framing = try ops.handler(type: HTTPFramingHandler.self)
            try ops.addHandler(PodStreamClientHandler(session: self), position: .before(framing))
        } catch {
            podStreamFailed("the gate could not switch the client's connection: \(error)")
            return
        }
        let answer = stream.upgrade.switching(to: chosen)
        write(answer)
        stream.recordedFields = [KeyValue("Upgrade", "websocket"), KeyValue("Sec-WebSocket-Protocol", chosen.rawValue)]
        ex.response = HTTPExchange.Response(status: 101, recordedFields: stream.recordedFields, chunked: false, bodiless: true, masker: nil,
                                            body: BodyRecording(cap: 0), closeAfter: true)
        exchange = ex
        stream.relay = KubernetesStreamRelay(subprotocol: chosen, masker: core.recording.session, maxMessageBytes: settings.maxBodyBytes)
        stream.phase = .relaying
        logger.notice("Kubernetes stream relaying", metadata: ["target": "\(target.name)", "protocol": "\(chosen.rawValue)"])
        if !rest.isEmpty { podStreamUpstream(rest) }
    }

    /// Bytes from the client once switched.
    func podStreamClient(_ bytes: [UInt8]) {
        if let stream = podStream, stream.lingering, var relay = stream.relay {
            _ = relay.fromClient(bytes)
            stream.relay = relay
            if relay.clientClosed || relay.failed { closeAfterFlush() }
            return
        }
        guard let stream = podStream, case .relaying = stream.phase, var relay = stream.relay, !isClosed else { return }
        core.countBytes(fromClient: bytes.count)
        let actions = relay.fromClient(bytes)
        stream.relay = relay
        perform(podStream: actions)
    }

    func perform(podStream actions: [KubernetesStreamRelay.Action]) {
        guard let stream = podStream, let ex = exchange else { return }
        for action in actions {
            switch action {
            case .toUpstream(let bytes):
                // After its record (the relay's order): strict holds it until that record is durable.
                sendRecorded(.raw(bytes), flush: false)
            case .toClient(let bytes):
                write(bytes, flush: false)
            case .record(let chunk):
                if chunk.stream == .resize { core.record(.streamChunk(chunk), exchange: ex.number) } else { core.streamed(chunk.data, stream: chunk.stream, exchange: ex.number) }
            case .status(let bytes):
                stream.status.append(bytes)
            case .flushLater:
                guard !stream.flushScheduled, let context else { continue }
                stream.flushScheduled = true
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(TerminalOutputMasker.quietMillis)) {
                    let session = handler.value
                    guard let stream = session.podStream, case .relaying = stream.phase, var relay = stream.relay else { return }
                    stream.flushScheduled = false
                    let held = relay.flushHeld()
                    stream.relay = relay
                    session.perform(podStream: held)
                    session.context?.flush()
                    session.submitRecorded()
                }
            case .closed(let side, let code):
                stream.closes.append("\(side.rawValue) \(code)")
            case .refused(let side, let error):
                stream.refusal = error.detail
                core.record(.decision(Decision(action: .deny, policy: "tollgate", rule: "kubernetes-websocket",
                                               reason: "closed \(error.code): \(error.detail)")), exchange: ex.number)
                core.countRefusal()
                logger.notice("Kubernetes stream closed: the \(side.rawValue) broke the WebSocket protocol",
                              metadata: ["client": "\(clientAddress)", "target": "\(target.name)", "code": "\(error.code)", "detail": "\(error.detail)"])
                endReason = "protocol-error"
                endPodStream(cut: nil)
                // The gate's close frames go out first; then both connections end.
                if let channel = upstream {
                    upstream = nil
                    channel.writeAndFlush(channel.allocator.buffer(capacity: 0)).whenComplete { _ in channel.close(promise: nil) }
                }
                closeAfterFlush()
                return
            }
        }
    }

    /// The stream's end on the record: the 101 with the exec's final Status as its body, the close codes, the masks.
    func endPodStream(cut: String?) {
        guard let stream = podStream, case .relaying = stream.phase, let ex = exchange else { return }
        if stream.refusal == nil, var relay = stream.relay {
            perform(podStream: relay.flushHeld())
            stream.relay = relay
        }
        stream.phase = .ended
        var fields = stream.recordedFields
        if !stream.closes.isEmpty { fields.append(KeyValue("X-Tollgate-WebSocket-Close", stream.closes.joined(separator: ", "))) }
        if let refusal = stream.refusal { fields.append(KeyValue("X-Tollgate-Refusal", refusal)) }
        if let cut { fields.append(KeyValue("X-Tollgate-Cut", cut)) }
        core.responded(.http(HTTPResponse(status: 101, headers: fields, body: stream.status.capped { $0 }, durationMicros: micros(since: ex.started))),
                       exchange: ex.number, masked: stream.relay?.tally)
        submitRecorded()
        exchange = nil
    }

    /// The upstream's stream connection closed: the stream is over.
    func podStreamUpstreamClosed(_ channel: any Channel) {
        guard let current = upstream, current === channel else { return }
        upstream = nil
        guard let stream = podStream else { return }
        switch stream.phase {
        case .relaying:
            endPodStream(cut: nil)
            endReason = "stream-ended"
            guard let context else { return }
            context.flush()
            if stream.relay?.clientClosed == true {
                closeAfterFlush()
                return
            }
            // The client answers the upstream's close (RFC 6455 §5.5.1); a client that does not is closed after 5 s.
            stream.lingering = true
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(5)) { handler.value.closeAfterFlush() }
        case .refusedUpstream(let head, _):
            upstreamRefusedStream(head)
        case .upgrading:
            podStream = nil
            upstreamFailed("the upstream closed the connection before answering the upgrade")
        case .ended:
            return
        }
    }

    /// The upstream answered the upgrade with an error (its Status): passed on masked, recorded, the connection closed.
    private func upstreamRefusedStream(_ head: WebSocketUpgrade.ResponseHead) {
        guard let stream = podStream, let ex = exchange else { return }
        stream.phase = .ended
        var body = stream.received
        if let masker = core.recording.session, let m = masker.mask(body) { body = m.bytes }
        var fields = head.fields.filter { ["content-type", "cache-control", "audit-id"].contains($0.canonicalName) }
        fields += [HTTPField("Content-Length", String(body.count)), HTTPField("Connection", "close")]
        var text = "HTTP/1.1 \(head.status) \(head.reason)\r\n"
        for f in fields { text += "\(f.name): \(f.value)\r\n" }
        var recording = BodyRecording(cap: target.recordMaxValueBytes)
        recording.append(body)
        core.responded(.http(HTTPResponse(status: UInt16(clamping: head.status), headers: RecordedFields.record(fields), body: recording.capped { $0 },
                                          durationMicros: micros(since: ex.started))), exchange: ex.number)
        submitRecorded()
        exchange = nil
        endReason = "stream-refused-upstream"
        dropUpstream()
        write(Array((text + "\r\n").utf8) + body, flush: false)
        closeAfterFlush()
    }

    /// The gate cannot follow the upstream's answer to the upgrade: 502 Status, recorded, nothing relayed.
    func podStreamFailed(_ reason: String) {
        guard let stream = podStream else { return }
        stream.phase = .ended
        podStream = nil
        kubernetesUnmaskable(reason)
    }
}

/// The client's connection once switched: in front of the HTTP framing, its bytes are frames for
/// the relay (the framing never sees them).
final class PodStreamClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let session: HTTPSessionHandler

    init(session: HTTPSessionHandler) { self.session = session }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session.podStreamClient(Array(unwrapInboundIn(data).readableBytesView))
    }
}

/// The upstream's stream connection: raw bytes to the session.
final class PodStreamUpstreamHandler: UpstreamSessionHandler {
    typealias InboundIn = ByteBuffer
    let session: HTTPSessionHandler

    init(session: HTTPSessionHandler) { self.session = session }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        session.podStreamUpstream(Array(unwrapInboundIn(data).readableBytesView))
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.podStreamUpstreamClosed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        session.logger.info("Kubernetes stream upstream error", metadata: ["target": "\(session.target.name)", "error": "\(error)"])
        context.close(promise: nil)
    }
}
