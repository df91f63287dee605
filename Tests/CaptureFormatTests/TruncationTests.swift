import CaptureFormat
import Foundation
import TestSupport
import Testing

/// A capture cut off at any byte is readable up to its last complete block, and says where it was cut.
@Suite struct TruncationTests {
    struct Fixture {
        let data: Data
        let capture: CaptureFile
        let blocks: [BlockInfo]
        let eventsByBlock: [[Event]]
        let footerOffset: Int
        let footerEnd: Int
    }

    static func fixture() throws -> Fixture {
        try withTempDir { dir in
            let path = dir.path("multi.sesscap")
            var g = SeededRNG(seed: 0x7011_6A7E)
            let events = (0..<48).map { i in
                i % 9 == 0 ? sampleEvents()[i % sampleEvents().count] : RandomEvents.event(&g)
            }
            try writeCapture(events, to: path, key: SigningKey(), options: testOptions(blockTargetBytes: 300))
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let capture = try CaptureFile(path: path, data: data)
            let footerOffset = Int(try #require(capture.trailer).footerOffset)
            return Fixture(data: data, capture: capture, blocks: capture.blocks,
                           eventsByBlock: try capture.blocks.map { try capture.events(in: $0) },
                           footerOffset: footerOffset, footerEnd: data.count - 152)
        }
    }

    @Test func cutAtEveryByte() throws {
        let f = try Self.fixture()
        #expect(f.blocks.count >= 10, "fixture should span many blocks")
        #expect(f.capture.verify().isValid)
        let headerLength = f.capture.headerLength

        for cut in 0..<f.data.count {
            let slice = f.data.prefix(cut)
            let capture: CaptureFile
            do {
                capture = try CaptureFile(path: "cut-\(cut)", data: slice)
            } catch {
                // Only a cut inside the file header may make the file unreadable, and it must say "truncated".
                if cut >= headerLength || error.kind != .truncated {
                    Issue.record("cut at \(cut) (header is \(headerLength) bytes): \(error.kind) \(error)")
                }
                continue
            }
            if cut < headerLength {
                Issue.record("cut at \(cut), inside the \(headerLength)-byte header, opened")
                continue
            }
            // Scanned blocks have no exchange spans: those live in the footer's index only.
            let expected = withoutSpans(f.blocks.filter { Int($0.offset) + Int($0.length) <= cut })
            let completeLength = cut >= f.footerEnd ? f.footerEnd : (expected.last.map { Int($0.offset) + Int($0.length) } ?? headerLength)
            guard case .unsealed(let complete, let fileLength, let reason) = capture.state else {
                Issue.record("cut at \(cut): state \(capture.state)")
                continue
            }
            if capture.blocks != expected {
                Issue.record("cut at \(cut): \(capture.blocks.count) blocks, expected \(expected.count)")
                continue
            }
            if complete != completeLength || fileLength != cut {
                Issue.record("cut at \(cut): completeLength \(complete) (expected \(completeLength)), fileLength \(fileLength)")
            }
            if !reason.contains("byte \(completeLength)") {
                Issue.record("cut at \(cut): reason does not say where: \(reason)")
            }
            #expect(capture.trailer == nil)
            // The footer is found only when it is whole (the cut is in the trailer).
            if (capture.footer != nil) != (cut >= f.footerEnd) {
                Issue.record("cut at \(cut): footer \(capture.footer == nil ? "missing" : "present")")
            }
            if cut >= f.footerOffset {
                // Inside the footer or trailer: every event block is there.
                #expect(capture.blocks.count == f.blocks.count)
                #expect(capture.blocks.allSatisfy { $0.type == .events })
            }
            for (i, block) in capture.blocks.enumerated() {
                do {
                    let events = try capture.events(in: block)
                    if events != f.eventsByBlock[i] { Issue.record("cut at \(cut): block \(i) events differ") }
                } catch {
                    Issue.record("cut at \(cut): block \(i) unreadable: \(error)")
                }
            }
        }
    }

    /// Verification of a cut file fails, names where, and never crashes (sampled: it hashes and checks signatures).
    @Test func verifyCutFiles() throws {
        let f = try Self.fixture()
        var cuts = Set(stride(from: f.capture.headerLength, to: f.data.count, by: 7))
        for start in f.blocks.map({ Int($0.offset) }) + [f.footerOffset, f.footerEnd] {
            for d in [0, 1, 8, 9, 63, 64, 65, -1, -8, -9] where start + d >= f.capture.headerLength && start + d < f.data.count {
                cuts.insert(start + d)
            }
        }
        for cut in cuts.sorted() {
            let capture = try CaptureFile(path: "cut", data: f.data.prefix(cut))
            let report = capture.verify()
            guard let problem = report.firstProblem else {
                Issue.record("cut at \(cut) verified as valid")
                continue
            }
            if let i = f.blocks.firstIndex(where: { Int($0.offset) < cut && cut < Int($0.offset) + Int($0.length) }) {
                #expect(problem.location == "block \(i)", "cut at \(cut): \(problem)")
            } else if cut > f.footerOffset + 8 && cut < f.footerEnd {
                #expect(problem.location == "footer", "cut at \(cut): \(problem)")
            } else if cut > f.footerOffset && cut < f.footerEnd {
                // Too little of the footer is left to show its type byte: it is the next block.
                #expect(problem.location == "block \(f.blocks.count)", "cut at \(cut): \(problem)")
            } else {
                // At a block boundary, or inside the trailer.
                #expect(problem.location == "trailer", "cut at \(cut): \(problem)")
            }
            #expect(report.blocksChecked == capture.blocks.count)
            #expect(!report.sealed)
        }
    }

    @Test func tinyAndEmptyFiles() {
        for n in 0..<CaptureLayout.magic.count {
            #expect(throws: CaptureError.self) { try open(bytes: Array(CaptureLayout.magic.prefix(n))) }
        }
        #expect {
            try open(bytes: Array("PGDMP not a capture at all".utf8))
        } throws: { ($0 as? CaptureError)?.kind == .notCapture }
        // A text-mode transfer turned CR LF into LF.
        var damaged = CaptureLayout.magic
        damaged.remove(at: 4)
        damaged += [UInt8](repeating: 0, count: 40)
        #expect {
            try open(bytes: damaged)
        } throws: { ($0 as? CaptureError)?.kind == .notCapture }
    }
}
