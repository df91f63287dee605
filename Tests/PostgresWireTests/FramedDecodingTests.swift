import NIOCore
import PostgresWire
import Testing

/// The relay decodes in its own handler: every message must come out with exactly the bytes it
/// arrived in, whatever the split of the input into reads.
@Suite("Framed decoding: messages with their frames, for every split")
struct FramedDecodingTests {
    static func encoded(_ messages: [PostgresBackendMessage]) throws -> [[UInt8]] {
        try messages.map { m in
            var b = ByteBuffer()
            try m.encode(into: &b)
            return Array(b.readableBytesView)
        }
    }

    @Test func backendFramesAreTheBytesAsSentForEverySplit() throws {
        let messages = RoundTripTests.backendMessages.filter { if case .authentication = $0 { return false } else { return true } }
        let frames = try Self.encoded(messages)
        let stream = frames.flatMap { $0 }
        // Two-way splits at every byte, and a run of one-byte reads.
        for cut in 0...stream.count {
            var decoding = FramedDecoding(PostgresBackendDecoder())
            var got: [(PostgresBackendMessage, [UInt8])] = []
            for part in [Array(stream[..<cut]), Array(stream[cut...])] {
                decoding.append(ByteBuffer(bytes: part))
                while let (m, f) = try decoding.next() { got.append((m, Array(f.readableBytesView))) }
            }
            #expect(got.map(\.0) == messages, "split at \(cut)")
            #expect(got.map(\.1) == frames, "split at \(cut)")
            #expect(decoding.bufferedBytes == 0)
        }
        var decoding = FramedDecoding(PostgresBackendDecoder())
        var count = 0
        for byte in stream {
            decoding.append(ByteBuffer(bytes: [byte]))
            while let (_, f) = try decoding.next() {
                #expect(Array(f.readableBytesView) == frames[count])
                count += 1
            }
        }
        #expect(count == messages.count)
    }

    @Test func frontendStartupThenTypedMessages() throws {
        var startup = ByteBuffer()
        try PostgresFrontendMessage.startup(.init(parameters: [("user", "u")])).encode(into: &startup)
        var typed = ByteBuffer()
        for m in RoundTripTests.typedFrontendMessages { try m.encode(into: &typed) }
        let stream = Array(startup.readableBytesView) + Array(typed.readableBytesView)
        for cut in stride(from: 0, through: stream.count, by: 7) {
            var decoding = FramedDecoding(PostgresFrontendDecoder())
            var frames: [UInt8] = []
            var messages: [PostgresFrontendMessage] = []
            for part in [Array(stream[..<cut]), Array(stream[cut...])] {
                decoding.append(ByteBuffer(bytes: part))
                while let (m, f) = try decoding.next() { messages.append(m); frames += Array(f.readableBytesView) }
            }
            #expect(frames == stream, "split at \(cut)")
            #expect(messages.count == 1 + RoundTripTests.typedFrontendMessages.count)
        }
    }

    @Test func anIncompleteMessageAtTheEndIsReported() throws {
        var decoding = FramedDecoding(PostgresFrontendDecoder(phase: .typed))
        decoding.append(ByteBuffer(bytes: [UInt8(ascii: "Q"), 0, 0, 0, 20, UInt8(ascii: "S")]))
        #expect(try decoding.next() == nil)
        #expect(decoding.bufferedBytes == 6)
        #expect(throws: PostgresWireError.self) { _ = try decoding.last() }
    }
}
