import CaptureFormat
import NIOCore
import PostgresWire
import ProxyCore

/// What the relay tracks to tie each result to its request: prepared statements and
/// portals (for the extended protocol), and the queue of exchanges awaiting results.
/// Changed only by `RelayStateMachine`, which owns it.
struct RelayState {
    struct Pending {
        var exchange: UInt64
        /// A simple Query (or function call): may produce several results; ends at ReadyForQuery.
        var simple: Bool
        /// The Sync (or Query) this belongs to: the server answers each with one ReadyForQuery.
        var sync: Int
        var started: NIODeadline
        /// What masking needs to place computed and COPY columns.
        var projections: [Projection] = []
        /// One layout per COPY TO STDOUT of the request, consumed in order.
        var rowStreams: [RowStreamLayout] = []
        /// For an Execute: the portal it runs and the prepared statement behind it.
        var portal: String?
        var statement: String?
        /// For an Execute: the portal as it was bound when the Execute was sent (a Bind pipelined
        /// behind it may replace the name before the result arrives).
        var bound: Portal?
    }

    /// A prepared statement's result columns as recorded and as masking planned them, for the
    /// policy and catalog generations they were made under.
    /// A class: looked up for every result of the statement, where one retain beats four.
    final class ResultPlan {
        let fields: [PostgresBackendMessage.ColumnDescription]
        let generation: (policy: Int, catalog: Int, inspection: Int)
        let columns: [Column]
        let masking: PostgresResultMasker.ResultColumns?

        init(fields: [PostgresBackendMessage.ColumnDescription], generation: (policy: Int, catalog: Int, inspection: Int),
             columns: [Column], masking: PostgresResultMasker.ResultColumns?) {
            self.fields = fields; self.generation = generation; self.columns = columns; self.masking = masking
        }
    }

    struct Portal {
        var statement: String
        var text: String
        var parameters: [Parameter]
        var resultFormats: [Int16]
        /// The Sync of the batch it was bound in: portals end with their transaction.
        var sync: Int
        /// Which Bind made it, and which Parse made its statement (`RelayState.serial`): a
        /// Describe's answer tells its columns only if it described that Bind (or Parse).
        var serial = 0
        var statementSerial = 0
    }

    /// A Describe's answer: the columns, and which Parse or Bind of the name they belong to.
    struct Described {
        var serial: Int
        var fields: [PostgresBackendMessage.ColumnDescription]
    }

    /// A Describe waiting for its answer (RowDescription or NoData), and the Sync it belongs to:
    /// after an error the server skips it, and ReadyForQuery clears it. `injected`: the gate
    /// asked (to know an Execute's columns for masking); the answer is not the client's.
    struct Describe {
        enum Target { case statement(String), portal(String) }
        var target: Target
        var injected: Bool
        var sync: Int
        /// Which Parse or Bind of the name it describes (`RelayState.serial`; 0: one the gate did
        /// not see, a SQL PREPARE or DECLARE). A Parse or Bind of the same name pipelined behind
        /// the Describe replaces what it describes: its answer tells nothing about the new one.
        var serial = 0
    }

    /// What the server still owes for what the gate sent it, in order, and the errors the gate
    /// raised for refused requests in between: a refusal is answered when everything sent
    /// before it has been, so the client gets responses in the order it asked.
    enum Expectation {
        case parse, bind, close, describe, execute, sync
        /// A simple Query or FunctionCall: answered by ReadyForQuery.
        case query
        /// The gate's 42501 for a refused request; `ownReady`: followed by the gate's own ReadyForQuery.
        case refusal(String, ownReady: Bool)

        var isRefusal: Bool { if case .refusal = self { true } else { false } }
    }

    var statements: [String: String] = [:]
    /// Numbers each Parse and Bind the gate forwards, so that a Describe's answer is matched to
    /// the statement or portal it described, not to a newer one of the same name sent after it.
    var serial = 0
    /// The serial of the last Parse forwarded for each statement name.
    var parsed: [String: Int] = [:]
    /// The parameter types the last Parse forwarded for each statement name declared (recorded
    /// with each Bind's parameters, so a binary parameter can be replayed with its type).
    var parameterTypes: [String: [UInt32]] = [:]
    /// Portals the server holds, as far as it confirmed them: the unnamed one from its Bind,
    /// named ones from their BindComplete (see ConfirmedSessionState).
    var portals: [String: Portal] = [:]
    /// Named portals whose Bind the server has not confirmed yet.
    var pendingPortals: [String: Portal] = [:]
    /// Result columns of prepared statements, from the RowDescription that answered a Describe of the statement.
    var described: [String: Described] = [:]
    /// Result columns of portals, from the RowDescription that answered a Describe of the portal
    /// (the client's or the gate's own): what an Execute of the portal returns, formats included.
    var portalDescribed: [String: Described] = [:]
    // Queues (appended at the back, answered from the front): ring buffers, so a client that
    // pipelines thousands of messages does not pay for shifting the rest at every answer.
    var expected = CircularBuffer<Expectation>()
    var resultPlans: [String: ResultPlan] = [:]
    var describes = CircularBuffer<Describe>()
    /// A RowDescription (or the statement's described columns) opened the current result.
    var resultStarted = false
    var pending = CircularBuffer<Pending>()
    var syncSequence = 0
    var readyForQueryCount = 0
    var skippingUntilSync = false
    var transactionStatus: PostgresBackendMessage.TransactionStatus = .idle
    var lastDenial = ""
    /// What the server must still confirm, and the checks of its answers (ConfirmedSessionState).
    var confirmed = ConfirmedSessionState()

    /// The server has answered every Sync up to `answered`: the exchanges and Describes of
    /// those batches are done (the server skips what follows an error). Both queues are in
    /// Sync order, so the done ones are at the front.
    mutating func batchesAnswered(through answered: Int) {
        while let first = pending.first, first.sync <= answered { pending.removeFirst() }
        while let first = describes.first, first.sync <= answered { describes.removeFirst() }
    }

    /// The serial of the Bind that made the portal the name holds (the newest, confirmed or not); 0: none the gate saw.
    func portalSerial(_ name: String) -> Int {
        (pendingPortals[name] ?? portals[name])?.serial ?? 0
    }

    /// Outside a transaction, the portals of the batches answered so far are gone.
    mutating func endPortals(answeredSyncs answered: Int) {
        if portals.values.allSatisfy({ $0.sync <= answered }) {
            // The usual case (nothing pipelined behind): no list of names to build.
            portals.removeAll(keepingCapacity: true)
            portalDescribed.removeAll(keepingCapacity: true)
            return
        }
        // Names first: removing while iterating would copy the dictionary.
        let ended = portals.compactMap { $0.value.sync <= answered ? $0.key : nil }
        for name in ended {
            portals[name] = nil
            portalDescribed[name] = nil
        }
    }
}
