import HTTPProxy
import Masking
import Testing

/// A pod's log masked line by line (`logs -f`): each line goes out as soon as it ends, masked, and
/// a line split anywhere between reads is never sent in part.
@Suite("streaming body masker, line by line")
struct LineByLineMaskingTests {
    let masker = try! Masker(detectors: [.email, .usSSN])

    @Test func eachLineIsSentMaskedWhenItEndsAndNotBefore() {
        let log = "user alice@example.com signed in\nverified customer ssn 123-45-6789\n"
        let bytes = Array(log.utf8)
        for cut in 1..<bytes.count {
            var m = StreamingBodyMasker(masker: masker, lineByLine: true)
            guard case .success(let first) = m.feed(Array(bytes[..<cut])), case .success(let second) = m.feed(Array(bytes[cut...])) else {
                Issue.record("refused at \(cut)"); continue
            }
            let firstText = String(decoding: first, as: UTF8.self)
            // What went out first is whole lines only: up to the last line break before the cut.
            let lineEnd = bytes[..<cut].lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0
            let whole = Array(bytes[..<lineEnd])
            #expect(first == (masker.mask(whole)?.bytes ?? whole), "cut at \(cut): \(firstText)")
            let all = firstText + String(decoding: second + ((try? m.finish().get()) ?? []), as: UTF8.self)
            #expect(all == "user a****@example.com signed in\nverified customer ssn ***-**-****\n", "cut at \(cut): \(all)")
        }
    }

    @Test func aLineWithNoEndInTheBoundIsRefused() {
        var m = StreamingBodyMasker(masker: masker, lineByLine: true)
        let long = [UInt8](repeating: UInt8(ascii: "a"), count: StreamingBodyMasker.maxHeld + 1)
        guard case .failure(let f) = m.feed(long) else { Issue.record("a line past the bound was not refused"); return }
        #expect(f.detail.contains("no line break in"))
    }
}
