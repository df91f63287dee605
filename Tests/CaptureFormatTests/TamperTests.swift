import CaptureFormat
import Foundation
import TestSupport
import Testing

/// Changing, removing or reordering any byte is detected, and located.
@Suite struct TamperTests {
    struct Sealed {
        let bytes: [UInt8]
        let capture: CaptureFile
        let key: SigningKey
        var footerOffset: Int { Int(capture.trailer!.footerOffset) }
        var trailerOffset: Int { bytes.count - CaptureLayout.trailerSize }

        /// The region a byte offset belongs to, as the verifier names it.
        func region(of offset: Int) -> String {
            if offset < capture.headerLength { return "header" }
            if offset >= trailerOffset { return "trailer" }
            if offset >= footerOffset { return "footer" }
            let i = capture.blocks.firstIndex { Int($0.offset) <= offset && offset < Int($0.offset) + Int($0.length) }!
            return "block \(i)"
        }
    }

    /// A fixed key: Ed25519 signatures are deterministic, so the file (and where each flip lands) is the same every run.
    static let fixedKey = try! SigningKey(seed: [UInt8](repeating: 7, count: 32))

    static func sealed(key: SigningKey = fixedKey, sessionID: String = "sess-0001", seed: UInt64 = 0xF11F,
                       count: Int = 40) throws -> Sealed {
        try withTempDir { dir in
            let path = dir.path("sealed.sesscap")
            var g = SeededRNG(seed: seed)
            let events = sampleEvents() + (0..<count).map { _ in RandomEvents.event(&g) }
            try writeCapture(events, to: path, key: key, options: testOptions(blockTargetBytes: 600), header: sampleHeader(sessionID))
            let bytes = try readBytes(path)
            return Sealed(bytes: bytes, capture: try open(bytes: bytes), key: key)
        }
    }

    @Test func thousandSingleByteFlips() throws {
        let s = try Self.sealed()
        #expect(s.capture.blocks.count >= 8)
        #expect(s.capture.verify().isValid)
        var g = SeededRNG(seed: 0xB17F_11B5)
        var seen: Set<String> = []
        for _ in 0..<1000 {
            let at = Int.random(in: 0..<s.bytes.count, using: &g)
            let mask = UInt8.random(in: 1...255, using: &g)
            var bytes = s.bytes
            bytes[at] ^= mask
            let expected = s.region(of: at)
            seen.insert(expected.hasPrefix("block") ? "block" : expected)
            let capture: CaptureFile
            do {
                capture = try open(bytes: bytes)
            } catch {
                // Refusing to open is acceptable only for damage to the file header, and it must point into it.
                if expected != "header" { Issue.record("flip at \(at) (\(expected)) ^\(mask): open threw \(error)") }
                if let o = error.offset, o >= s.capture.headerLength {
                    Issue.record("flip at \(at) in the header: error offset \(o) is outside it")
                }
                continue
            }
            let report = capture.verify()
            guard let first = report.firstProblem else {
                Issue.record("flip at \(at) (\(expected)) ^\(mask) not detected")
                continue
            }
            if first.location != expected {
                Issue.record("flip at \(at) ^\(mask): expected \(expected), first problem \(first)")
            }
        }
        #expect(seen == ["header", "block", "footer", "trailer"], "the flips should hit every region")
    }

    /// Flips at the structurally interesting bytes of every block (magic, length, type, codec, counts, filter,
    /// chain hash, signature, CRC, repeated length) and of the trailer, with every single-bit mask.
    @Test func flipsAtFramingFields() throws {
        let s = try Self.sealed(count: 10)
        var offsets: [Int] = []
        for b in s.capture.blocks + [BlockInfo(offset: UInt64(s.footerOffset), length: UInt32(s.trailerOffset - s.footerOffset))] {
            let o = Int(b.offset), end = o + Int(b.length)
            offsets += [o, o + 3, o + 4, o + 5, o + 7, o + 8, o + 9, o + 12, o + 16, o + 20, o + 24, o + 56, o + 60, o + 62, o + 64,
                        end - 104, end - 72, end - 8, end - 5, end - 4, end - 1]
        }
        let t = s.trailerOffset
        offsets += [t, t + 3, t + 4, t + 8, t + 16, t + 48, t + 80, t + 144, t + 148, t + 151]
        for at in offsets {
            for bit in 0..<8 {
                var bytes = s.bytes
                bytes[at] ^= 1 << bit
                let expected = s.region(of: at)
                guard let capture = try? open(bytes: bytes) else {
                    Issue.record("flip at \(at) (\(expected)): open threw")
                    continue
                }
                let first = capture.verify().firstProblem
                #expect(first?.location == expected, "flip at \(at) bit \(bit): \(String(describing: first))")
            }
        }
        // Type byte 1 <-> 2 (event block <-> footer): still named by where the block is.
        for at in [Int(s.capture.blocks[2].offset) + 8, s.footerOffset + 8] {
            var bytes = s.bytes
            bytes[at] ^= 3
            let first = try open(bytes: bytes).verify().firstProblem
            #expect(first?.location == s.region(of: at), "type flip at \(at): \(String(describing: first))")
        }
    }

    /// A flip inside the file header is refused at open, with an offset inside the header.
    @Test func headerFlipsAreRefused() throws {
        let s = try Self.sealed(count: 2)
        for at in 0..<s.capture.headerLength {
            var bytes = s.bytes
            bytes[at] ^= 0x20
            #expect(throws: CaptureError.self, "flip at \(at)") { try open(bytes: bytes) }
        }
    }

    @Test func removedBlockIsNamed() throws {
        let s = try Self.sealed()
        let b = s.capture.blocks[2]
        var bytes = s.bytes
        bytes.removeSubrange(Int(b.offset)..<Int(b.offset) + Int(b.length))
        let capture = try open(bytes: bytes)
        let report = capture.verify()
        #expect(!report.isValid)
        #expect(report.firstProblem?.location == "block 2", "\(report.problems)")
        #expect(report.problems.contains { $0.location == "block 2" && $0.message.contains("chain") })
        #expect(report.problems.contains { $0.message.contains("sequence") })
    }

    @Test func swappedBlocksAreNamed() throws {
        let s = try Self.sealed()
        let b1 = s.capture.blocks[1], b2 = s.capture.blocks[2]
        let r1 = Int(b1.offset)..<Int(b1.offset) + Int(b1.length)
        let r2 = Int(b2.offset)..<Int(b2.offset) + Int(b2.length)
        var bytes = Array(s.bytes[..<r1.lowerBound])
        bytes += s.bytes[r2] + s.bytes[r1] + s.bytes[r2.upperBound...]
        #expect(bytes.count == s.bytes.count)
        let report = try open(bytes: bytes).verify()
        #expect(!report.isValid)
        #expect(report.firstProblem?.location == "block 1", "\(report.problems)")
        #expect(report.firstProblem?.message.contains("chain") == true)
    }

    @Test func footerAndTrailerFromAnotherFile() throws {
        let key = SigningKey()
        let a = try Self.sealed(key: key, sessionID: "sess-A", seed: 1)
        let b = try Self.sealed(key: key, sessionID: "sess-B", seed: 2)
        // Two files with different sessions: the footer (and its chain) belong to the other one.
        let spliced = Array(a.bytes[..<a.footerOffset]) + Array(b.bytes[b.footerOffset...])
        let capture = try open(bytes: spliced)
        let report = capture.verify()
        #expect(!report.isValid)
        #expect(report.firstProblem?.location == "footer", "\(report.problems)")
        #expect(report.problems.contains { $0.location == "footer" && $0.message.contains("chain") })

        // Identical events, only the session id differs: the header starts the chain, so the footer is still foreign.
        let c = try Self.sealed(key: key, sessionID: "sess-C", seed: 1)
        let d = try Self.sealed(key: key, sessionID: "sess-D", seed: 1)
        let spliced2 = Array(c.bytes[..<c.footerOffset]) + Array(d.bytes[d.footerOffset...])
        let report2 = try open(bytes: spliced2).verify()
        #expect(!report2.isValid)
        #expect(report2.firstProblem?.location == "footer", "\(report2.problems)")
    }

    @Test func trailingGarbageAndMissingTrailer() throws {
        let s = try Self.sealed(count: 5)
        let extra = try open(bytes: s.bytes + [0, 1, 2]).verify()
        #expect(!extra.isValid)
        #expect(extra.firstProblem?.location == "trailer", "\(extra.problems)")

        let noTrailer = try open(bytes: Array(s.bytes.dropLast(CaptureLayout.trailerSize)))
        #expect(!noTrailer.state.isSealed)
        let r = noTrailer.verify()
        #expect(r.firstProblem?.location == "trailer")
    }

    @Test func trustedKey() throws {
        let s = try Self.sealed(count: 5)
        let good = s.capture.verify(trustedKey: s.key.publicKey)
        #expect(good.isValid, "\(good.problems)")
        #expect(good.keyPinned)
        #expect(good.signerKeyID == s.key.keyID)
        #expect(good.sealerKeyID == s.key.keyID)

        let other = SigningKey()
        let bad = s.capture.verify(trustedKey: other.publicKey)
        #expect(!bad.isValid)
        #expect(bad.keyPinned)
        #expect(bad.firstProblem?.location == "header")
        #expect(bad.firstProblem?.message.contains(other.keyID) == true)

        let unpinned = s.capture.verify()
        #expect(unpinned.isValid && !unpinned.keyPinned)
    }

    /// A file re-signed end to end with another key verifies on its own, but not against the trusted key.
    @Test func resignedFileFailsPinning() throws {
        let original = SigningKey(), forger = SigningKey()
        let a = try Self.sealed(key: original, seed: 9, count: 5)
        let f = try Self.sealed(key: forger, seed: 9, count: 5)
        #expect(a.capture.verify(trustedKey: original.publicKey).isValid)
        #expect(f.capture.verify().isValid)
        #expect(!f.capture.verify(trustedKey: original.publicKey).isValid)
    }
}
