import CaptureFormat
@testable import HTTPProxy
import Masking
import Testing

/// The WebSocket frames of an exec through the gate, as byte sequences: parsed strictly, fed a byte
/// at a time as well as whole, re-framed (masked upstream, unmasked to the client), recorded by
/// channel, the output masked, and every way of breaking the protocol refused with what and where.
@Suite("kubernetes stream relay")
struct KubernetesStreamRelayTests {
    static let key: [UInt8] = [0x12, 0x34, 0x56, 0x78]

    func client(_ opcode: WebSocketFrame.Opcode, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
        WebSocketFrame(fin: fin, opcode, payload).encoded(mask: Self.key)
    }

    func server(_ opcode: WebSocketFrame.Opcode, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
        WebSocketFrame(fin: fin, opcode, payload).encoded()
    }

    func relay(_ p: KubernetesStreamRelay.Subprotocol = .v5) -> KubernetesStreamRelay {
        KubernetesStreamRelay(subprotocol: p, masker: try? Masker(detectors: [.creditCard]), maxMessageBytes: 1 << 16)
    }

    func frames(_ bytes: [UInt8], masked: Bool) -> [WebSocketFrame] {
        var p = WebSocketFrameParser(masked: masked, maxFrameBytes: 1 << 20)
        guard case .success(let out) = p.feed(bytes) else { return [] }
        return out.map(\.frame)
    }

    @Test func framesOfEveryLengthRoundTripFedWholeOrAByteAtATime() {
        for n in [0, 1, 125, 126, 65535, 65536, 70000] {
            let payload = (0..<n).map { UInt8(truncatingIfNeeded: $0) }
            let bytes = client(.binary, payload) + client(.ping, [1, 2])
            var whole = WebSocketFrameParser(masked: true, maxFrameBytes: 1 << 20)
            var split = WebSocketFrameParser(masked: true, maxFrameBytes: 1 << 20)
            let a = (try? whole.feed(bytes).get()) ?? []
            var b: [WebSocketFrameParser.Located] = []
            for byte in bytes { b += (try? split.feed([byte]).get()) ?? [] }
            #expect(a.map(\.frame) == [WebSocketFrame(.binary, payload), WebSocketFrame(.ping, [1, 2])], "length \(n)")
            #expect(a == b, "length \(n)")
        }
    }

    @Test func stdinAndResizeAreRecordedAndForwardedMaskedAsOneFrame() {
        var r = relay()
        // stdin in two fragments, then a resize.
        let actions = r.fromClient(client(.binary, [0, 0x6C], fin: false) + client(.continuation, Array("s\n".utf8))
                                   + client(.binary, [4] + Array(#"{"Width":120,"Height":40}"#.utf8)))
        let recorded = actions.compactMap { if case .record(let c) = $0 { c } else { nil } }
        #expect(recorded == [StreamChunk(stream: .stdin, data: Array("ls\n".utf8)),
                             StreamChunk(stream: .resize, data: Array(#"{"Width":120,"Height":40}"#.utf8), columns: 120, rows: 40)])
        let up = actions.compactMap { if case .toUpstream(let b) = $0 { b } else { nil } }
        #expect(up.count == 2 && up.allSatisfy { $0[1] & 0x80 != 0 }, "frames to the upstream are masked")
        #expect(frames(up.joined().map { $0 }, masked: true) == [WebSocketFrame(.binary, [0] + Array("ls\n".utf8)),
                                                                WebSocketFrame(.binary, [4] + Array(#"{"Width":120,"Height":40}"#.utf8))])
    }

    @Test func outputIsMaskedHeldToTheLineEndAndTheStatusComesAfterIt() {
        var r = relay()
        // A card number split between two messages, the line not ended: nothing of it goes out yet.
        var actions = r.fromUpstream(server(.binary, [1] + Array("card 4111 1111".utf8)))
        #expect(!actions.contains { if case .toClient = $0 { true } else { false } } && actions.contains(.flushLater))
        actions = r.fromUpstream(server(.binary, [1] + Array(" 1111 1111\nnext".utf8)))
        let sent = frames(actions.compactMap { if case .toClient(let b) = $0 { b } else { nil } }.joined().map { $0 }, masked: false)
        #expect(sent.count == 1 && !String(decoding: sent[0].payload, as: UTF8.self).contains("4111 1111 1111 1111"), "\(sent)")
        #expect(sent.first?.payload.first == 1)
        // The Status flushes what is held first.
        actions = r.fromUpstream(server(.binary, [3] + Array(#"{"status":"Success"}"#.utf8)))
        let out = frames(actions.compactMap { if case .toClient(let b) = $0 { b } else { nil } }.joined().map { $0 }, masked: false)
        #expect(out.map { $0.payload.first } == [1, 3] && out[0].payload == [1] + Array("next".utf8), "\(out)")
        #expect(actions.contains(.status(Array(#"{"status":"Success"}"#.utf8))))
        #expect(r.tally.total == 1)
    }

    @Test func pingsPongsAndClosesPassThrough() {
        var r = relay()
        let ping = r.fromClient(client(.ping, [7]))
        #expect(ping.count == 1 && frames(ping.compactMap { if case .toUpstream(let b) = $0 { b } else { nil } }[0], masked: true) == [WebSocketFrame(.ping, [7])])
        let pong = r.fromUpstream(server(.pong, [7]))
        #expect(pong == [.toClient(server(.pong, [7]))])
        let close = r.fromUpstream(server(.close, [0x03, 0xE8]))
        #expect(close.last == .closed(.upstream, code: 1000) && r.upstreamClosed)
        let clientClose = r.fromClient(client(.close, [0x03, 0xE8]))
        #expect(clientClose.last == .closed(.client, code: 1000))
    }

    /// One breaking sequence each: the code, and what the reason says.
    @Test(arguments: [
        ("unmasked client frame", WebSocketFrame(.binary, [0, 1]).encoded(), UInt16(1002), "must be masked"),
        ("reserved bit", [0xC2, 0x80] + key, 1002, "reserved bits"),
        ("control frame over 125", WebSocketFrame(.ping, Array(repeating: 1, count: 126)).encoded(mask: key), 1002, "at most 125"),
        ("fragmented control", WebSocketFrame(fin: false, .pong, []).encoded(mask: key), 1002, "fragmented pong"),
        ("unknown opcode", [0x83, 0x80] + key, 1002, "unknown opcode 3"),
        ("text", WebSocketFrame(.text, [0, 65]).encoded(mask: key), 1002, "text frame"),
        ("channel 1 from the client", WebSocketFrame(.binary, [1, 65]).encoded(mask: key), 1002, "channel 1"),
        ("no channel byte", WebSocketFrame(.binary, []).encoded(mask: key), 1002, "no channel byte"),
        ("bad resize", WebSocketFrame(.binary, [4] + Array("{}".utf8)).encoded(mask: key), 1002, "resize"),
        ("continuation first", WebSocketFrame(.continuation, [0]).encoded(mask: key), 1002, "no message begun"),
        ("message in a message", WebSocketFrame(fin: false, .binary, [0]).encoded(mask: key) + WebSocketFrame(.binary, [0]).encoded(mask: key), 1002, "inside a fragmented"),
        ("frame over the limit", [0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0], 1009, "over the gate's limit"),
        ("message over the limit", WebSocketFrame(fin: false, .binary, Array(repeating: 0, count: 40000)).encoded(mask: key)
            + WebSocketFrame(.continuation, Array(repeating: 0, count: 40000)).encoded(mask: key), 1009, "over the gate's limit"),
    ] as [(String, [UInt8], UInt16, String)])
    func aBreakingClientSequenceIsRefused(name: String, bytes: [UInt8], code: UInt16, what: String) {
        var r = relay()
        let actions = r.fromClient(bytes)
        guard case .refused(.client, let error)? = actions.last else { Issue.record("\(name): \(actions)"); return }
        #expect(error.code == code && error.detail.contains(what) && error.detail.contains("client frame"), "\(name): \(error)")
        // Nothing of it upstream but the gate's own close (1001); the client told why.
        let up = frames(actions.compactMap { if case .toUpstream(let b) = $0 { b } else { nil } }.joined().map { $0 }, masked: true)
        #expect(up.map(\.opcode) == [.close] && up.first?.closeCode == 1001, "\(name): \(up)")
        let toClient = frames(actions.compactMap { if case .toClient(let b) = $0 { b } else { nil } }.joined().map { $0 }, masked: false)
        #expect(toClient.count == 1 && toClient[0].closeCode == code, "\(name)")
        #expect(r.fromClient(WebSocketFrame(.binary, [0, 65]).encoded(mask: Self.key)).isEmpty, "read after the refusal")
    }

    @Test func aMaskedUpstreamFrameOrAClientChannelFromTheUpstreamIsRefused() {
        var r = relay()
        guard case .refused(.upstream, let e)? = r.fromUpstream(WebSocketFrame(.binary, [1, 65]).encoded(mask: Self.key)).last else {
            Issue.record("not refused"); return
        }
        #expect(e.detail.contains("must not be masked"))
        var s = relay()
        guard case .refused(.upstream, let f)? = s.fromUpstream(server(.binary, [0, 65])).last else { Issue.record("not refused"); return }
        #expect(f.detail.contains("channel 0"))
    }

    @Test func v4HasNoCloseChannel() {
        var r = relay(.v4)
        guard case .refused(.client, let e)? = r.fromClient(client(.binary, [255, 0])).last else { Issue.record("not refused"); return }
        #expect(e.detail.contains("channel 255"))
        var v5 = relay(.v5)
        #expect(v5.fromClient(client(.binary, [255, 0])).first == .record(StreamChunk(stream: .stdin)))
    }

    @Test func theHandshakeIsCheckedBothWays() {
        let head = RequestHead(method: "GET", target: "/x", fields: [
            HTTPField("Sec-WebSocket-Version", "13"), HTTPField("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            HTTPField("Sec-WebSocket-Protocol", "v5.channel.k8s.io, v4.channel.k8s.io, channel.k8s.io"),
            HTTPField("Sec-WebSocket-Extensions", "permessage-deflate"),
        ])
        guard case .success(let u) = WebSocketUpgrade.request(head) else { Issue.record("refused"); return }
        #expect(u.offered == [.v5, .v4])
        // RFC 6455 §1.3's example.
        #expect(WebSocketUpgrade.accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        let up = u.upstreamFields(head.fields)
        #expect(!up.contains { $0.canonicalName == "sec-websocket-extensions" } && up.values("sec-websocket-key") == [u.upstreamKey])
        let ok = WebSocketUpgrade.ResponseHead(status: 101, reason: "", fields: [HTTPField("Upgrade", "websocket"),
            HTTPField("Sec-WebSocket-Accept", WebSocketUpgrade.accept(u.upstreamKey)), HTTPField("Sec-WebSocket-Protocol", "v4.channel.k8s.io")])
        #expect(u.accepted(ok) == .success(.v4))
        var wrongKey = ok
        wrongKey.fields[1] = HTTPField("Sec-WebSocket-Accept", WebSocketUpgrade.accept(u.clientKey))
        #expect(u.accepted(wrongKey) != .success(.v4))
        var none = head
        none.fields[2] = HTTPField("Sec-WebSocket-Protocol", "base64.channel.k8s.io")
        #expect((try? WebSocketUpgrade.request(none).get()) == nil)
    }
}
