import HTTPProxy
import NIOCore
import NIOEmbedded
import Testing

/// The framing handler on an EmbeddedChannel: what passes down the pipeline, what the client
/// is answered, and that a refused connection is closed.
@Suite("HTTP framing handler")
struct HTTPFramingHandlerTests {
    func channel() throws -> EmbeddedChannel {
        let ch = EmbeddedChannel()
        try ch.pipeline.syncOperations.addHandler(HTTPFramingHandler(limits: HTTPLimits(maxHeaderBytes: 256, maxBodyBytes: 64)))
        // Connected, so that `isActive` says something: a closed channel is no longer active.
        try ch.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        #expect(ch.isActive)
        return ch
    }

    func send(_ ch: EmbeddedChannel, _ text: String) throws {
        try ch.writeInbound(ch.allocator.buffer(string: text))
    }

    func passed(_ ch: EmbeddedChannel) throws -> [RequestStreamMachine.Event] {
        var out: [RequestStreamMachine.Event] = []
        while let e = try ch.readInbound(as: RequestStreamMachine.Event.self) { out.append(e) }
        return out
    }

    func answered(_ ch: EmbeddedChannel) throws -> String {
        var text = ""
        while var b = try ch.readOutbound(as: ByteBuffer.self) { text += b.readString(length: b.readableBytes) ?? "" }
        return text
    }

    @Test func wellFormedRequestsPassAndNothingIsAnswered() throws {
        let ch = try channel()
        try send(ch, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhiGET /b HTTP/1.1\r\nHost: h\r\n\r\n")
        let events = try passed(ch)
        #expect(events.count == 5)
        #expect(events[1] == .body(Array("hi".utf8)))
        #expect(try answered(ch).isEmpty)
        #expect(ch.isActive)
    }

    @Test(arguments: [
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
    ])
    func smugglingIsAnswered400AndClosed(raw: String) throws {
        let ch = try channel()
        try send(ch, raw + "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n")
        let events = try passed(ch)
        #expect(!events.contains { if case .head(let h, _) = $0 { h.target == "/smuggled" } else { false } })
        let answer = try answered(ch)
        #expect(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(answer)")
        #expect(answer.contains("Connection: close\r\n"))
        #expect(!ch.isActive, "the connection is closed after the refusal")
    }

    @Test func oversizedHeadersAre431() throws {
        let ch = try channel()
        try send(ch, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + String(repeating: "x", count: 300))
        #expect(try passed(ch).isEmpty)
        #expect(try answered(ch).hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
        #expect(!ch.isActive)
    }
}
