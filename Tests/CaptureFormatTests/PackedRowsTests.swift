import CaptureFormat
import Crypto
import Testing

/// A response's rows live in one buffer in their on-disk form; the file format must not change
/// with it, and the cap must cut exactly where it did when rows were kept one buffer each.
@Suite struct PackedRowsTests {
    /// Rows around the one-byte length boundary (127/128 bytes packed), NULLs and empty values.
    let rows: [Row] = [
        [Array("a".utf8), nil, []],             // packs to 4 bytes
        [Array(repeating: 0x62, count: 125)],  // 126: one-byte field length
        [Array(repeating: 0x63, count: 126)],  // 127: the longest with a one-byte field length
        [Array(repeating: 0x64, count: 127)],  // 129: two-byte value and field lengths
        [nil, nil],
        [Array(repeating: 0x65, count: 70_000)],
    ]

    @Test func encodedAsOneFieldPerRow() throws {
        var expected = WireWriter()
        for row in rows { expected.bytes(2, PostgresResponse.pack(row)) }
        let packed = PackedRows(rows)
        #expect(packed.encoded == expected.bytes)
        #expect(packed.count == rows.count)
        #expect(packed.rows == rows)
    }

    @Test func responseRoundTripKeepsEveryRow() throws {
        let response = PostgresResponse(columns: [Column(name: "v", typeOID: 25)], rows: rows, rowCount: 6, commandTag: "SELECT 6")
        var w = WireWriter()
        response.encode(to: &w)
        let decoded = try w.bytes.withUnsafeBytes { buf in
            var r = WireReader(buf)
            return try PostgresResponse(wire: &r)
        }
        #expect(decoded == response)
        #expect(decoded.rows == rows)
        var sizes: [UInt64] = []
        decoded.packedRows.forEach { sizes.append(PostgresResponse.valueBytes(ofPacked: $0)) }
        #expect(sizes == rows.map { UInt64($0.reduce(0) { $0 + ($1?.count ?? 0) }) })
    }

    @Test func aRowValueRunningPastItsRowIsRefused() {
        var w = WireWriter()
        w.bytes(2, [0x05, 0x61])  // says 4 bytes, has 1
        #expect(throws: WireError.self) {
            try w.bytes.withUnsafeBytes { buf in
                var r = WireReader(buf)
                _ = try PostgresResponse(wire: &r)
            }
        }
    }

    /// The row that does not fit is taken back out of the buffer and hashed, with every row after it.
    @Test func capByBytesCutsAtTheRowThatDoesNotFit() {
        var recorder = RowRecorder(maxRows: 100, maxBytes: 300)
        for row in rows { recorder.add(row) }
        // 4 + 126 + 127 = 257 bytes kept; the 129-byte row would pass 300.
        #expect(recorder.rows == Array(rows.prefix(3)))
        var hasher = SHA256()
        for row in rows.dropFirst(3) { hasher.update(data: PostgresResponse.pack(row)) }
        #expect(recorder.cut == CutRows(rows: 3, bytes: 127 + 70_000, sha256: Array(hasher.finalize())))
        #expect(recorder.isFull)
    }

    @Test func capByRowsHashesTheRest() {
        var recorder = RowRecorder(maxRows: 2)
        for row in rows { recorder.add(row) }
        #expect(recorder.rows == Array(rows.prefix(2)))
        #expect(recorder.packedRows.count == 2)
        var hasher = SHA256()
        for row in rows.dropFirst(2) { hasher.update(data: PostgresResponse.pack(row)) }
        #expect(recorder.cut?.sha256 == Array(hasher.finalize()))
        #expect(recorder.cut?.rows == 4)
    }
}
