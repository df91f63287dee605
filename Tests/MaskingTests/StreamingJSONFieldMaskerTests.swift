import Foundation
import Masking
import Testing

/// JSON field-name masks (`{json_field: …}`), applied as a body streams in pieces of any size.
@Suite("streaming JSON field masker")
struct StreamingJSONFieldMaskerTests {
    func rules(_ patterns: String...) -> [JSONFieldRule] { patterns.map { JSONFieldRule($0)! } }

    /// `body` fed in pieces of `size` bytes: the output, or the refusal.
    func run(_ body: String, _ rules: [JSONFieldRule], size: Int) -> Result<String, StreamingJSONFieldMasker.Refusal> {
        var m = StreamingJSONFieldMasker(rules: rules)
        let bytes = Array(body.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            switch m.feed(Array(bytes[i..<min(bytes.count, i + size)])) {
            case .success(let o): out += o
            case .failure(let f): return .failure(f)
            }
            i += size
        }
        switch m.finish() {
        case .success(let o): out += o
        case .failure(let f): return .failure(f)
        }
        return .success(String(decoding: out, as: UTF8.self))
    }

    @Test func membersNamedByTheRulesAreMaskedWhateverTheirTypeAndEverythingElseIsKeptByteForByte() throws {
        let body = #"{"user": {"name": "ada", "password": "hunter2", "token": {"a": [1, "x"]}}, "items": [{"password": 12.5e3}, {"password": null, "ok": true}], "password": "top", "pass\u0077ord2": "kept"}"#
        let expected = #"{"user": {"name": "ada", "password": "********", "token": "********"}, "items": [{"password": "********"}, {"password": "********", "ok": true}], "password": "********", "pass\u0077ord2": "kept"}"#
        for size in [1, 2, 3, 7, 64, 10_000] {
            let r = run(body, rules("password", "*.token"), size: size)
            #expect((try? r.get()) == expected, "pieces of \(size): \(r)")
        }
    }

    @Test func aPathRuleMatchesTheLastKeysAndArraysAddNothing() throws {
        let body = #"{"token": "top-level", "user": {"token": "u"}, "list": [{"user": {"token": "deep"}}], "user2": {"token": "other"}}"#
        let r = try run(body, rules("user.token"), size: 5).get()
        #expect(r == #"{"token": "top-level", "user": {"token": "********"}, "list": [{"user": {"token": "********"}}], "user2": {"token": "other"}}"#, "\(r)")
        // `*.token` is any token inside a member, not the top-level one; a key escape is read as decoded.
        let star = try run(#"{"token": 1, "a": {"t\u006fken": 2}}"#, rules("*.token"), size: 3).get()
        #expect(star == #"{"token": 1, "a": {"t\u006fken": "********"}}"#, "\(star)")
    }

    @Test func jsonLinesAreReadOneValueAfterAnother() throws {
        let body = "{\"type\":\"ADDED\",\"object\":{\"password\":\"a\"}}\n{\"type\":\"MODIFIED\",\"object\":{\"password\":\"b\"}}\n"
        let r = try run(body, rules("password"), size: 4).get()
        #expect(r == "{\"type\":\"ADDED\",\"object\":{\"password\":\"********\"}}\n{\"type\":\"MODIFIED\",\"object\":{\"password\":\"********\"}}\n")
    }

    @Test func aLargeBodyIsMaskedWithNothingHeld() throws {
        let record = #"{"id":1,"password":"s3cret-value","note":"x"},"#
        let body = "[" + String(repeating: record, count: 20_000) + "{}]"
        var m = StreamingJSONFieldMasker(rules: rules("password"))
        var out = 0
        for piece in stride(from: 0, to: body.utf8.count, by: 4096) {
            let bytes = Array(body.utf8.dropFirst(piece).prefix(4096))
            let o = try m.feed(bytes).get()
            // Each piece comes out at once, less only what masks replaced (4 bytes a record, one value at most pending).
            #expect(o.count >= bytes.count - bytes.count / 8 - 16, "\(o.count) of \(bytes.count)")
            #expect(!String(decoding: o, as: UTF8.self).contains("s3cret"))
            out += o.count
        }
        _ = try m.finish().get()
        #expect(m.masked == 20_000 && out == body.utf8.count - 4 * 20_000)
    }

    @Test func whatIsNotJSONIsRefusedWhereItStops() {
        for bad in [#"{"a": tru}"#, #"{"a" 1}"#, #"{"a": 1,}"#, #"[1 2]"#, #"{"a": "\q"}"#, "{\"a\": \"\u{01}\"}", #"{"a": 01}"#,
                    #"{"a": [1}"#, #"{"password": "cut"#, #"{'a': 1}"#, #"{"a": -}"#, #"{"a": "\u12G4"}"#] {
            guard case .failure(let f) = run(bad, rules("password"), size: 3) else { Issue.record("accepted: \(bad)"); continue }
            #expect(f.detail.contains("JSON"), "\(bad): \(f)")
        }
    }

    @Test func badRulesAreRefused() {
        for bad in ["", ".a", "a.", "a..b"] { #expect(JSONFieldRule(bad) == nil, "\(bad)") }
        #expect(throws: MaskingError.self) { try Masker(detectorNames: [], jsonFieldRules: ["a..b"]) }
    }
}
