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
    let maxRows: Int
    var rows: RowRecorder
    var notices: [CaptureFormat.PostgresNotice] = []

    mutating func nextExchange() -> UInt64 {
        exchangeCounter += 1
        copyChunks = 0
        return exchangeCounter
    }

    /// `maxRows`: rows recorded per result; the rest are counted and hashed.
    init(maxRows: Int) {
        self.maxRows = maxRows
        rows = RowRecorder(maxRows: maxRows)
    }

    mutating func beginResult(columns: [Column]) {
        self.columns = columns
        rows = RowRecorder(maxRows: maxRows)
    }

    /// The recorded part of the current result; resets for the next one.
    mutating func takeResult() -> PostgresResponse {
        let response = PostgresResponse(columns: columns, rows: rows.rows, notices: notices, cut: rows.cut)
        columns = []
        rows = RowRecorder(maxRows: maxRows)
        notices = []
        return response
    }
}
