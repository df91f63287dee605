import HTTPProxy
import Testing

/// Message sequences through the client-side machine: what a connection's bytes become.
@Suite("HTTP request stream")
struct RequestStreamMachineTests {
    let limits = HTTPLimits(maxHeaderBytes: 512, maxBodyBytes: 64, maxChunkLineBytes: 32)

    func run(_ chunks: [String], limits: HTTPLimits? = nil) -> [RequestStreamMachine.Event] {
        var m = RequestStreamMachine(limits: limits ?? self.limits)
        return chunks.flatMap { m.receive(Array($0.utf8)) }
    }

    func refusal(_ events: [RequestStreamMachine.Event]) -> HTTPRefusal? {
        if case .refuse(let r)? = events.last { return r }
        return nil
    }

    func heads(_ events: [RequestStreamMachine.Event]) -> [RequestHead] {
        var out: [RequestHead] = []
        for case .head(let h, _) in events { out.append(h) }
        return out
    }

    func body(_ events: [RequestStreamMachine.Event]) -> String {
        var bytes: [UInt8] = []
        for case .body(let b) in events { bytes += b }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func getWithoutBody() {
        let e = run(["GET /a?x=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"])
        #expect(e.count == 2)
        #expect(heads(e).first == RequestHead(method: "GET", target: "/a?x=1", fields: [HTTPField("Host", "h"), HTTPField("Accept", "*/*")]))
        #expect(e.last == .end)
    }

    @Test func optionsStarIsTaken() {
        let e = run(["OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"])
        #expect(heads(e).map(\.target) == ["*"])
    }

    @Test func headSplitAcrossReads() {
        let e = run(["GET / HT", "TP/1.1\r\nHo", "st: h\r\n\r", "\n"])
        #expect(heads(e).count == 1 && e.last == .end)
    }

    @Test func pipelinedRequestsComeOutInOrder() {
        let e = run(["GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: h\r\n\r\n"])
        #expect(heads(e).map(\.target) == ["/1", "/2", "/3"])
        #expect(body(e) == "abc")
        #expect(e.filter { $0 == .end }.count == 3)
    }

    @Test func contentLengthBodyAcrossReads() {
        let e = run(["PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab", "cde", "GET /n HTTP/1.1\r\nHost: h\r\n\r\n"])
        #expect(body(e) == "abcde")
        #expect(heads(e).map(\.target) == ["/", "/n"])
    }

    @Test func chunkedBodyIsDecodedTrailersDropped() {
        let e = run(["POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n",
                     "0\r\nX-Trailer: t\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n"])
        guard case .head(_, let framing)? = e.first else { Issue.record("no head"); return }
        #expect(framing == .chunked)
        #expect(body(e) == "Wikipedia")
        #expect(heads(e).map(\.target) == ["/", "/next"])
        #expect(refusal(e) == nil)
    }

    @Test func chunkedBodyByteByByte() {
        let raw = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        let e = run(raw.map { String($0) })
        #expect(body(e) == "abc")
        #expect(e.last == .end)
    }

    @Test func connectionCloseEndsTheStream() {
        let e = run(["GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"])
        #expect(heads(e).map(\.target) == ["/"])
    }

    @Test func http10WithoutKeepAliveEndsTheStream() {
        let e = run(["GET / HTTP/1.0\r\n\r\nGET /two HTTP/1.0\r\n\r\n"])
        #expect(heads(e).map(\.target) == ["/"])
    }

    // Smuggling and malformed framing: each refused, nothing after it comes out.

    @Test(arguments: [
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", HTTPRefusal.Reason.lengthAndTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", .repeatedContentLength),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", .repeatedContentLength),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n", .repeatedContentLength),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\n", .invalidContentLength),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", .unsupportedTransferEncoding),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", .malformedField),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  continued\r\n\r\n", .obsoleteLineFolding),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\tcontinued\r\n\r\n", .obsoleteLineFolding),
        ("GET / HTTP/1.1\nHost: h\n\n", .bareLineEnding),
        ("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", .bareLineEnding),
        ("GET / HTTP/1.1\r\nX: y\r\n\r\n", .missingOrRepeatedHost),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", .missingOrRepeatedHost),
        ("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", .malformedRequestLine),
        ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", .unsupportedVersion),
        ("GET http://other.test/ HTTP/1.1\r\nHost: h\r\n\r\n", .malformedRequestLine),
        ("CONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\n\r\n", .malformedRequestLine),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{01}b\r\n\r\n", .malformedField),
    ])
    func malformedHeadsAreRefused(raw: String, reason: HTTPRefusal.Reason) {
        let e = run([raw + "GET /after HTTP/1.1\r\nHost: h\r\n\r\n"])
        #expect(refusal(e)?.reason == reason)
        #expect(heads(e).isEmpty, "nothing of a refused request is passed on")
    }

    @Test(arguments: [
        "zz\r\nabc\r\n0\r\n\r\n",          // not hex
        "\r\nabc\r\n0\r\n\r\n",            // empty size
        " 3\r\nabc\r\n0\r\n\r\n",          // leading space
        "-3\r\nabc\r\n0\r\n\r\n",          // sign
        "0x3\r\nabc\r\n0\r\n\r\n",         // 0x prefix
        "3\nabc\r\n0\r\n\r\n",             // bare LF
        "3\r\nabcd\r\n0\r\n\r\n",          // data longer than its size
        "10000000000000000\r\n",           // 17 digits: overflow
        "3;\u{01}\r\nabc\r\n0\r\n\r\n",    // control in an extension
    ])
    func badChunksAreRefused(chunks: String) {
        let e = run(["POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + "GET /after HTTP/1.1\r\nHost: h\r\n\r\n"])
        #expect(refusal(e)?.reason == .badChunk || refusal(e)?.reason == .bodyTooLarge)
        #expect(refusal(e)?.status == 400 || refusal(e)?.status == 413)
        #expect(heads(e).map(\.target) == ["/"], "the request after a bad chunk is not taken")
        #expect(!e.contains(.end))
    }

    @Test func oversizedHeaderSectionIs431() {
        let e = run(["GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + String(repeating: "a", count: 600) + "\r\n\r\n"])
        #expect(refusal(e)?.status == 431)
    }

    @Test func oversizedHeaderSectionWithoutEndIs431BeforeItEnds() {
        var m = RequestStreamMachine(limits: limits)
        #expect(m.receive(Array("GET / HTTP/1.1\r\nHost: h\r\n".utf8)).isEmpty)
        let e = m.receive(Array(("X-Big: " + String(repeating: "a", count: 600)).utf8))
        #expect(refusal(e)?.status == 431)
        #expect(m.isRefused)
        #expect(m.receive(Array("\r\n\r\n".utf8)).isEmpty, "after a refusal nothing more comes out")
    }

    @Test func overlongRequestLineIs414() {
        let e = run(["GET /" + String(repeating: "a", count: 600)])
        #expect(refusal(e)?.status == 414)
    }

    @Test func declaredBodyOverTheLimitIs413() {
        let e = run(["POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 65\r\n\r\n"])
        #expect(refusal(e)?.status == 413)
        #expect(heads(e).isEmpty)
    }

    @Test func chunkedBodyOverTheLimitIs413() {
        var m = RequestStreamMachine(limits: limits)
        let first = m.receive(Array(("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + String(repeating: "a", count: 32) + "\r\n").utf8))
        #expect(body(first).count == 32 && refusal(first) == nil)
        // One byte more than the limit's remaining 32 is refused when its size line is read,
        // before any of its data.
        let second = m.receive(Array("21\r\n".utf8))
        #expect(refusal(second)?.status == 413)
    }
}
