import CaptureFormat
import NIOCore
import PostgresWire

/// What the relay tracks to tie each result to its request: prepared statements and
/// portals (for the extended protocol), and the queue of exchanges awaiting results.
struct RelayState {
    struct Pending {
        var exchange: UInt64
        /// A simple Query (or function call): may produce several results; ends at ReadyForQuery.
        var simple: Bool
        /// The Sync (or Query) this belongs to: the server answers each with one ReadyForQuery.
        var sync: Int
        var started: NIODeadline
    }

    struct Portal {
        var statement: String
        var text: String
        var parameters: [Parameter]
    }

    var exchangeCounter: UInt64 = 0
    var statements: [String: String] = [:]
    var portals: [String: Portal] = [:]
    var pending: [Pending] = []
    var syncSequence = 0
    var readyForQueryCount = 0
    var skippingUntilSync = false
    var transactionStatus: PostgresBackendMessage.TransactionStatus = .idle
    var lastDenial = ""
    var copyChunks = 0

    // The result being received.
    var columns: [Column] = []
    var rows = RowRecorder(maxRows: 0)
    var notices: [CaptureFormat.PostgresNotice] = []

    mutating func nextExchange() -> UInt64 {
        exchangeCounter += 1
        copyChunks = 0
        return exchangeCounter
    }

    mutating func beginResult(columns: [Column], maxRows: Int) {
        self.columns = columns
        rows = RowRecorder(maxRows: maxRows)
    }

    mutating func addRow(_ row: Row, maxRows: Int) {
        if rows.maxRows == 0 && columns.isEmpty { rows = RowRecorder(maxRows: maxRows) }
        rows.add(row)
    }

    /// The recorded part of the current result; resets for the next one.
    mutating func takeResult() -> PostgresResponse {
        let response = PostgresResponse(columns: columns, rows: rows.rows, notices: notices, cut: rows.cut)
        columns = []
        rows = RowRecorder(maxRows: 0)
        notices = []
        return response
    }
}
