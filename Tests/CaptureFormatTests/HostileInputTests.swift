import CaptureFormat
import Foundation
import Testing

/// Files whose CRCs are valid but whose contents lie (CRC32 is not a signature: anyone can recompute it).
/// Reading them gives errors or verification problems, never a crash or a huge allocation.
@Suite struct HostileInputTests {
    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// A block as the format lays it out (64-byte fixed header, no filter, payload, tail), with a correct CRC.
    static func block(type: UInt8, codec: UInt8 = 0, payload: [UInt8], rawLength: UInt32? = nil, eventCount: UInt32 = 0,
                      firstSequence: UInt64 = 0, lastSequence: UInt64 = 0) -> [UInt8] {
        let length = UInt32(64 + payload.count + 104)
        var b = Array("TGBK".utf8) + le(length) + [type, codec] + le(UInt16(0))
        b += le(rawLength ?? UInt32(payload.count)) + le(UInt32(payload.count)) + le(eventCount)
        b += le(firstSequence) + le(lastSequence) + le(Int64(0)) + le(Int64(0)) + le(UInt32(0)) + le(UInt16(0)) + [0, 0]
        #expect(b.count == 64)
        b += payload
        b += [UInt8](repeating: 0x11, count: 32) + [UInt8](repeating: 0x22, count: 64)  // chain hash, signature
        b += le(crc32(b)) + le(length)
        return b
    }

    static func trailer(footerOffset: UInt64) -> [UInt8] {
        var t = Array("TGTR".utf8) + le(UInt32(1)) + le(footerOffset)
        t += [UInt8](repeating: 0x33, count: 32 + 32 + 64)
        t += le(crc32(t)) + Array("TGEN".utf8)
        return t
    }

    static func header() throws -> [UInt8] {
        try withTempDir { dir in
            let path = dir.path("h.sesscap")
            try writeCapture([], to: path, key: SigningKey(), options: testOptions(), close: false)
            return try readBytes(path)
        }
    }

    @Test func footerIndexPointingAnywhere() throws {
        let header = try Self.header()
        let lies = [
            BlockInfo(offset: UInt64.max, length: UInt32.max, eventCount: 1, firstSequence: 1, lastSequence: 1),
            BlockInfo(offset: UInt64(Int.max), length: 100, eventCount: 1, firstSequence: 2, lastSequence: 2),
            BlockInfo(offset: 3, length: 200, eventCount: 1, firstSequence: 3, lastSequence: 3),
            BlockInfo(offset: UInt64(header.count), length: 10, eventCount: 1, firstSequence: 4, lastSequence: UInt64.max),
        ]
        var summary = SessionSummary()
        summary.eventCount = UInt64.max
        let footer = Footer(sessionID: "sess-0001", blocks: lies, summary: summary, sealedMicros: 0, sealerPublicKey: [])
        let bytes = header + Self.block(type: 2, payload: footer.encoded()) + Self.trailer(footerOffset: UInt64(header.count))
        let capture = try open(bytes: bytes)
        #expect(capture.state.isSealed)
        #expect(capture.blocks == lies)
        for b in lies {
            #expect(throws: CaptureError.self) { try capture.events(in: b) }
        }
        #expect(throws: (any Error).self) { try capture.forEachEvent { _ in true } }
        let report = capture.verify()
        #expect(!report.isValid)
        #expect(report.problems.contains { $0.location == "footer" })
    }

    @Test func blockHeaderCountsThatLie() throws {
        let header = try Self.header()
        var w = WireWriter()
        let event = Event(sequence: 1, monotonicNanos: 0, wallMicros: 0, payload: .sessionEnd(SessionEnd(reason: "x")))
        var e = WireWriter()
        event.encode(to: &e)
        w.varint(UInt64(e.bytes.count))
        w.append(raw: e.bytes)
        // Four billion events claimed, one present; a sequence range ending at the maximum.
        let lying = Self.block(type: 1, payload: w.bytes, eventCount: UInt32.max, firstSequence: UInt64.max, lastSequence: UInt64.max)
        let capture = try open(bytes: header + lying)
        #expect(capture.blocks.count == 1)
        #expect(try capture.events(in: capture.blocks[0]) == [event])
        let report = capture.verify()
        #expect(report.firstProblem?.location == "block 0")

        // A payload that is not events: sequence continuity must not trap on the header's maximum sequence.
        let garbage = Self.block(type: 1, payload: [0xFF, 0xFF, 0xFF], eventCount: 1, firstSequence: UInt64.max, lastSequence: UInt64.max)
        let second = Self.block(type: 1, payload: w.bytes, eventCount: 1, firstSequence: 1, lastSequence: 1)
        let c2 = try open(bytes: header + garbage + second)
        #expect(c2.blocks.count == 2)
        #expect(throws: CaptureError.self) { try c2.events(in: c2.blocks[0]) }
        let r2 = c2.verify()
        #expect(r2.firstProblem?.location == "block 0")
        #expect(r2.problems.contains { $0.location == "block 1" })

        // A zlib block that claims a raw length its data does not have.
        let zlibLie = Self.block(type: 1, codec: 1, payload: [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01], rawLength: 1000,
                                 eventCount: 1, firstSequence: 1, lastSequence: 1)
        let c3 = try open(bytes: header + zlibLie)
        #expect(throws: CaptureError.self) { try c3.events(in: c3.blocks[0]) }
        #expect(c3.verify().firstProblem?.location == "block 0")
    }

    @Test func trailerPointingOutsideTheFile() throws {
        let header = try Self.header()
        for offset: UInt64 in [0, 5, UInt64(header.count) + 1, UInt64(Int.max), UInt64.max] {
            let capture = try open(bytes: header + Self.trailer(footerOffset: offset))
            #expect(!capture.state.isSealed)
            #expect(capture.footerProblem != nil)
            #expect(!capture.verify().isValid)
        }
    }
}
