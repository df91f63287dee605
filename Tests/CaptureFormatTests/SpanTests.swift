@testable import CaptureFormat
import Foundation
import Testing

/// Exchange spans (format 1.1): how far each block's exchanges reach, recorded in the footer's
/// index so that a search can complete an exchange without decompressing blocks it cannot touch.
@Suite struct SpanTests {
    /// A request, a decision and a response of one exchange, at millisecond steps.
    static func exchange(_ id: UInt64, _ t: inout Int64, pad: Int = 0) -> [Event] {
        func next(_ p: Payload) -> Event { t += 1000; return Event(monotonicNanos: UInt64(t), wallMicros: t, exchangeID: id, payload: p) }
        return [
            next(.request(.postgres(PostgresRequest(text: "SELECT \(id) /*\(String(repeating: "x", count: pad))*/")))),
            next(.decision(Decision(action: .allow, policy: "p", rule: "r"))),
            next(.response(.postgres(PostgresResponse(rowCount: 1, commandTag: "SELECT 1")))),
        ]
    }

    @Test func builderCoversRangesIncludingGaps() {
        var b = ExchangeSpanBuilder()
        // Block 0: exchanges 1 and 2 start; block 1: exchange 2 goes on, 3 starts; block 2: only session end;
        // block 3: exchange 1 comes back (a late approval) — so blocks 0...3 are all covered by exchange 1.
        b.add(exchangeID: 0, block: 0)
        b.add(exchangeID: 1, block: 0)
        b.add(exchangeID: 2, block: 0)
        b.add(exchangeID: 2, block: 1)
        b.add(exchangeID: 3, block: 1)
        b.add(exchangeID: 0, block: 2)
        b.add(exchangeID: 1, block: 3)
        b.add(exchangeID: 4, block: 4)
        let spans = b.build(count: 5)
        #expect(spans == [ExchangeSpan(before: 0, after: 3), ExchangeSpan(before: 1, after: 2), ExchangeSpan(before: 2, after: 1),
                          ExchangeSpan(before: 3, after: 0), ExchangeSpan(before: 0, after: 0)])
    }

    /// Events of one exchange come together; the builder skips a repeat in the same block, and
    /// must still see the exchange reach a later block.
    @Test func repeatedEventsOfAnExchangeThenALaterBlock() {
        var b = ExchangeSpanBuilder()
        for (x, blk) in [(1, 0), (1, 0), (2, 0), (2, 1), (2, 1), (3, 1), (3, 2), (3, 2)] as [(UInt64, Int)] {
            b.add(exchangeID: x, block: blk)
        }
        #expect(b.build(count: 3) == [ExchangeSpan(before: 0, after: 1), ExchangeSpan(before: 1, after: 1), ExchangeSpan(before: 1, after: 0)])
    }

    @Test func forgettingOnlyWidens() {
        var exact = ExchangeSpanBuilder()
        var bounded = ExchangeSpanBuilder(maxTracked: 2)
        let events: [(UInt64, Int)] = [(1, 0), (2, 0), (3, 1), (4, 2), (5, 3), (6, 4), (2, 5), (7, 5), (7, 6)]
        for (x, blk) in events {
            exact.add(exchangeID: x, block: blk)
            bounded.add(exchangeID: x, block: blk)
        }
        let e = exact.build(count: 7), w = bounded.build(count: 7)
        #expect(zip(w, e).allSatisfy { $0.covers($1) })
        // Exchange 2 was forgotten and came back: its span is taken to reach back to block 0.
        #expect(w[5].before == 5)
        #expect(e[5].before == 5)
    }

    @Test func writerRecordsSpansThatVerify() throws {
        try withTempDir { dir in
            var t: Int64 = 1_790_000_000_000_000
            var events: [Event] = [Event(monotonicNanos: 0, wallMicros: t, payload: .sessionStart(SessionStart(clientAddress: "a")))]
            for id in 1...30 { events += Self.exchange(UInt64(id), &t, pad: 200) }
            let path = dir.path("spans.sesscap")
            let key = SigningKey()
            try writeCapture(events, to: path, key: key, options: testOptions(blockTargetBytes: 600))
            let capture = try CaptureFile(path: path)
            #expect(capture.minorVersion >= 1)  // spans came with 1.1
            #expect(capture.blocks.count > 5)
            #expect(capture.blocks.allSatisfy { $0.exchangeSpan != nil })
            // Exchanges straddle block boundaries: some span reaches a neighbour.
            #expect(capture.blocks.contains { ($0.exchangeSpan?.after ?? 0) > 0 })
            // Every exchange lies within the span of each block that holds one of its events.
            var blocksOf: [UInt64: [Int]] = [:]
            for (i, b) in capture.blocks.enumerated() {
                for e in try capture.events(in: b) where e.exchangeID != 0 { blocksOf[e.exchangeID, default: []].append(i) }
            }
            for (_, bs) in blocksOf {
                for j in bs {
                    let span = capture.blocks[j].exchangeSpan!
                    #expect(bs.min()! >= j - Int(span.before) && bs.max()! <= j + Int(span.after))
                }
            }
            #expect(capture.verify(trustedKey: key.publicKey).isValid)
        }
    }

    /// A footer whose spans promise less than the events need is reported (the file is re-sealed
    /// with a valid chain and signatures, so the span check is the only thing that can catch it).
    @Test func aSpanThatIsTooShortFailsVerification() throws {
        try withTempDir { dir in
            var t: Int64 = 1_790_000_000_000_000
            var events: [Event] = []
            for id in 1...20 { events += Self.exchange(UInt64(id), &t, pad: 200) }
            let path = dir.path("good.sesscap")
            let key = SigningKey()
            try writeCapture(events, to: path, key: key, options: testOptions(blockTargetBytes: 600))
            let capture = try CaptureFile(path: path)
            let victim = try #require(capture.blocks.firstIndex { ($0.exchangeSpan?.after ?? 0) > 0 })
            var footer = try #require(capture.footer)
            footer.blocks[victim].exchangeSpan = ExchangeSpan(before: footer.blocks[victim].exchangeSpan!.before, after: 0)

            let bytes = try readBytes(path)
            let footerOffset = Int(capture.trailer!.footerOffset)
            var sealer = BlockSealer(fileHeader: Array(bytes[0..<capture.headerLength]))
            let last = capture.blocks.last!
            let chainAt = last.payloadOffset + Int(last.storedLength)
            sealer.chainHash = Array(bytes[chainAt..<(chainAt + 32)])
            let resealed = Array(bytes[0..<footerOffset])
                + sealFooter(footer, at: UInt64(footerOffset), sealer: &sealer, key: key, flags: .cleanClose, level: 6)
            let bad = try open(bytes: resealed)
            let report = bad.verify(trustedKey: key.publicKey)
            #expect(report.problems.count == 1, "\(report.problems)")
            #expect(report.firstProblem?.location == "footer")
            #expect(report.firstProblem?.message.contains("block index entry \(victim): exchange span") == true)

            // The untouched file verifies, and a 1.0 reader's view (no spans in the index) is unchanged.
            #expect(capture.verify(trustedKey: key.publicKey).isValid)
        }
    }

    /// Files written before 1.1 have no spans; they read and verify as before. The fixture is the
    /// analytics sample as capgen wrote it with format 1.0.
    @Test func formatOneZeroFilesHaveNoSpans() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/format-1.0.sesscap")
        let capture = try CaptureFile(path: fixture.path)
        #expect(capture.minorVersion == 0)
        #expect(capture.blocks.allSatisfy { $0.exchangeSpan == nil })
        #expect(capture.verify().isValid)
    }

    /// A 1.0 reader skips the span field: an index entry decodes the same with and without it.
    @Test func spanFieldIsSkippableByOlderReaders() throws {
        let entry = BlockInfo(offset: 100, length: 300, rawLength: 500, storedLength: 200, eventCount: 4,
                              firstSequence: 1, lastSequence: 4, firstMicros: 10, lastMicros: 20, kinds: 8,
                              filter: TermFilter(terms: ["stmt:select"]), exchangeSpan: ExchangeSpan(before: 2, after: 3))
        let encoded = entry.encoded()
        #expect(try BlockInfo(decoding: encoded) == entry)
        // Tag 15 is a length-delimited message, so a reader that does not know it steps over it:
        // cutting it out gives exactly the 1.0 encoding of the same entry.
        var old = entry
        old.exchangeSpan = nil
        let span = ExchangeSpan(before: 2, after: 3).encoded()
        let field: [UInt8] = [15 << 3 | 2, UInt8(span.count)] + span
        #expect(Array(encoded.suffix(field.count)) == field)
        #expect(Array(encoded.dropLast(field.count)) == old.encoded())
        #expect(try BlockInfo(decoding: old.encoded()).exchangeSpan == nil)
    }
}
