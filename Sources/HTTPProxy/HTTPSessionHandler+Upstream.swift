import CaptureFormat
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ProxyCore

/// What is written to the upstream connection (queued while it is being opened).
enum UpstreamWrite {
    case part(HTTPClientRequestPart)
    /// Bytes for a pod stream's own connection (its upgrade, then frames): no HTTP encoder there.
    case raw([UInt8])
}

/// Forwarding an admitted request and relaying its response: one upstream connection per client
/// connection, kept alive between requests, on the client's event loop.
extension HTTPSessionHandler {
    /// The admitted request's head goes upstream with the gate's fields (the client's token
    /// replaced by the target's credential); its body follows as the client sends it.
    func forward() {
        guard let ex = exchange else { return }
        if ex.kubernetes?.upgrade == .websocket { startPodStream(); return }
        var sent = ex.head
        if isKubernetes { sent.fields = impersonating(Self.kubernetesUpstreamFields(sent.fields)) }
        sent.fields = Self.upstreamAcceptEncoding(sent.fields)
        let fields = UpstreamRequestFields.make(sent, framing: ex.framing, credential: credential, clientAddress: clientHost)
        var headers = HTTPHeaders()
        for f in fields { headers.add(name: f.name, value: f.value) }
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: ex.head.method), uri: ex.head.target, headers: headers)
        sendRecorded(.part(.head(head)), flush: false)
    }

    /// A part of the request being forwarded, from the client.
    func requestPart(_ event: RequestStreamMachine.Event) {
        // An upgrade has no body: its end is all there is (the stream's bytes come by PodStreamClientHandler).
        if podStream != nil, case .end = event { exchange?.requestEnded = true; return }
        switch event {
        case .body(let bytes):
            guard let ex = exchange else { return }
            core.countBytes(fromClient: bytes.count)
            core.streamed(bytes, stream: .stdin, exchange: ex.number)
            sendRecorded(.part(.body(.byteBuffer(ByteBuffer(bytes: bytes)))), flush: false)
        case .end:
            exchange?.requestEnded = true
            sendRecorded(.part(.end(nil)), flush: true)
            submitRecorded()
        case .refuse(let refusal):
            refused(refusal)
        case .head:
            // The machine ends a request before the next head: not reached.
            break
        }
    }

    var clientHost: String {
        context?.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    func send(_ write: UpstreamWrite, flush: Bool) {
        guard let upstream else {
            // A pod stream's bytes wait for its own connection; once that is gone they have nowhere to go.
            if case .raw = write, podStream == nil || !connecting { return }
            upstreamQueue.append(write)
            if !connecting { connect() }
            return
        }
        switch write {
        case .part(let part):
            if flush { upstream.writeAndFlush(part, promise: nil) } else { upstream.write(part, promise: nil) }
        case .raw(let bytes):
            let buffer = upstream.allocator.buffer(bytes: bytes)
            if flush { upstream.writeAndFlush(buffer, promise: nil) } else { upstream.write(buffer, promise: nil) }
        }
    }

    func connect() {
        guard let context else { return }
        connecting = true
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let tls = adapter.upstreamTLS[target.name]
        let serverName = HTTPAdapter.serverName(target)
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ops = channel.pipeline.syncOperations
                    if let tls { try ops.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverName)) }
                    try ops.addHandler(HTTPRequestEncoder())
                    try ops.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes,
                                                                                informationalResponseStrategy: .forward)))
                    try ops.addHandler(HTTPUpstreamHandler(session: handler.value))
                }
            }
            .connect(host: target.upstream.host, port: target.upstream.port)
            .assumeIsolated().whenComplete { result in
                let session = handler.value
                session.connecting = false
                switch result {
                case .success(let channel):
                    guard !session.isClosed else { channel.close(promise: nil); return }
                    session.upstream = channel
                    if !session.core.pauses.reads(.upstream) { channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in } }
                    let queued = session.upstreamQueue
                    session.upstreamQueue = []
                    for w in queued { session.send(w, flush: false) }
                    channel.flush()
                case .failure(let error):
                    session.logger.warning("cannot reach the HTTP upstream", metadata: ["target": "\(session.target.name)", "error": "\(error)"])
                    session.upstreamQueue = []
                    session.upstreamFailed("the gate cannot reach the upstream")
                }
            }
    }

    /// No response from the upstream (it could not be reached, or closed before answering): 502,
    /// and the client's connection closed (what it sent after may not have been read whole).
    func upstreamFailed(_ detail: String) {
        guard let ex = exchange else { return }
        if ex.response == nil {
            core.responded(.http(HTTPResponse(status: 502, headers: [KeyValue("X-Tollgate-Error", detail)],
                                              durationMicros: micros(since: ex.started))), exchange: ex.number)
            core.countError()
            submitRecorded()
            exchange = nil
            endReason = "upstream-failure"
            answerAndClose(GateResponse.json(status: 502, .init(error: "bad_gateway", detail: detail), closes: true))
        } else {
            // Mid-body: the client's response cannot be completed; it is cut (never padded or passed unmasked).
            endReason = "upstream-failure"
            context?.close(promise: nil)
        }
    }

    func micros(since start: NIODeadline) -> UInt64 {
        UInt64(max(0, (NIODeadline.now() - start).nanoseconds / 1000))
    }

    // MARK: The response

    func upstreamHead(_ head: HTTPResponseHead) {
        guard var ex = exchange, !isClosed else { return }
        let status = Int(head.status.code)
        var fields = head.headers.map { HTTPField($0.name, $0.value) }
        if (100..<200).contains(status) {
            // 100 Continue and the like: passed on; the final response follows. (101 is never
            // asked for: Upgrade is hop-by-hop and not forwarded.)
            guard status != 101 else { upstreamFailed("the upstream switched protocols"); return }
            write(Array("HTTP/1.1 \(status) \(head.status.reasonPhrase)\r\n\r\n".utf8))
            return
        }
        let bodiless = ex.head.method == "HEAD" || status == 204 || status == 304
        var masker: StreamingBodyMasker?
        var kube: KubernetesResponseMasker?
        var decoder: ContentDecoder?
        if !bodiless {
            let (handling, json) = isKubernetes ? Self.kubernetesBodyHandling(fields) : (ResponseBodyHandling.of(fields), false)
            if json { kube = kubernetesMasker() }
            switch handling {
            case .refuse(let reason):
                // Never passed in clear: the upstream connection (and its unread body) is dropped.
                dropUpstream()
                core.responded(.http(HTTPResponse(status: 502, headers: [KeyValue("X-Tollgate-Error", reason)] + RecordedFields.record(fields),
                                                  durationMicros: micros(since: ex.started))), exchange: ex.number)
                core.countError()
                submitRecorded()
                exchange = nil
                endReason = "unmaskable-response"
                answerAndClose(GateResponse.json(status: 502, .init(error: "unmaskable_response", detail: reason), closes: true))
                return
            case .maskText:
                if kube == nil, let m = core.recording.session { masker = StreamingBodyMasker(masker: m, lineByLine: isLogStream, json: ResponseBodyHandling.isJSON(fields)) }
                decoder = decodingBody(&fields)
            case .opaque:
                break
            }
        }
        let upstreamCloses = fields.listElements("connection").contains { $0.lowercased() == "close" } || head.version.minor == 0
        let length = fields.values("content-length").first.flatMap { Int($0) }
        let chunked = !bodiless && (masker != nil || kube != nil || decoder != nil || length == nil)
        let clientHTTP10 = ex.head.minorVersion == 0
        var out: [HTTPField]
        if bodiless {
            // The upstream's Content-Length describes the body a GET would get: kept for HEAD.
            out = HopByHopFields.removing(from: fields).filter { $0.canonicalName != "via" }
            out.append(HTTPField("Via", (fields.values("via") + ["1.1 tollgate"]).joined(separator: ", ")))
            if ex.head.method == "HEAD", let l = fields.values("content-length").first { out.append(HTTPField("Content-Length", l)) }
        } else if chunked && clientHTTP10 {
            // An HTTP/1.0 client has no chunked coding: the body runs to the close.
            out = DownstreamResponseFields.make(fields, framing: .length(0)).filter { $0.canonicalName != "content-length" }
        } else {
            out = DownstreamResponseFields.make(fields, framing: chunked ? .chunked : .length(length ?? 0))
        }
        let closeAfter = ex.head.closesConnection || (chunked && clientHTTP10)
        if closeAfter { out.append(HTTPField("Connection", "close")) }
        ex.response = HTTPExchange.Response(status: status, recordedFields: RecordedFields.record(out), chunked: chunked && !clientHTTP10,
                                            bodiless: bodiless, masker: masker, body: BodyRecording(cap: target.recordMaxValueBytes),
                                            closeAfter: closeAfter)
        ex.response?.kubernetes = kube
        ex.response?.decoder = decoder
        ex.response?.recordedAsStream = isLogStream && !bodiless
        if upstreamCloses { upstreamWillClose = true }
        exchange = ex
        var text = "HTTP/1.1 \(status) \(head.status.reasonPhrase)\r\n"
        for f in out { text += "\(f.name): \(f.value)\r\n" }
        text += "\r\n"
        if let kube, !kube.isWatch {
            ex.response?.heldHead = Array(text.utf8)
            exchange = ex
            return
        }
        write(Array(text.utf8), flush: false)
    }

    func upstreamBody(_ buffer: ByteBuffer) {
        guard var ex = exchange, var response = ex.response, !isClosed else { return }
        var bytes = Array(buffer.readableBytesView)
        var out = bytes
        if response.bodiless { return }
        if let decoder = response.decoder {
            switch decoder.decode(bytes) {
            case .success(let decoded): bytes = decoded; out = decoded
            case .failure(let why): undecodable(why.detail, held: response.heldHead != nil); return
            }
        }
        if var masker = response.masker {
            switch masker.feed(bytes) {
            case .success(let ready): out = ready
            case .failure(let why):
                logger.warning("HTTP response cut: it cannot be masked as it streams", metadata: ["target": "\(target.name)", "detail": "\(why.detail)"])
                response.masker = masker
                ex.response = response
                exchange = ex
                endReason = "unmaskable-response"
                dropUpstream()
                context?.close(promise: nil)
                return
            }
            response.masker = masker
        }
        if var kube = response.kubernetes {
            switch kube.feed(bytes) {
            case .success(let ready): out = ready
            case .failure(let why):
                guard response.heldHead == nil else { kubernetesUnmaskable(why.detail); return }
                logger.warning("Kubernetes watch cut: an event cannot be masked", metadata: ["target": "\(target.name)", "detail": "\(why.detail)"])
                endReason = "unmaskable-response"
                dropUpstream()
                context?.close(promise: nil)
                return
            }
            response.kubernetes = kube
        }
        recordBody(out, of: &response, exchange: ex.number)
        ex.response = response
        exchange = ex
        writeBody(out, chunked: response.chunked)
    }

    func writeBody(_ bytes: [UInt8], chunked: Bool) {
        guard !bytes.isEmpty else { return }
        if chunked {
            write(Array(String(bytes.count, radix: 16).utf8) + [13, 10] + bytes + [13, 10], flush: false)
        } else {
            write(bytes, flush: false)
        }
    }

    func upstreamEnd() {
        guard var ex = exchange, var response = ex.response, !isClosed else { return }
        if let why = response.decoder?.finish() { undecodable(why.detail, held: response.heldHead != nil); return }
        if var masker = response.masker {
            guard case .success(let rest) = masker.finish() else {
                // A JSON body that ends inside a value is cut, not completed: the client sees it broken.
                endReason = "unmaskable-response"
                dropUpstream()
                context?.close(promise: nil)
                return
            }
            recordBody(rest, of: &response, exchange: ex.number)
            writeBody(rest, chunked: response.chunked)
            response.masker = masker
        }
        if var kube = response.kubernetes {
            switch kube.finish() {
            case .success(let rest):
                if let head = response.heldHead { write(head, flush: false) }
                response.body.append(rest)
                writeBody(rest, chunked: response.chunked)
            case .failure(let why):
                guard response.heldHead == nil else { kubernetesUnmaskable(why.detail); return }
                endReason = "unmaskable-response"
                dropUpstream()
                context?.close(promise: nil)
                return
            }
            response.kubernetes = kube
        }
        if response.chunked { write(Array("0\r\n\r\n".utf8), flush: false) }
        context?.flush()
        ex.response = response
        let secrets = core.recording.secrets
        let body = response.body.capped { kept in secrets.flatMap { $0.mask(kept)?.bytes } ?? kept }
        core.responded(.http(HTTPResponse(status: UInt16(clamping: response.status), headers: response.recordedFields, body: body,
                                          durationMicros: micros(since: ex.started))),
                       exchange: ex.number, masked: response.masker?.tally ?? response.kubernetes?.tally)
        submitRecorded()
        exchange = nil
        if upstreamWillClose || !ex.requestEnded {
            // The upstream ends its connection, or answered before the request was whole: not reused.
            dropUpstream()
            upstreamWillClose = false
        }
        if response.closeAfter {
            endReason = "client-close"
            closeAfterFlush()
            return
        }
        step = ex.requestEnded ? .idle : .discarding(closeAfter: true)
        pump()
    }

    /// Lets go of the upstream connection first, then closes it: its close is then not taken
    /// for the failure of an exchange the gate is ending itself.
    func dropUpstream() {
        let channel = upstream
        upstream = nil
        upstreamWillClose = false
        channel?.close(promise: nil)
    }

    /// The upstream connection closed: between responses it is opened again when needed; during one, the exchange fails.
    func upstreamClosed(_ channel: any Channel) {
        guard let current = upstream, current === channel else { return }
        upstream = nil
        upstreamWillClose = false
        if exchange != nil, case .forwarding = step { upstreamFailed("the upstream closed the connection before its response was complete") }
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        apply(writable ? core.resume(.client, .peerSlow) : core.pause(.client, .peerSlow))
    }
}

/// The upstream connection's last handler: hands the decoded response to the session.
final class HTTPUpstreamHandler: UpstreamSessionHandler {
    typealias InboundIn = HTTPClientResponsePart

    let session: HTTPSessionHandler

    init(session: HTTPSessionHandler) { self.session = session }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): session.upstreamHead(head)
        case .body(let body): session.upstreamBody(body)
        case .end: session.upstreamEnd()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.upstreamClosed(context.channel)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        session.logger.info("HTTP upstream connection error", metadata: ["target": "\(session.target.name)", "error": "\(error)"])
        // A certificate the gate does not trust, say: the client is told what failed, not only that the upstream closed.
        if session.upstream === context.channel { session.upstreamFailed("the upstream connection failed: \(error)") }
        context.close(promise: nil)
    }
}
