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
    }

    /// The recorded part of the current result; resets for the next one.
    mutating func takeResult() -> PostgresResponse {
        // Moved out, not copied: a copy retains every string and array the response holds.
        var response = PostgresResponse(cut: rows.cut)
        swap(&response.columns, &columns)
        swap(&response.notices, &notices)
        response.packedRows = rows.packedRows
        rows = RowRecorder(maxRows: maxRows)
        return response
    }
}
