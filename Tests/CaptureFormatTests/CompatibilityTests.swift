import CaptureFormat
import Foundation
import Testing

/// What a newer writer may add: unknown fields are skipped, unknown compatible flags ignored,
/// unknown incompatible flags and major versions refused.
@Suite struct CompatibilityTests {
    /// Appends field `tag` with each wire type, as a newer writer would.
    static func extraFields(tag: UInt64 = 99) -> [(String, [UInt8])] {
        var varint = WireWriter()
        varint.uint(UInt32(tag), 300)
        var fixed64 = WireWriter()
        fixed64.varint(tag << 3 | 1)
        fixed64.append(raw: [1, 2, 3, 4, 5, 6, 7, 8])
        var lengthDelimited = WireWriter()
        lengthDelimited.bytes(UInt32(tag), Array("a newer field".utf8))
        var nested = WireWriter()
        nested.message(UInt32(tag)) { $0.string(1, "inner"); $0.uint(2, 5) }
        var fixed32 = WireWriter()
        fixed32.varint(tag << 3 | 5)
        fixed32.append(raw: [0xDE, 0xAD, 0xBE, 0xEF])
        var empty = WireWriter()
        empty.bytes(UInt32(tag), [])
        return [("varint", varint.bytes), ("fixed64", fixed64.bytes), ("length-delimited", lengthDelimited.bytes),
                ("nested message", nested.bytes), ("fixed32", fixed32.bytes), ("empty length-delimited", empty.bytes)]
    }

    @Test func unknownFieldsAreSkipped() throws {
        let decision = Decision(action: .review, policy: "copilot", rule: "rule-2", reason: "writes", masks: ["email"])
        let base = decision.encoded()
        var all: [UInt8] = []
        for (name, extra) in Self.extraFields() {
            all += extra
            // Appended, prepended, and in the middle of the known fields.
            #expect(try Decision(decoding: base + extra) == decision, "\(name) appended")
            #expect(try Decision(decoding: extra + base) == decision, "\(name) prepended")
            var w = WireWriter()
            w.uint(1, UInt64(Decision.Action.review.rawValue))
            w.append(raw: extra)
            w.string(2, "copilot"); w.string(3, "rule-2"); w.string(4, "writes"); w.strings(5, ["email"])
            #expect(try Decision(decoding: w.bytes) == decision, "\(name) in the middle")
        }
        #expect(try Decision(decoding: base + all) == decision)
        // A large unknown tag number is skipped as well.
        for (name, extra) in Self.extraFields(tag: 1 << 28) {
            #expect(try Decision(decoding: base + extra) == decision, "\(name) with a large tag")
        }
    }

    @Test func unknownFieldsInTheEnvelopeAndNestedMessages() throws {
        for event in sampleEvents() where event.payload.kind != nil {
            var w = WireWriter()
            event.encode(to: &w)
            for (name, extra) in Self.extraFields() {
                #expect(try decodeEvent(w.bytes + extra) == event, "\(name) in the envelope of \(event.payload.kind!)")
            }
        }
        // Inside a nested message: a PostgresRequest inside Request inside the event body.
        let request = PostgresRequest(text: "SELECT 1", path: .extended, parameters: [Parameter(text: "x"), Parameter(value: nil)])
        var body = WireWriter()
        body.message(1) { w in
            request.encode(to: &w)
            for (_, extra) in Self.extraFields() { w.append(raw: extra) }
        }
        for (_, extra) in Self.extraFields(tag: 17) { body.append(raw: extra) }
        var envelope = WireWriter()
        envelope.uint(1, 3)
        envelope.uint(5, UInt64(EventKind.request.rawValue))
        envelope.bytes(6, body.bytes)
        let decoded = try decodeEvent(envelope.bytes)
        #expect(decoded == Event(sequence: 3, monotonicNanos: 0, wallMicros: 0, payload: .request(.postgres(request))))
    }

    /// A session header field from a newer writer is skipped: the file opens and verifies.
    @Test func unknownHeaderFieldsAreSkipped() throws {
        var header = sampleHeader()
        header.signingKeyID = "k"
        var w = WireWriter()
        header.encode(to: &w)
        for (_, extra) in Self.extraFields(tag: 40) { w.append(raw: extra) }
        #expect(try SessionHeader(decoding: w.bytes) == header)
    }

    // MARK: - File header flags and versions

    static func patched(_ bytes: [UInt8], headerLength: Int, at offset: Int, u32: UInt32? = nil, u16: UInt16? = nil) -> [UInt8] {
        var b = bytes
        if let u32 { withUnsafeBytes(of: u32.littleEndian) { b.replaceSubrange(offset..<offset + 4, with: $0) } }
        if let u16 { withUnsafeBytes(of: u16.littleEndian) { b.replaceSubrange(offset..<offset + 2, with: $0) } }
        let crc = crc32(Array(b[0..<headerLength - 4]))
        withUnsafeBytes(of: crc.littleEndian) { b.replaceSubrange(headerLength - 4..<headerLength, with: $0) }
        return b
    }

    static func capture() throws -> ([UInt8], CaptureFile) {
        try withTempDir { dir in
            let path = dir.path("flags.sesscap")
            try writeCapture(Array(sampleEvents().prefix(5)), to: path, key: SigningKey(), options: testOptions())
            let bytes = try readBytes(path)
            return (bytes, try open(bytes: bytes))
        }
    }

    @Test func unknownIncompatibleFlagIsRefused() throws {
        let (bytes, capture) = try Self.capture()
        #expect(capture.compatibleFlags == 0)
        for flag: UInt32 in [1, 0x80, 0x8000_0000] {
            let b = Self.patched(bytes, headerLength: capture.headerLength, at: 16, u32: flag)
            #expect {
                try open(bytes: b)
            } throws: { error in
                guard let e = error as? CaptureError else { return false }
                return e.kind == .unsupported && e.message.contains("incompatible features") && e.offset == 16
            }
        }
    }

    @Test func unknownCompatibleFlagIsAccepted() throws {
        let (bytes, capture) = try Self.capture()
        let b = Self.patched(bytes, headerLength: capture.headerLength, at: 12, u32: 0x4000_0001)
        let patched = try open(bytes: b)
        #expect(patched.compatibleFlags == 0x4000_0001)
        #expect(patched.state == .sealed(.cleanClose))
        #expect(patched.header == capture.header)
        #expect(try allEvents(patched) == allEvents(capture))
        // The header starts the hash chain, so the change itself is still detected by verification.
        #expect(patched.verify().firstProblem?.location == "block 0")
    }

    @Test func majorVersionTwoIsRefused() throws {
        let (bytes, capture) = try Self.capture()
        #expect(capture.majorVersion == 1)
        let b = Self.patched(bytes, headerLength: capture.headerLength, at: 8, u16: 2)
        #expect {
            try open(bytes: b)
        } throws: { error in
            guard let e = error as? CaptureError else { return false }
            return e.kind == .unsupported && e.message.contains("version 2")
        }
        // A newer minor version is read.
        let minor = Self.patched(bytes, headerLength: capture.headerLength, at: 10, u16: 7)
        let m = try open(bytes: minor)
        #expect(m.minorVersion == 7)
        #expect(try allEvents(m) == allEvents(capture))
    }
}
