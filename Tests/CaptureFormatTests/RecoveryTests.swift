import CaptureFormat
import Foundation
import TestSupport
import Testing

/// A crashed writer's file is readable, and recovery seals a copy with exactly its complete blocks.
@Suite struct RecoveryTests {
    static func checkRecovered(_ out: String, from source: CaptureFile, expectedEvents: [Event], sealer: SigningKey,
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let recovered = try CaptureFile(path: out)
        #expect(recovered.state == .sealed(.recovered), sourceLocation: sourceLocation)
        #expect(try allEvents(recovered) == expectedEvents, sourceLocation: sourceLocation)
        // The kept blocks are the source's, byte for byte; the recovered index adds their exchange spans (1.1).
        #expect(withoutSpans(recovered.blocks) == withoutSpans(source.blocks.filter { b in expectedEvents.contains { $0.sequence == b.lastSequence } }),
                sourceLocation: sourceLocation)
        #expect(recovered.blocks.allSatisfy { $0.exchangeSpan != nil }, sourceLocation: sourceLocation)
        #expect(recovered.header == source.header, sourceLocation: sourceLocation)
        let report = recovered.verify()
        #expect(report.isValid, "\(report.problems)", sourceLocation: sourceLocation)
        #expect(report.recovered && report.sealed, sourceLocation: sourceLocation)
        #expect(report.sealerKeyID == sealer.keyID, sourceLocation: sourceLocation)
        #expect(report.signerKeyID == source.header.signingKeyID, sourceLocation: sourceLocation)
        // Pinned to the original writer's key, the event blocks still verify; the seal is the recoverer's.
        #expect(try recovered.summary() == summaryOf(expectedEvents), sourceLocation: sourceLocation)
        let info = try #require(recovered.footer?.recovery, sourceLocation: sourceLocation)
        let keptLength = source.blocks.last { b in expectedEvents.contains { $0.sequence == b.lastSequence } }
            .map { Int($0.offset) + Int($0.length) } ?? source.headerLength
        #expect(info.originalLength == UInt64(source.fileSize), sourceLocation: sourceLocation)
        #expect(info.keptLength == UInt64(keptLength), sourceLocation: sourceLocation)
        #expect(!info.reason.isEmpty, sourceLocation: sourceLocation)
        #expect(info.recoveredMicros > 0, sourceLocation: sourceLocation)
        #expect(try posixMode(out) == 0o600, sourceLocation: sourceLocation)
    }

    /// The writer dies (no close): what reached disk is the header and the sealed blocks.
    @Test func crashedWriter() throws {
        try withTempDir { dir in
            let path = dir.path("crashed.sesscap")
            let key = SigningKey()
            var flushed: [Event] = []
            do {
                let writer = try CaptureWriter(path: path, header: sampleHeader(), key: key,
                                               options: testOptions(blockTargetBytes: 500, durability: .perBlock))
                for e in sampleEvents() {
                    var n = e
                    n.sequence = try writer.append(e)
                    flushed.append(n)
                }
                try writer.flush()
                // These stay in the open block and are lost with the process.
                try writer.append(.sessionEnd(SessionEnd(reason: "lost")))
                try writer.append(.sessionEnd(SessionEnd(reason: "lost too")))
                // Dropping the writer closes the descriptor without sealing: the crash.
            }
            #expect(try posixMode(path) == 0o600)
            let crashed = try CaptureFile(path: path)
            guard case .unsealed(let complete, let length, let reason) = crashed.state else {
                Issue.record("state \(crashed.state)")
                return
            }
            #expect(complete == length)
            #expect(reason.contains("no footer"))
            #expect(try allEvents(crashed) == flushed)
            #expect(try crashed.summary() == summaryOf(flushed))
            let report = crashed.verify()
            #expect(!report.isValid)
            #expect(report.firstProblem?.location == "trailer")
            #expect(report.eventsChecked == UInt64(flushed.count))

            let out = dir.path("recovered.sesscap")
            let sealer = SigningKey()
            let result = try crashed.recover(to: out, sealer: sealer)
            #expect(result.blocksKept == crashed.blocks.count)
            #expect(result.eventsKept == UInt64(flushed.count))
            #expect(result.bytesDropped == 0)
            try Self.checkRecovered(out, from: crashed, expectedEvents: flushed, sealer: sealer)

            // A recovered file is sealed: recovering it again is refused, as is writing over an existing file.
            let again = try CaptureFile(path: out)
            #expect(throws: CaptureError.self) { try again.recover(to: dir.path("again.sesscap"), sealer: sealer) }
            #expect(throws: CaptureError.self) { try crashed.recover(to: out, sealer: sealer) }
        }
    }

    /// A sealed file cut in the middle of a block (a full disk, a partial copy).
    @Test func cutInTheMiddleOfABlock() throws {
        try withTempDir { dir in
            let path = dir.path("full.sesscap")
            let key = SigningKey()
            var g = SeededRNG(seed: 42)
            let events = sampleEvents() + (0..<20).map { _ in RandomEvents.event(&g) }
            let written = try writeCapture(events, to: path, key: key, options: testOptions(blockTargetBytes: 700))
            let full = try CaptureFile(path: path)
            #expect(full.blocks.count >= 5)
            for blockIndex in [0, 3, full.blocks.count - 1] {
                let b = full.blocks[blockIndex]
                for cut in [Int(b.offset) + 1, Int(b.offset) + 70, Int(b.offset) + Int(b.length) - 1] {
                    let cutPath = dir.path("cut-\(cut).sesscap")
                    try Data(try readBytes(path)[..<cut]).write(to: URL(fileURLWithPath: cutPath))
                    let cutFile = try CaptureFile(path: cutPath)
                    #expect(cutFile.blocks.count == blockIndex)
                    let expected = written.filter { $0.sequence < b.firstSequence }
                    let out = dir.path("rec-\(cut).sesscap")
                    let sealer = SigningKey()
                    let result = try cutFile.recover(to: out, sealer: sealer)
                    #expect(result.blocksKept == blockIndex)
                    #expect(result.bytesDropped == cut - Int(b.offset))
                    #expect(result.reason.contains("block \(blockIndex)"), "\(result.reason)")
                    try Self.checkRecovered(out, from: cutFile, expectedEvents: expected, sealer: sealer)
                    let info = try CaptureFile(path: out).footer!.recovery!
                    #expect(info.originalLength == UInt64(cut))
                    #expect(info.keptLength == b.offset)
                }
            }
            // Cut inside the footer and inside the trailer: all event blocks are kept, the old footer is dropped.
            let bytes = try readBytes(path)
            for cut in [Int(full.trailer!.footerOffset) + 10, bytes.count - 1] {
                let cutFile = try open(bytes: Array(bytes[..<cut]), path: "cut")
                let out = dir.path("tail-\(cut).sesscap")
                let sealer = SigningKey()
                let result = try cutFile.recover(to: out, sealer: sealer)
                #expect(result.blocksKept == full.blocks.count)
                try Self.checkRecovered(out, from: cutFile, expectedEvents: written, sealer: sealer)
            }
        }
    }

    /// A block damaged in the middle of an unsealed file: recovery keeps only the blocks before it.
    @Test func damagedBlockStopsRecovery() throws {
        try withTempDir { dir in
            let path = dir.path("d.sesscap")
            var g = SeededRNG(seed: 7)
            let events = (0..<30).map { _ in RandomEvents.event(&g) }
            let written = try writeCapture(events, to: path, key: SigningKey(), options: testOptions(blockTargetBytes: 500))
            let full = try CaptureFile(path: path)
            var bytes = try readBytes(path)
            bytes.removeLast(CaptureLayout.trailerSize + 1)  // unsealed
            let damaged = full.blocks[3]
            bytes[Int(damaged.offset) + 70] ^= 0x55        // inside block 3's payload
            let unsealed = try open(bytes: bytes, path: "damaged")
            let out = dir.path("r.sesscap")
            let sealer = SigningKey()
            let result = try unsealed.recover(to: out, sealer: sealer)
            #expect(result.blocksKept == 3)
            #expect(result.reason.contains("block 3"))
            let expected = written.filter { $0.sequence < damaged.firstSequence }
            let recovered = try CaptureFile(path: out)
            #expect(try allEvents(recovered) == expected)
            #expect(recovered.verify().isValid)
        }
    }

    @Test func emptyUnsealedFile() throws {
        try withTempDir { dir in
            let path = dir.path("header-only.sesscap")
            let writer = try CaptureWriter(path: path, header: sampleHeader(), key: SigningKey(), options: testOptions())
            _ = writer
            let capture = try CaptureFile(path: path)
            #expect(capture.blocks.isEmpty && !capture.state.isSealed)
            let out = dir.path("r.sesscap")
            let result = try capture.recover(to: out, sealer: SigningKey())
            #expect(result.blocksKept == 0 && result.eventsKept == 0)
            let recovered = try CaptureFile(path: out)
            #expect(recovered.state == .sealed(.recovered))
            #expect(recovered.verify().isValid)
        }
    }

    @Test func sealedFileIsNotRecovered() throws {
        try withTempDir { dir in
            let path = dir.path("sealed.sesscap")
            try writeCapture(sampleEvents(), to: path, key: SigningKey(), options: testOptions())
            let capture = try CaptureFile(path: path)
            let out = dir.path("out.sesscap")
            #expect(throws: CaptureError.self) { try capture.recover(to: out, sealer: SigningKey()) }
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }
}
