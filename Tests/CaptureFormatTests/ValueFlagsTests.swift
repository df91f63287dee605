import CaptureFormat
import Foundation
import Testing

/// Format 1.4: parameter types and formats, and flags on what was masked, withheld or cut.
@Suite struct ValueFlagsTests {
    static let request = PostgresRequest(
        text: "SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $3", path: .extended,
        parameters: [Parameter(value: [0, 0, 0, 5], format: 1, typeOID: 23),
                     Parameter(value: Array("[REDACTED]".utf8), format: 0, typeOID: 25, flags: .withheld),
                     Parameter(value: nil, typeOID: 1043)],
        textFlags: [.masked])

    static let response = PostgresResponse(
        columns: [Column(name: "id", typeOID: 23), Column(name: "email", typeOID: 25), Column(name: "note", typeOID: 25)],
        rows: [[Array("1".utf8), Array("a****@x.org".utf8), Array("long…".utf8)], [Array("2".utf8), nil, Array("n".utf8)]],
        rowCount: 9, commandTag: "SELECT 9",
        error: PostgresNotice(severity: "ERROR", sqlState: "22P02", message: "tollgate: message withheld", flags: .withheld),
        cut: CutRows(rows: 7, bytes: 70, sha256: [UInt8](repeating: 1, count: 32)),
        valueFlags: [FlaggedValue(row: 0, column: 1, flags: .masked), FlaggedValue(row: 0, column: 2, flags: [.masked, .cut])])

    @Test func newFieldsRoundTrip() throws {
        let events = [
            Event(monotonicNanos: 1, wallMicros: 1, exchangeID: 1, payload: .request(.postgres(Self.request))),
            Event(monotonicNanos: 2, wallMicros: 2, exchangeID: 1, payload: .response(.postgres(Self.response))),
        ]
        for e in events { #expect(try wireRoundTrip(e) == e) }
        try withTempDir { dir in
            let path = dir.path("v14.sesscap")
            let written = try writeCapture(events, to: path, key: SigningKey(), options: testOptions())
            let capture = try CaptureFile(path: path)
            #expect(capture.minorVersion == 4)
            #expect(try allEvents(capture) == written)
            #expect(capture.verify().isValid)
            guard case .response(.postgres(let p)) = try allEvents(capture)[1].payload else { Issue.record("no response"); return }
            #expect(p.flags(row: 0, column: 1) == .masked)
            #expect(p.flags(row: 0, column: 2) == [.masked, .cut])
            #expect(p.flags(row: 0, column: 0).isEmpty)
            #expect(p.flags(row: 1, column: 1).isEmpty)
            #expect(p.error?.flags == .withheld)
        }
    }

    /// A reader that does not know 1.4 steps over its fields (new tags only): what it sees is the
    /// event without the flags, as a 1.3 writer would have recorded it.
    @Test func newFieldsAreNewTags() throws {
        var plain = Self.request
        plain.textFlags = []
        for i in plain.parameters.indices { plain.parameters[i].flags = [] }
        let stripped = try Self.strip(Self.request.encoded(), tags: [11], nested: [5: [4]])
        #expect(try PostgresRequest(decoding: stripped) == plain)
        var plainResponse = Self.response
        plainResponse.valueFlags = []
        plainResponse.error?.flags = []
        let strippedResponse = try Self.strip(Self.response.encoded(), tags: [9], nested: [5: [6]])
        #expect(try PostgresResponse(decoding: strippedResponse) == plainResponse)
    }

    /// Removes top-level fields `tags`, and fields `nested[tag]` inside the messages of field `tag`.
    static func strip(_ bytes: [UInt8], tags: Set<UInt64>, nested: [UInt64: Set<UInt64>]) throws -> [UInt8] {
        var out = WireWriter()
        var i = 0
        func varint() -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true { let b = bytes[i]; i += 1; v |= UInt64(b & 0x7f) << shift; if b < 0x80 { return v }; shift += 7 }
        }
        while i < bytes.count {
            let start = i
            let key = varint(), tag = key >> 3
            switch key & 7 {
            case 0: _ = varint()
            case 2:
                let n = Int(varint()), body = Array(bytes[i..<i + n])
                i += n
                if let inner = nested[tag] {
                    out.bytes(UInt32(tag), try strip(body, tags: inner, nested: [:]))
                    continue
                }
            default: throw StripError(offset: start)
            }
            if !tags.contains(tag) { out.append(raw: Array(bytes[start..<i])) }
        }
        return out.bytes
    }

    /// A flag naming a row the response does not hold is damage, not something to skip.
    @Test func flagOutsideTheRowsIsRefused() throws {
        var w = WireWriter()
        w.bytes(9, [5, 0, 1])  // row 5 of a response without rows
        #expect(throws: WireError.self) { try PostgresResponse(decoding: w.bytes) }
    }

    /// A 1.3 file (capgen's analytics sample as main's 1.3 writer wrote it) reads and verifies
    /// as before: its values carry no flags.
    @Test func formatOneThreeFilesStillRead() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let capture = try CaptureFile(path: fixtures.appendingPathComponent("format-1.3.sesscap").path)
        #expect(capture.minorVersion == 3)
        #expect(capture.verify().isValid)
        let events = try allEvents(capture)
        #expect(events.count > 100)
        var responses = 0
        for e in events {
            switch e.payload {
            case .request(.postgres(let p)):
                #expect(p.textFlags.isEmpty)
                #expect(p.parameters.allSatisfy { $0.flags.isEmpty })
            case .response(.postgres(let p)):
                responses += 1
                #expect(p.valueFlags.isEmpty)
            default: break
            }
        }
        #expect(responses > 10)
    }

    @Test func flagNames() {
        #expect(ValueFlags([.masked, .cut]).names == ["masked", "cut"])
        #expect(ValueFlags(rawValue: 2 | 16).names == ["withheld", "flag-16"])
    }
}

struct StripError: Error { var offset: Int }
