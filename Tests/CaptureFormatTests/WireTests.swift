import CaptureFormat
import Foundation
import TestSupport
import Testing

/// Malformed fields throw `WireError`; nothing crashes.
@Suite struct WireTests {
    func expectWireError(_ bytes: [UInt8], _ what: Comment, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: WireError.self, what, sourceLocation: sourceLocation) { try decodeEvent(bytes) }
    }

    @Test func varintEncoding() throws {
        for value: UInt64 in [0, 1, 127, 128, 300, 16_383, 16_384, UInt64(UInt32.max), UInt64.max - 1, UInt64.max] {
            var w = WireWriter()
            w.varint(value)
            let decoded = try w.bytes.withUnsafeBytes { buf in
                var r = WireReader(buf)
                let v = try r.varint()
                #expect(r.isAtEnd)
                return v
            }
            #expect(decoded == value)
        }
        var w = WireWriter()
        w.varint(UInt64.max)
        #expect(w.bytes.count == 10)
        // Signed values (zigzag) including the extremes.
        for value: Int64 in [0, -1, 1, -64, 64, .min, .max] {
            let e = Event(monotonicNanos: 0, wallMicros: value, payload: .sessionEnd(SessionEnd(reason: "x")))
            #expect(try wireRoundTrip(e).wallMicros == value)
        }
    }

    @Test func truncatedVarint() {
        expectWireError([0x08, 0x80], "varint cut after a continuation byte")
        expectWireError([0x08], "field key without a value")
        expectWireError([0x80], "key varint cut")
        expectWireError([0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], "varint longer than 10 bytes")
        expectWireError([0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02], "varint over 64 bits")
        #expect(throws: WireError.self) { try Decision(decoding: [0x08, 0x80, 0x80]) }
    }

    @Test func lengthPastTheEnd() {
        // kind = 9 (annotation), then a body that claims 5 bytes but has 1.
        expectWireError([0x28, 0x09, 0x32, 0x05, 0x0A], "event body")
        // Inside the body: a string field claiming more than the body holds.
        expectWireError([0x28, 0x09, 0x32, 0x03, 0x0A, 0x09, 0x41], "nested string")
        #expect(throws: WireError.self) { try Decision(decoding: [0x12, 0x05, 0x41]) }
        #expect(throws: WireError.self) { try Decision(decoding: [0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) }
        // Unknown fields are bounds-checked as they are skipped.
        #expect(throws: WireError.self) { try Decision(decoding: [0x9A, 0x06, 0x04, 0x01]) }   // tag 99, length 4, 1 byte
        #expect(throws: WireError.self) { try Decision(decoding: [0x99, 0x06, 0x01, 0x02]) }   // tag 99 fixed64, 2 bytes
        #expect(throws: WireError.self) { try Decision(decoding: [0x9D, 0x06, 0x01]) }         // tag 99 fixed32, 1 byte
        // A packed row whose value runs past the end of the row.
        var w = WireWriter()
        w.message(2) { $0.varint(10); $0.append(raw: [1, 2]) }
        #expect(throws: WireError.self) { try PostgresResponse(decoding: w.bytes) }
    }

    @Test func wrongWireTypeForAKnownTag() {
        // Decision tag 1 (action, a varint) sent as length-delimited.
        #expect(throws: WireError.self) { try Decision(decoding: [0x0A, 0x00]) }
        // Decision tag 2 (policy, a string) sent as a varint.
        #expect(throws: WireError.self) { try Decision(decoding: [0x10, 0x01]) }
        // Event tag 6 (body) as a varint, and tag 5 (kind) as fixed32.
        expectWireError([0x28, 0x04, 0x30, 0x01], "body as varint")
        expectWireError([0x2D, 0x04, 0x00, 0x00, 0x00], "kind as fixed32")
        // Wire types 3, 4, 6 and 7 do not exist.
        for t: UInt8 in [3, 4, 6, 7] {
            expectWireError([0x28, 0x04, 0x38 | t], "wire type \(t)")
        }
        // Tag 0 is not a field.
        expectWireError([0x00, 0x01], "tag 0")
    }

    @Test func eventWithoutKind() {
        expectWireError([], "empty event")
        expectWireError([0x08, 0x01, 0x10, 0x02], "sequence and time but no kind")
        expectWireError([0x28, 0x00], "kind 0")
        expectWireError([0x28, 0x80, 0x02], "kind 256")
        expectWireError([0x28, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F], "huge kind")
        // Request and response bodies must name a protocol.
        expectWireError([0x28, 0x03], "request without a body")
        expectWireError([0x28, 0x06, 0x32, 0x00], "response with an empty body")
    }

    @Test func messagesDoNotReadPastTheirLength() throws {
        // An annotation body whose length covers only its first field: the next bytes belong to the envelope.
        var body = WireWriter()
        body.string(1, "p1")
        var w = WireWriter()
        w.uint(5, 9)
        w.bytes(6, body.bytes)
        w.uint(1, 4)  // sequence, after the body
        let e = try decodeEvent(w.bytes)
        #expect(e.sequence == 4)
        #expect(e.payload == .annotation(Annotation(promptID: "p1")))
    }

    /// Random bytes, and random damage to valid events: decoding throws a WireError or returns a value, never crashes.
    @Test func randomGarbageNeverCrashes() {
        var g = SeededRNG(seed: 0x6A7B)
        let valid: [[UInt8]] = sampleEvents().map { e in var w = WireWriter(); e.encode(to: &w); return w.bytes }
        var errors = 0
        for i in 0..<20_000 {
            var bytes: [UInt8]
            if i % 2 == 0 {
                bytes = (0..<Int.random(in: 0...64, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            } else {
                bytes = valid[i / 2 % valid.count]
                for _ in 0..<Int.random(in: 1...3, using: &g) where !bytes.isEmpty {
                    switch Int.random(in: 0..<3, using: &g) {
                    case 0: bytes[Int.random(in: 0..<bytes.count, using: &g)] ^= UInt8.random(in: 1...255, using: &g)
                    case 1: bytes.removeLast(Int.random(in: 1...bytes.count, using: &g))
                    default: bytes.insert(UInt8.random(in: 0...255, using: &g), at: Int.random(in: 0...bytes.count, using: &g))
                    }
                }
            }
            do {
                _ = try decodeEvent(bytes)
            } catch is WireError {
                errors += 1
            } catch {
                Issue.record("unexpected error type: \(error)")
            }
        }
        #expect(errors > 1000)
    }

    @Test func wireErrorSaysWhere() {
        do {
            _ = try Decision(decoding: [0x08, 0x01, 0x12, 0x09, 0x41])
            Issue.record("no error")
        } catch let e as WireError {
            #expect(e.offset == 4)
            #expect(e.description.contains("byte 4"))
        } catch {
            Issue.record("\(error)")
        }
    }
}
