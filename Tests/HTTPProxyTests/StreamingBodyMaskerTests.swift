import HTTPProxy
import Masking
import Policy
import Testing

/// Response bodies masked as they stream: whole when small, cut only at delimiters when large,
/// refused when they cannot be cut.
@Suite("streaming body masker")
struct StreamingBodyMaskerTests {
    let masker = try! Masker(detectors: [.email, .usSSN])

    func run(_ pieces: [[UInt8]]) -> (out: [UInt8], failed: Bool, tally: MaskTally) {
        var m = StreamingBodyMasker(masker: masker)
        var out: [UInt8] = []
        for p in pieces {
            switch m.feed(p) {
            case .success(let ready): out += ready
            case .failure: return (out, true, m.tally)
            }
        }
        out += (try? m.finish().get()) ?? []
        return (out, false, m.tally)
    }

    @Test func aSmallBodySplitAnywhereIsMaskedWhole() {
        let body = Array(#"{"email":"ada.lovelace@example.com","ssn":"078-05-1120"}"#.utf8)
        for cut in 1..<body.count {
            let r = run([Array(body[..<cut]), Array(body[cut...])])
            let text = String(decoding: r.out, as: UTF8.self)
            #expect(!r.failed && !text.contains("ada.lovelace") && !text.contains("078-05-1120") && text.contains("\"email\""), "cut at \(cut): \(text)")
            #expect(r.tally.total == 2)
        }
    }

    @Test func aLargeJSONBodyIsMaskedAsItStreamsWithNoValueSplitAcrossACut() {
        // Many records, sent in pieces that split values: every address is masked, none passes.
        let record = #"{"name":"x","email":"ada.lovelace@example.com","ssn":"078-05-1120"},"#
        let body = Array(("[" + String(repeating: record, count: 5000) + "{}]").utf8)
        var pieces: [[UInt8]] = []
        var i = 0
        while i < body.count { pieces.append(Array(body[i..<min(i + 7001, body.count)])); i += 7001 }
        var m = StreamingBodyMasker(masker: masker)
        var out: [UInt8] = []
        for p in pieces {
            guard case .success(let ready) = m.feed(p) else { Issue.record("refused"); return }
            out += ready
        }
        let beforeTheEnd = out.count
        out += (try? m.finish().get()) ?? []
        let text = String(decoding: out, as: UTF8.self)
        #expect(!text.contains("ada.lovelace") && !text.contains("078-05-1120"))
        #expect(m.tally.total == 10_000, "\(m.tally.total)")
        // It streamed: output came out before the end.
        #expect(beforeTheEnd > body.count / 2, "\(beforeTheEnd)")
    }

    @Test func aBodyWithNoDelimiterPastTheBoundIsRefused() {
        let r = run([[UInt8](repeating: UInt8(ascii: "a"), count: StreamingBodyMasker.maxHeld + 1)])
        #expect(r.failed && r.out.isEmpty)
    }
}

/// The facts an HTTP request is decided on.
@Suite("HTTP request facts")
struct HTTPRequestFactsTests {
    @Test func methodDecodedPathHostAndQueryNames() {
        let f = HTTPRequestInspector.facts(.init(method: "POST", target: "/api/%69tems?id=1&token=x", host: "api.example.com:8443"))
        #expect(f.kind == "post" && f.writes)
        #expect(f.attributes[.method] == "POST" && f.attributes[.path] == "/api/items" && f.attributes[.query] == "id&token", "\(f.attributes)")
        let g = HTTPRequestInspector.facts(.init(method: "GET", target: "/", host: "h"))
        #expect(!g.writes && g.attributes[.query] == nil)
    }

    @Test func aPathTheServerCouldReadDifferentlyIsRefused() {
        for target in ["/api/..%2fadmin", "/api//x", "/api/%zz"] {
            let f = HTTPRequestInspector.facts(.init(method: "GET", target: target, host: "h"))
            #expect(f.parseError != nil && f.refusal != nil, "\(target): \(f)")
        }
    }
}
