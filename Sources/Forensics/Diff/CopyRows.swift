import CaptureFormat

/// COPY … TO STDOUT's rows, compared as rows: the CopyData the gate (or a replay) recorded, one
/// line per row (text and CSV as the server writes them), in order when the statement has ORDER BY,
/// else as multisets.
extension ExchangeComparer {
    func compareCopyOut(_ a: Exchange, _ b: Exchange, add: (DifferenceKind, String, [String], [String]) -> Void, notCompared: inout Int) {
        let rowsA = Self.copyRows(a), rowsB = Self.copyRows(b)
        if rowsA.isEmpty && rowsB.isEmpty { return }
        // One side kept no data (its results were masked, or the replay withheld them): not compared.
        if rowsA.isEmpty != rowsB.isEmpty, (rowsA.isEmpty ? a : b).postgresResults.contains(where: { $0.rowCount > 0 }) {
            notCompared += max(rowsA.count, rowsB.count)
            return
        }
        var removed: [String] = [], added: [String] = []
        var differing = 0
        let ordered = Self.isOrdered(a)
        if ordered {
            for i in 0..<max(rowsA.count, rowsB.count) {
                let ra = i < rowsA.count ? rowsA[i] : nil, rb = i < rowsB.count ? rowsB[i] : nil
                guard ra != rb else { continue }
                differing += 1
                if let ra, removed.count < maxRowLines { removed.append("copy row \(i + 1): " + Self.short(ra)) }
                if let rb, added.count < maxRowLines { added.append("copy row \(i + 1): " + Self.short(rb)) }
            }
        } else {
            var counts: [String: Int] = [:]
            for r in rowsA { counts[r, default: 0] += 1 }
            var onlyB: [String] = []
            for r in rowsB { if let n = counts[r], n > 0 { counts[r] = n - 1 } else { onlyB.append(r) } }
            let onlyA = rowsA.filter { r in
                guard let n = counts[r], n > 0 else { return false }
                counts[r] = n - 1
                return true
            }
            differing = max(onlyA.count, onlyB.count)
            removed = onlyA.prefix(maxRowLines).map { "copy row: " + Self.short($0) }
            added = onlyB.prefix(maxRowLines).map { "copy row: " + Self.short($0) }
        }
        guard differing > 0 else { return }
        add(.values, "\(differing == 1 ? "1 COPY row differs" : "\(differing) COPY rows differ")"
            + (ordered ? " (in order: ORDER BY)" : " (order ignored: no ORDER BY)"), removed, added)
    }

    /// The COPY TO STDOUT data as lines (a row per line; the last line's break dropped).
    static func copyRows(_ x: Exchange) -> [String] {
        var data: [UInt8] = []
        for c in x.streamData where c.stream == .stdout { data += c.data }
        guard !data.isEmpty else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast(data.last == 10 ? 1 : 0).map(String.init)
    }
}
