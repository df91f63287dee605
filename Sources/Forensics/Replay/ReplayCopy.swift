import CaptureFormat

/// COPY in a recorded session, as `sessreplay` replays it: COPY … TO STDOUT is a read (its rows
/// come back as CopyData and are recorded as the gate records them); COPY … FROM STDIN is sent
/// the data the gate recorded, but only when that data is the data the client sent, in full.
/// A COPY to or from a server file or program is not replayed (it would touch the target's files).
public enum ReplayCopy {
    public enum Direction: Sendable, Equatable { case fromStdin, toStdout, server }

    /// From the statement's text (its normalized text's words, in any case and spacing).
    public static func direction(_ p: PostgresRequest) -> Direction {
        let words = (p.normalized.isEmpty ? p.text : p.normalized).uppercased()
            .split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" || $0 == ";" || $0 == "(" || $0 == ")" })
        for i in words.indices.dropLast() {
            if words[i] == "FROM" && words[i + 1] == "STDIN" { return .fromStdin }
            if words[i] == "TO" && words[i + 1] == "STDOUT" { return .toStdout }
        }
        return .server
    }

    /// The recorded data of a COPY FROM STDIN, one chunk per CopyData as sent, or why it cannot be
    /// re-sent. The gate records the data after the session's masks, the secrets pass and the
    /// value cap, and stops recording chunks past its row cap, with no per-chunk flag (format 1.4
    /// flags no COPY data): so it is replayed only when nothing says it was altered (no mask
    /// applied in the exchange, none of the markers the gate writes) and the recorded lines
    /// account for every row the COPY reported (`COPY n`, plus a header line).
    public static func data(_ x: Exchange, _ p: PostgresRequest) -> Result<[[UInt8]], SkipReason> {
        let words = " " + (p.normalized.isEmpty ? p.text : p.normalized).uppercased() + " "
        if words.contains("BINARY") {
            return .failure(.unsupported("binary COPY FROM STDIN: its recorded data cannot be checked to be complete"))
        }
        if !x.masks.isEmpty || !(x.decision?.masks.isEmpty ?? true) {
            return .failure(.withheld("masks were applied to the COPY's exchange: the recorded data may not be what was sent"))
        }
        let results = x.postgresResults
        guard let last = results.last, last.error == nil, last.commandTag.hasPrefix("COPY "),
              let rows = UInt64(last.commandTag.dropFirst(5)) else {
            return .failure(.unsupported("the recorded COPY FROM STDIN did not succeed (\(results.last?.error.map { $0.sqlState } ?? "no COPY tag")): its recorded data may be partial"))
        }
        let chunks = x.streamData.filter { $0.stream == .stdin }.map(\.data)
        var lines: UInt64 = 0
        for c in chunks {
            let text = String(decoding: c, as: UTF8.self)
            if let m = RecordedWithholding.valueMarkers.first(where: { text.contains($0) }) {
                return .failure(.withheld("the recorded COPY data holds \"\(m)\" (masked, withheld or cut at the gate)"))
            }
            lines += UInt64(c.lazy.filter { $0 == 10 }.count)
        }
        // A client of protocol 2's habit may end the data with a \. line: not a row.
        if let end = chunks.last, end.count >= 3, end.suffix(3).elementsEqual([92, 46, 10]) { lines -= 1 }
        let expected = rows + (words.contains(" HEADER") ? 1 : 0)
        guard lines == expected else {
            return .failure(.unsupported("the recorded COPY data holds \(lines) line(s) where the COPY took \(rows) row(s): cut at the gate's record cap, or rows with line breaks inside"))
        }
        return .success(chunks)
    }
}
