import CaptureFormat
@testable import Forensics
import Foundation
import TestSupport
import Testing

@Suite("integrity classes")
struct IntegrityTests {
    @Test func sealedCaptureIsClean() throws {
        let s = try Scratch()
        defer { s.remove() }
        let key = SigningKey()
        let events = try writeCapture(s.path("a.sesscap"), key: key, postgresExchanges(20))
        let capture = try CaptureFile(path: s.path("a.sesscap"))
        guard case .accepted(let i) = IntegrityCheck.check(capture, trustedKeys: [key.publicKey]) else {
            Issue.record("a sealed capture was refused")
            return
        }
        #expect(i.state == .clean)
        #expect(i.events == UInt64(events.count))
        #expect(i.lastSequence == UInt64(events.count))
        #expect(i.blocks == capture.blocks.count)
        #expect(i.keyPinned)
        #expect(i.completeLength == nil)
        #expect(i.sealerKeyId == key.keyID)
        // Pinned to another key: refused, naming the header.
        guard case .damaged(let problems) = IntegrityCheck.check(capture, trustedKeys: [SigningKey().publicKey]) else {
            Issue.record("a capture signed by an unpinned key was accepted")
            return
        }
        #expect(problems.first?.location == "header")
    }

    /// Every cut after the header is a truncation: accepted, with the cut where the complete blocks end.
    @Test func everyCutIsATruncation() throws {
        let s = try Scratch()
        defer { s.remove() }
        let key = SigningKey()
        try writeCapture(s.path("a.sesscap"), key: key, blockBytes: 300, postgresExchanges(8))
        let full = try Data(contentsOf: URL(fileURLWithPath: s.path("a.sesscap")))
        let sealed = try CaptureFile(path: s.path("a.sesscap"))
        var truncated = 0
        for cut in sealed.headerLength..<full.count {
            let capture = try CaptureFile(path: "cut", data: full.prefix(cut))
            switch IntegrityCheck.check(capture, trustedKeys: []) {
            case .accepted(let i):
                #expect(i.state == .truncated, "cut at \(cut)")
                guard case .unsealed(let complete, _, _) = capture.state else { Issue.record("cut at \(cut) reads as sealed"); continue }
                #expect(i.completeLength == UInt64(complete))
                #expect(i.fileLength == UInt64(cut))
                #expect(i.blocks == capture.blocks.count)
                #expect(i.lastSequence == UInt64(capture.blocks.last?.lastSequence ?? 0))
                truncated += 1
            case .damaged(let problems):
                Issue.record("cut at \(cut) refused as damage: \(problems)")
            }
        }
        #expect(truncated == full.count - sealed.headerLength)
    }

    /// Damage is never mistaken for a truncation: a flipped byte in a middle block of a cut file
    /// leaves later blocks in place, and the verifier reports more than the cut.
    @Test func damageIsNotTruncation() throws {
        let s = try Scratch()
        defer { s.remove() }
        let key = SigningKey()
        try writeCapture(s.path("a.sesscap"), key: key, blockBytes: 300, postgresExchanges(12))
        let full = try Data(contentsOf: URL(fileURLWithPath: s.path("a.sesscap")))
        let sealed = try CaptureFile(path: s.path("a.sesscap"))
        #expect(sealed.blocks.count >= 4)
        let target = sealed.blocks[1]
        for (name, bytes) in [("sealed", full), ("cut", full.prefix(Int(sealed.blocks[3].offset) + 20))] {
            for at in [Int(target.offset) + 70, target.payloadOffset + 5, Int(target.offset) + Int(target.length) - 6] {
                var flipped = Data(bytes)
                flipped[at] ^= 0x20
                let capture = try CaptureFile(path: name, data: flipped)
                guard case .damaged(let problems) = IntegrityCheck.check(capture, trustedKeys: []) else {
                    Issue.record("\(name): a flipped byte at \(at) was accepted")
                    continue
                }
                #expect(problems.contains { $0.location == "block 1" }, "\(name) at \(at): \(problems)")
            }
        }
    }

    @Test func recoveredCopyIsRecorded() throws {
        let s = try Scratch()
        defer { s.remove() }
        let key = SigningKey(), recoverer = SigningKey()
        try writeCapture(s.path("a.sesscap"), key: key, blockBytes: 300, postgresExchanges(8))
        let full = try Data(contentsOf: URL(fileURLWithPath: s.path("a.sesscap")))
        let sealed = try CaptureFile(path: s.path("a.sesscap"))
        try full.prefix(Int(sealed.blocks[2].offset) + 9).write(to: URL(fileURLWithPath: s.path("cut.sesscap")))
        _ = try CaptureFile(path: s.path("cut.sesscap")).recover(to: s.path("rec.sesscap"), sealer: recoverer)
        let rec = try CaptureFile(path: s.path("rec.sesscap"))
        guard case .accepted(let i) = IntegrityCheck.check(rec, trustedKeys: [key.publicKey]) else {
            Issue.record("a recovered copy was refused")
            return
        }
        #expect(i.state == .recovered)
        #expect(i.sealerKeyId == recoverer.keyID)
        #expect(i.signerKeyId == key.keyID)
        #expect(i.recovery?.keptLength == sealed.blocks[2].offset)
        #expect(i.blocks == 2)
    }

    @Test func differencesNameWhatChanged() {
        let declared = Integrity(state: .clean, blocks: 4, events: 40, lastSequence: 40, signerKeyId: "aa", sealerKeyId: "aa",
                                 keyPinned: false, fileLength: 1000)
        #expect(declared.differences(fromDeclared: declared).isEmpty)
        var pinned = declared
        pinned.keyPinned = true
        #expect(pinned.differences(fromDeclared: declared).isEmpty, "pinning depends on the run, not the file")
        var cut = declared
        cut.state = .truncated
        cut.completeLength = 800
        cut.cut = "block cut off"
        #expect(cut.differences(fromDeclared: declared).first?.contains("truncated at byte 800") == true)
        #expect(cut.differences(fromDeclared: declared).first?.contains("manifest declares a clean close") == true)
        var declaredCut = cut
        declaredCut.completeLength = 700
        #expect(cut.differences(fromDeclared: declaredCut).first?.contains("end at byte 800, the manifest declares 700") == true)
    }
}
