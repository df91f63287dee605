import HTTPProxy
import Testing

@Suite("HTTP response fields and body handling")
struct ResponseFieldsTests {
    @Test(arguments: [
        ("application/json", ResponseBodyHandling.maskText),
        ("application/json; charset=utf-8", .maskText),
        ("application/problem+json", .maskText),
        ("text/html", .maskText),
        ("image/png", .opaque),
        ("application/octet-stream", .opaque),
    ])
    func mediaTypes(type: String, expected: ResponseBodyHandling) {
        #expect(ResponseBodyHandling.of([HTTPField("Content-Type", type)]) == expected)
    }

    @Test func anEncodingTheGateCannotDecodeIsRefused() {
        // One gzip or deflate coding on a text body is decoded by the gate (ContentDecoder).
        for coding in ["gzip", "x-gzip", "deflate", "identity, gzip"] {
            #expect(ResponseBodyHandling.of([HTTPField("Content-Type", "application/json"), HTTPField("Content-Encoding", coding)]) == .maskText, "\(coding)")
        }
        for coding in ["br", "zstd", "compress", "gzip, gzip", "gzip, br"] {
            let h = ResponseBodyHandling.of([HTTPField("Content-Type", "application/json"), HTTPField("Content-Encoding", coding)])
            guard case .refuse(let why) = h else { Issue.record("\(coding) passed"); continue }
            #expect(why.contains("Content-Encoding"))
        }
        // Even an opaque type: a coded body is not passed unread.
        #expect(ResponseBodyHandling.of([HTTPField("Content-Type", "image/png"), HTTPField("Content-Encoding", "gzip")]) != .opaque)
        #expect(ResponseBodyHandling.of([HTTPField("Content-Encoding", "identity")]) == .maskText)
    }

    @Test func noOrConflictingContentType() {
        #expect(ResponseBodyHandling.of([]) == .maskText, "an untyped body may be sniffed as text")
        if case .refuse = ResponseBodyHandling.of([HTTPField("Content-Type", "image/png"), HTTPField("Content-Type", "text/plain")]) {} else {
            Issue.record("two Content-Types passed")
        }
    }

    @Test func downstreamFieldsDropHopByHopAndReframe() {
        let upstream = [HTTPField("Content-Type", "application/json"), HTTPField("Content-Length", "120"),
                        HTTPField("Connection", "keep-alive, X-Hop"), HTTPField("X-Hop", "1"), HTTPField("Keep-Alive", "timeout=5"),
                        HTTPField("Proxy-Authenticate", "Basic"), HTTPField("Set-Cookie", "k=v")]
        let out = DownstreamResponseFields.make(upstream, framing: .chunked)
        #expect(out.values("content-length").isEmpty, "the upstream's length is not the masked body's")
        #expect(out.values("transfer-encoding") == ["chunked"])
        for gone in ["connection", "x-hop", "keep-alive", "proxy-authenticate"] { #expect(out.values(gone).isEmpty) }
        #expect(out.values("set-cookie") == ["k=v"], "end-to-end fields reach the client")
        #expect(out.values("via") == ["1.1 tollgate"])
    }
}
