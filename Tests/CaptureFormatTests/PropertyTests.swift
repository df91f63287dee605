import CaptureFormat
import Foundation
import PropertyBased
import Testing

/// Random events of every kind, random block sizes: what is written is what is read.
@Suite struct PropertyTests {
    static let eventGen = Generator<Event, Shrink.None<Event>> { rng in RandomEvents.event(&rng) }
    static let eventsGen = eventGen.array(of: 0...60)
    /// 64 bytes to 64 KiB, log-uniform, so one-event blocks, many-event blocks and single-block files all occur.
    static let blockTargetGen = Gen.int(in: 0...1000).map { Int((64 * pow(1024.0, Double($0) / 1000)).rounded()) }

    @Test func randomEventsWireRoundTrip() async throws {
        await propertyCheck(count: 1000, input: Self.eventGen) { (event) throws in
            #expect(try wireRoundTrip(event) == event)
        }
    }

    @Test func randomCapturesRoundTrip() async throws {
        let dir = try TempDir()
        defer { dir.remove() }
        await propertyCheck(count: 100, input: Self.eventsGen, Self.blockTargetGen) { events, target in
            let path = dir.path("\(UUID().uuidString).sesscap")
            defer { try? FileManager.default.removeItem(atPath: path) }
            let key = SigningKey()
            var options = testOptions(blockTargetBytes: target)
            options.compressionLevel = Int32(target % 9 + 1)
            if target % 5 == 0 { options.codec = .none }
            let written = try writeCapture(events, to: path, key: key, options: options)
            #expect(written.map(\.sequence) == (0..<UInt64(events.count)).map { $0 + 1 })
            #expect(written.map(\.payload) == events.map(\.payload))

            let capture = try CaptureFile(path: path)
            #expect(capture.state == .sealed(.cleanClose))
            let read = try allEvents(capture)
            #expect(read == written)
            let report = capture.verify(trustedKey: key.publicKey)
            #expect(report.isValid, "\(report.problems)")
            #expect(report.eventsChecked == UInt64(events.count))
            #expect(try capture.summary() == summaryOf(written))
            // Blocks: contiguous, ordered, and no block holds much more than the target (one event may overshoot).
            var expectedOffset = UInt64(capture.headerLength)
            var nextSequence: UInt64 = 1
            for block in capture.blocks {
                #expect(block.offset == expectedOffset)
                #expect(block.firstSequence == nextSequence)
                expectedOffset += UInt64(block.length)
                nextSequence = block.lastSequence + 1
            }
            #expect(nextSequence == UInt64(events.count) + 1)
        }
    }
}
