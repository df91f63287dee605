import CaptureFormat
import ProxyCore

/// What is recorded of the result being received (its columns, rows within the cap, notices) and
/// of the current exchange's COPY data. When a result opens and closes is the relay's decision
/// (`RelayStateMachine`); this only gathers it for the record.
struct ResultRecording {
    var columns: [Column] = []
    let maxRows: Int
    var rows: RowRecorder
    var notices: [CaptureFormat.PostgresNotice] = []
    /// The recorded values of the current result that are not as sent (format 1.4), by row.
    var valueFlags: [FlaggedValue] = []
    /// COPY chunks recorded for the current exchange: capped per exchange.
    var copyChunks = 0

    /// `maxRows`: rows recorded per result; the rest are counted and hashed.
    init(maxRows: Int) {
        self.maxRows = maxRows
        rows = RowRecorder(maxRows: maxRows)
    }

    /// A new exchange (its number is the session core's): COPY chunks are capped per exchange.
    mutating func exchangeStarted() {
        copyChunks = 0
    }

    mutating func beginResult(columns: [Column]) {
        self.columns = columns
        rows = RowRecorder(maxRows: maxRows)
        valueFlags = []
    }

    /// Flags the kept row `row`: the columns the session's masks changed where it was sent, and
    /// the values the record changed (`altered`, their `row` ignored), merged per column in order.
    mutating func flag(row: Int, maskedColumns: [Int], altered: [FlaggedValue]) {
        var merged = maskedColumns.map { FlaggedValue(row: row, column: $0, flags: .masked) }
        for a in altered {
            if let i = merged.firstIndex(where: { $0.column == a.column }) { merged[i].flags.formUnion(a.flags) }
            else { merged.append(FlaggedValue(row: row, column: a.column, flags: a.flags)) }
        }
        merged.sort { $0.column < $1.column }
        valueFlags.append(contentsOf: merged.filter { !$0.flags.isEmpty })
    }

    /// The recorded part of the current result; resets for the next one.
    mutating func takeResult() -> PostgresResponse {
        // Moved out, not copied: a copy retains every string and array the response holds.
        var response = PostgresResponse(cut: rows.cut)
        swap(&response.columns, &columns)
        swap(&response.notices, &notices)
        response.packedRows = rows.packedRows
        swap(&response.valueFlags, &valueFlags)
        rows = RowRecorder(maxRows: maxRows)
        return response
    }
}
