import CaptureFormat

/// One recorded value with what the gate did to it (format 1.4's flags; a capture written
/// before 1.4 has none, so its values read as unflagged even where a marker is in the text).
public struct RecordedValue: Sendable, Equatable, Hashable {
    /// As recorded (after masking); nil is SQL NULL.
    public var bytes: [UInt8]?
    public var flags: ValueFlags

    public init(_ bytes: [UInt8]?, flags: ValueFlags = []) { self.bytes = bytes; self.flags = flags }
}

extension PostgresResponse {
    /// The recorded rows with each value's flags.
    public var recordedValues: [[RecordedValue]] {
        var out: [[RecordedValue]] = []
        out.reserveCapacity(packedRows.count)
        var next = 0  // valueFlags are in row, column order
        for (r, row) in rows.enumerated() {
            var values = row.map { RecordedValue($0) }
            while next < valueFlags.count, valueFlags[next].row == r {
                let f = valueFlags[next]
                if f.column < values.count { values[f.column].flags.formUnion(f.flags) }
                next += 1
            }
            out.append(values)
        }
        return out
    }
}

extension Exchange {
    /// The recorded result rows with each value's flags, in order across the PostgreSQL responses.
    /// Empty when the assembler was told not to keep rows.
    public var recordedValues: [[RecordedValue]] { postgresResults.flatMap(\.recordedValues) }

    /// The request's parameters with their declared types, formats and flags (1.4).
    public var parameters: [Parameter] { postgres?.parameters ?? [] }

    /// Whether the request's statement text or any parameter was masked or withheld: such a
    /// request cannot be re-sent as it was.
    public var requestAltered: Bool {
        guard let p = postgres else { return false }
        return !p.textFlags.isEmpty || p.parameters.contains { !$0.flags.isEmpty }
    }
}
