import Crypto

// Recording caps: one huge body or result must not fill a disk. What is cut is
// counted and hashed (SHA-256) so it can be proven later without being stored.

extension CappedBytes {
    /// `data` kept up to `cap` bytes; the rest counted and hashed.
    public init(capping data: [UInt8], at cap: Int) {
        guard data.count > cap else {
            self.init(data: data)
            return
        }
        self.init(data: Array(data[..<cap]), totalSize: UInt64(data.count),
                  cutSHA256: Array(SHA256.hash(data: data[cap...])))
    }
}

/// Collects result rows up to a cap; rows past it are only counted and hashed, as they stream.
/// The digest is over the cut rows in packed-row encoding, in order (docs/capture-format.md, CutRows).
public struct RowRecorder: Sendable {
    public let maxRows: Int
    /// Rows are kept while their packed bytes stay under this: one response must fit a block
    /// (and a writer's memory), however large its values.
    public let maxBytes: Int
    var keptBytes = 0
    /// The kept rows, packed (see `PackedRows`).
    public private(set) var packedRows = PackedRows()
    var cutRows: UInt64 = 0
    var cutBytes: UInt64 = 0
    /// Made at the first cut row: most results are never cut, and a hasher is not free to set up.
    var hasher: SHA256?
    /// A cut row's packed values, reused: past the cap rows stream by and are only hashed.
    var scratch = WireWriter(capacity: 0)

    public init(maxRows: Int, maxBytes: Int = 16 << 20) { self.maxRows = maxRows; self.maxBytes = maxBytes }

    public var rows: [Row] { packedRows.rows }
    /// True once the cap is reached: further rows are only counted and hashed.
    public var isFull: Bool { packedRows.count >= maxRows || keptBytes >= maxBytes }

    public mutating func add(_ row: Row) {
        add { w in
            PostgresResponse.packRow(row, into: &w)
            return row.reduce(0) { $0 + ($1?.count ?? 0) }
        }
    }

    /// One row: `pack` writes its packed values (`PostgresResponse.packRow` layout) and returns
    /// the total length of its values. A kept row is written straight into `packedRows`.
    public mutating func add(_ pack: (inout WireWriter) -> Int) {
        if !isFull {
            let start = packedRows.encoded.count
            var valueBytes = 0
            let packedLength = packedRows.append { valueBytes = pack(&$0) }
            if keptBytes + packedLength <= maxBytes {
                keptBytes += packedLength
                return
            }
            hashCut(packedRows.removeLast(from: start, packedLength: packedLength), valueBytes: valueBytes)
            return
        }
        scratch.reset()
        let valueBytes = pack(&scratch)
        hashCut(scratch.bytes, valueBytes: valueBytes)
    }

    /// A row past the cap: counted and hashed, not kept.
    mutating func hashCut(_ packed: [UInt8], valueBytes: Int) {
        keptBytes = maxBytes  // once one row is cut, the rest are too: the kept rows stay a prefix
        if hasher == nil { hasher = SHA256() }
        hasher!.update(data: packed)
        cutRows += 1
        cutBytes += UInt64(valueBytes)
    }

    /// What was cut, or nil when every row was kept.
    public var cut: CutRows? {
        guard cutRows > 0, let hasher else { return nil }
        return CutRows(rows: cutRows, bytes: cutBytes, sha256: Array(hasher.finalize()))
    }
}
