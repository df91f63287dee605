import CaptureFormat
import NIOCore
import PostgresWire
@testable import ProxyCore
import SQLInspection
import Testing
@testable import PostgresProxy

/// The relay's bookkeeping, driven with message sequences written here: what the client sends,
/// what the server answers, and what the machine says to do with each. No sockets, no database.
@Suite struct RelayStateMachineTests {
    /// Drives the machine as the session handler does, with a stand-in for the core's decision
    /// (statements in `refused` are refused) and logs of what went where.
    struct Relay {
        var machine = RelayStateMachine()
        /// Statement texts the "core" refuses.
        var refused: Set<String> = []
        /// Statement texts the "core" holds for approval (approval id "a" + the exchange number).
        var holds: Set<String> = []
        /// COPY layouts the "core" found, by statement text.
        var rowStreams: [String: [RowStreamLayout]] = [:]
        var exchanges: UInt64 = 0
        /// What went upstream, in order (the gate's own Describes included).
        var upstream: [String] = []
        /// What the client got, in order: the server's messages passed on and the gate's refusals.
        var client: [String] = []
        /// Results recorded: exchange and tag ("E" for an error).
        var results: [String] = []
        var refusalsCounted = 0

        /// The session's SQL inspection, as the core runs it: what each forwarded request plans,
        /// for the tag checks of `ConfirmedSessionState`.
        let sql = SQLSessionInspector(inspector: SQLRequestInspector(), catalog: nil, searchPath: SearchPath(schemas: ["public"]))
        let context = SessionContext(sessionID: "s", target: "db", subject: "u", groups: [], clientAddress: "", applicationName: "")

        init(masking: Bool = false) {
            machine.sql = sql
            machine.masksResults = masking
        }

        @discardableResult
        mutating func send(_ message: PostgresFrontendMessage) -> RelayStateMachine.ClientAction {
            var action = machine.clientMessage(message, frame: Self.frame(message))
            switch action {
            case .inspect(let request):
                guard case .postgres(let r) = request else { Issue.record("not a PostgreSQL request"); return action }
                exchanges += 1
                if holds.contains(r.text) {
                    action = machine.inspected(.held(approvalID: "a\(exchanges)"))
                } else if refused.contains(r.text) {
                    action = machine.inspected(.refused("denied: \(r.text)"))
                } else {
                    sql.forwarded(sql.inspect(request, in: context))
                    action = machine.inspected(.admitted(Admitted(exchange: exchanges, projections: [.unknown], rowStreams: rowStreams[r.text] ?? [])))
                }
            case .preview(_, let text):
                action = machine.inspected(refused.contains(text) ? .refused("denied: \(text)") : .allowed)
            default:
                break
            }
            execute(action, message)
            return action
        }

        /// What the handler does with the relay's answer for one client message.
        mutating func execute(_ action: RelayStateMachine.ClientAction, _ message: PostgresFrontendMessage) {
            switch action {
            case .forward, .forwardCopyData, .terminate: upstream.append(Self.name(message))
            case .forwardAndDescribePortal(let portal):
                upstream.append("Describe portal \(portal)")
                upstream.append(Self.name(message))
            case .refuse(let count):
                if count { refusalsCounted += 1 }
                emitRefusals()
            case .drop, .fail, .inspect, .preview, .wait: break
            }
        }

        /// The approval of the held message is decided (`admitted`: approved; else refused), as
        /// the handler's `approvalEvent` does: the held message, then what waited behind it.
        mutating func release(approved: Bool) {
            let verdict: RelayStateMachine.Verdict = approved
                ? .admitted(Admitted(exchange: exchanges, projections: [.unknown], rowStreams: [])) : .refused("denied by an approver")
            // As the core does on an approval: the inspector hears the request is forwarded, then the relay.
            if approved, case .query(let text)? = machine.inspectingMessage {
                sql.forwarded(sql.inspect(.postgres(PostgresRequest(text: text, path: .simple)), in: context))
            }
            guard let released = machine.released(verdict) else { Issue.record("nothing was held"); return }
            // The bytes kept are the client's own.
            #expect(released.frame == Self.frame(released.message))
            execute(released.action, released.message)
            while let next = machine.nextWaiting() { send(next.message) }
        }

        static func frame(_ message: PostgresFrontendMessage) -> ByteBuffer {
            var buffer = ByteBuffer()
            try? message.encode(into: &buffer)
            return buffer
        }

        mutating func send(_ messages: [PostgresFrontendMessage]) {
            for m in messages { send(m) }
        }

        @discardableResult
        mutating func receive(_ message: PostgresBackendMessage) -> RelayStateMachine.UpstreamAction {
            let action = machine.upstreamMessage(message)
            switch action {
            case .drop, .fail: return action
            case .keepBack: break
            case .finishResult(let pending):
                if let pending {
                    if case .errorResponse = message { results.append("\(pending.exchange) E") }
                    else if case .commandComplete(let tag) = message { results.append("\(pending.exchange) \(tag)") }
                    else { results.append("\(pending.exchange) \(Self.name(message))") }
                }
                client.append(Self.name(message))
            default:
                client.append(Self.name(message))
            }
            if case .diverged(let d) = machine.answered(message) { Issue.record("divergence: \(d)") }
            emitRefusals()
            return action
        }

        mutating func receive(_ messages: [PostgresBackendMessage]) {
            for m in messages { receive(m) }
        }

        mutating func emitRefusals() {
            while let refusal = machine.nextDueRefusal() {
                client.append("E 42501 \(refusal.message)")
                if let status = refusal.ready { client.append("Z \(status)") }
            }
        }

        static func name(_ m: PostgresFrontendMessage) -> String {
            switch m {
            case .query(let text): "Query \(text)"
            case .parse(let name, let text, _): "Parse \(name):\(text)"
            case .bind(let b): "Bind \(b.portal)"
            case .describe(let kind, let name): "Describe \(kind == .portal ? "portal" : "statement") \(name)"
            case .execute(let portal, let rows): "Execute \(portal)\(rows > 0 ? " \(rows)" : "")"
            case .close(let kind, let name): "Close \(kind == .portal ? "portal" : "statement") \(name)"
            case .sync: "Sync"
            case .flush: "Flush"
            case .copyData: "CopyData"
            case .copyDone: "CopyDone"
            default: m.messageName
            }
        }

        static func name(_ m: PostgresBackendMessage) -> String {
            switch m {
            case .parseComplete: "1"
            case .bindComplete: "2"
            case .closeComplete: "3"
            case .rowDescription: "T"
            case .noData: "n"
            case .dataRow: "D"
            case .commandComplete(let tag): "C \(tag)"
            case .portalSuspended: "s"
            case .errorResponse(let d): "E \(d.sqlState ?? "")"
            case .readyForQuery(let status): "Z \(status)"
            case .copyInResponse: "G"
            case .copyOutResponse: "H"
            case .copyData: "d"
            case .copyDone: "c"
            default: m.messageName
            }
        }
    }

    static let fields = [PostgresBackendMessage.ColumnDescription(name: "v", typeOID: 23, typeSize: 4)]
    static var row: PostgresBackendMessage { .dataRow(.init(columns: [ByteBuffer(string: "1")])) }
    static let layout = RowStreamLayout(format: .text, delimiter: 0x09, header: false, table: nil, columns: [])

    static func batch(_ text: String, portal: String = "", statement: String = "", maxRows: Int32 = 0, describe: Bool = false,
                      sync: Bool = true) -> [PostgresFrontendMessage] {
        var messages: [PostgresFrontendMessage] = [.parse(name: statement, query: text, parameterTypes: []),
                                                   .bind(.init(portal: portal, statement: statement))]
        if describe { messages.append(.describe(.portal, name: portal)) }
        messages.append(.execute(portal: portal, maxRows: maxRows))
        if sync { messages.append(.sync) }
        return messages
    }

    @Test func pipelinedBatchesAreAnsweredInOrder() {
        var relay = Relay()
        relay.send(Self.batch("SELECT 1", describe: true))
        relay.send(Self.batch("SELECT 2"))
        #expect(relay.upstream == ["Parse :SELECT 1", "Bind ", "Describe portal ", "Execute ", "Sync",
                                   "Parse :SELECT 2", "Bind ", "Execute ", "Sync"])
        #expect(relay.machine.relay.pending.count == 2)
        relay.receive([.parseComplete, .bindComplete])
        // The client's Describe of the portal: answered to the client, and it opens the Execute's result.
        #expect(relay.receive(.rowDescription(Self.fields)).isForward)
        guard case .row(let opening) = relay.receive(Self.row) else { Issue.record("no row"); return }
        #expect(opening == Self.fields)
        relay.receive([.commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        relay.receive([.parseComplete, .bindComplete])
        guard case .row = relay.receive(Self.row) else { Issue.record("no row"); return }
        relay.receive([.commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        #expect(relay.results == ["1 SELECT 1", "2 SELECT 1"])
        #expect(relay.machine.relay.pending.isEmpty && relay.machine.relay.expected.isEmpty && relay.machine.relay.describes.isEmpty)
        #expect(relay.machine.relay.portals.isEmpty)  // outside a transaction, portals end with their batch
    }

    @Test func executeWithARowLimitEndsInPortalSuspended() {
        var relay = Relay()
        relay.send(Self.batch("SELECT g FROM generate_series(1, 3) g", maxRows: 2, sync: false))
        relay.send(.flush)
        #expect(relay.upstream.last == "Flush")
        relay.receive([.parseComplete, .bindComplete, Self.row, Self.row])
        guard case .finishResult(let suspended) = relay.receive(.portalSuspended) else { Issue.record("not finished"); return }
        #expect(suspended?.exchange == 1)
        #expect(relay.machine.relay.expected.isEmpty)
        // The rest of the same portal, then the batch's Sync.
        relay.send([.execute(portal: "", maxRows: 2), .sync])
        relay.receive([Self.row, .commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        #expect(relay.results == ["1 s", "2 SELECT 1"])
        #expect(relay.client == ["1", "2", "D", "D", "s", "D", "C SELECT 1", "Z idle"])
        #expect(relay.machine.relay.pending.isEmpty && relay.machine.relay.expected.isEmpty)
    }

    @Test func aRefusalInTheMiddleOfABatchIsAnsweredAfterWhatTheServerOwes() {
        var relay = Relay()
        relay.refused = ["DELETE FROM t"]
        relay.send(Self.batch("SELECT 1", sync: false))
        // Refused at Parse: the rest of the batch up to Sync is skipped unseen.
        #expect(relay.send(.parse(name: "", query: "DELETE FROM t", parameterTypes: [])).isRefuse)
        #expect(relay.send(.bind(.init())).isDrop)
        #expect(relay.send(.execute(portal: "", maxRows: 0)).isDrop)
        #expect(relay.send(.flush).isDrop)
        relay.send(.sync)
        #expect(relay.upstream == ["Parse :SELECT 1", "Bind ", "Execute ", "Sync"])
        #expect(relay.client.isEmpty)  // the server still owes the first statement's answers
        relay.receive([.parseComplete, .bindComplete, Self.row, .commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        #expect(relay.client == ["1", "2", "D", "C SELECT 1", "E 42501 denied: DELETE FROM t", "Z idle"])
        #expect(relay.results == ["1 SELECT 1"])
        #expect(relay.refusalsCounted == 0)  // the core counted it when it decided
        #expect(relay.machine.relay.expected.isEmpty)
    }

    @Test func aRefusedQueryWaitsForTheQueryBeforeItAndGetsTheGatesOwnReady() {
        var relay = Relay()
        relay.refused = ["DROP TABLE t"]
        relay.send(.query("SELECT 1"))
        relay.send(.query("DROP TABLE t"))
        #expect(relay.upstream == ["Query SELECT 1"])
        #expect(relay.client.isEmpty)
        relay.receive([.rowDescription(Self.fields), Self.row, .commandComplete(tag: "SELECT 1")])
        #expect(relay.client == ["T", "D", "C SELECT 1"])
        relay.receive(.readyForQuery(.inTransaction))
        #expect(relay.client == ["T", "D", "C SELECT 1", "Z inTransaction", "E 42501 denied: DROP TABLE t", "Z inTransaction"])
        // Nothing owed: the next refusal is answered at once.
        relay.send(.query("DROP TABLE t"))
        #expect(relay.client.suffix(2) == ["E 42501 denied: DROP TABLE t", "Z inTransaction"])
        #expect(relay.machine.relay.syncSequence == 1)  // refused Queries never reached the server
    }

    @Test func anErrorInTheMiddleOfAResultEndsItAndTheServerSkipsToSync() {
        var relay = Relay()
        relay.refused = ["DELETE FROM t"]
        relay.send(Self.batch("SELECT 1/(3-g) FROM generate_series(1, 5) g", sync: false))
        relay.send(Self.batch("SELECT 2", sync: false))
        // A refusal queued behind them: the server's error will supersede it.
        relay.send(.parse(name: "", query: "DELETE FROM t", parameterTypes: []))
        relay.send(.sync)
        relay.receive([.parseComplete, .bindComplete, Self.row, Self.row])
        guard case .finishResult(let failed) = relay.receive(.errorResponse(.init(severity: "ERROR", sqlState: "22012", message: "division by zero")))
        else { Issue.record("not finished"); return }
        #expect(failed?.exchange == 1)
        // The rest of the batch was skipped: only the Sync is still owed.
        #expect(relay.machine.relay.expected.count == 1)
        relay.receive(.readyForQuery(.idle))
        #expect(relay.client == ["1", "2", "D", "D", "E 22012", "Z idle"])
        #expect(relay.results == ["1 E"])  // the skipped Execute has no result of its own
        #expect(relay.machine.relay.pending.isEmpty && relay.machine.relay.expected.isEmpty)
        // The batch after it is relayed as usual.
        relay.send(Self.batch("SELECT 3"))
        relay.receive([.parseComplete, .bindComplete, Self.row, .commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        #expect(relay.results == ["1 E", "3 SELECT 1"])  // the refused Parse was only previewed: no exchange
    }

    @Test func copyFromStdinRecordsTheClientsDataAgainstItsExchange() {
        var relay = Relay()
        relay.send(.query("COPY t FROM STDIN"))
        relay.receive(.copyInResponse(.init(format: 0, columnFormats: [0])))
        guard case .forwardCopyData(let exchange) = relay.send(.copyData(ByteBuffer(string: "1\n"))) else { Issue.record("not copy data"); return }
        #expect(exchange == 1)
        #expect(relay.send(.copyDone).isForward)
        relay.receive([.commandComplete(tag: "COPY 1"), .readyForQuery(.idle)])
        #expect(relay.upstream == ["Query COPY t FROM STDIN", "CopyData", "CopyDone"])
        #expect(relay.results == ["1 COPY 1"])
        #expect(relay.machine.relay.pending.isEmpty)
    }

    @Test func copyToStdoutIsMaskedWithTheLayoutOfItsStatement() {
        var relay = Relay(masking: true)
        relay.rowStreams["COPY t TO STDOUT"] = [Self.layout]
        relay.send(.query("COPY t TO STDOUT"))
        guard case .startCopyOut(let layout, _) = relay.receive(.copyOutResponse(.init(format: 0, columnFormats: [0])))
        else { Issue.record("no COPY started"); return }
        #expect(layout == Self.layout)
        guard case .copyData(let exchange) = relay.receive(.copyData(ByteBuffer(string: "1\n"))) else { Issue.record("no data"); return }
        #expect(exchange == 1)
        #expect(relay.receive(.copyDone).isCopyDone)
        relay.receive([.commandComplete(tag: "COPY 1"), .readyForQuery(.idle)])
        #expect(relay.results == ["1 COPY 1"])
        // A second COPY in the same request has no layout of its own: its rows cannot be placed.
        relay.send(.query("COPY u TO STDOUT"))
        #expect(relay.receive(.copyOutResponse(.init(format: 0, columnFormats: [0]))).isFail)
        // Binary rows cannot be masked.
        var binary = Relay(masking: true)
        binary.rowStreams["COPY v TO STDOUT"] = [Self.layout]
        binary.send(.query("COPY v TO STDOUT"))
        #expect(binary.receive(.copyOutResponse(.init(format: 1, columnFormats: [1]))).isFail)
    }

    @Test func aSimpleQueryOfSeveralStatementsStaysPendingUntilReady() {
        var relay = Relay()
        relay.send(.query("SELECT 1; SELECT 2"))
        for _ in 0..<2 {
            guard case .startResult(let fields) = relay.receive(.rowDescription(Self.fields)) else { Issue.record("no result"); return }
            #expect(fields == Self.fields)
            guard case .row(opening: nil) = relay.receive(Self.row) else { Issue.record("no row"); return }
            relay.receive(.commandComplete(tag: "SELECT 1"))
            #expect(relay.machine.relay.pending.count == 1)
        }
        relay.receive(.readyForQuery(.idle))
        #expect(relay.results == ["1 SELECT 1", "1 SELECT 1"])
        #expect(relay.machine.relay.pending.isEmpty && relay.machine.relay.expected.isEmpty)
    }

    @Test func theGatesOwnDescribeIsKeptBackFromTheClient() {
        var relay = Relay(masking: true)
        relay.send(Self.batch("SELECT 1"))
        #expect(relay.upstream == ["Parse :SELECT 1", "Bind ", "Describe portal ", "Execute ", "Sync"])
        relay.receive([.parseComplete, .bindComplete])
        #expect(relay.receive(.rowDescription(Self.fields)).isKeepBack)
        guard case .row(let opening) = relay.receive(Self.row) else { Issue.record("no row"); return }
        #expect(opening == Self.fields)  // the injected Describe's answer opens the result
        relay.receive([.commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        #expect(relay.client == ["1", "2", "D", "C SELECT 1", "Z idle"])
        // A portal the client described itself is not described again.
        relay.send(Self.batch("SELECT 2", describe: true))
        #expect(relay.upstream.suffix(4) == ["Bind ", "Describe portal ", "Execute ", "Sync"])
    }

    /// Two batches pipelined on the unnamed portal: the second Bind replaces the portal the first
    /// batch's Describe asked about, so that answer must not stand for the second Execute's columns
    /// (masking would place the second result's fields by the first one's columns).
    @Test func aDescribeAnsweredAfterTheNextBindDoesNotDescribeTheNewPortal() {
        var relay = Relay(masking: true)
        relay.send(Self.batch("SELECT 1"))
        relay.send(Self.batch("SELECT 'x' AS secret, 2"))
        // Each Execute gets the gate's own Describe of the portal it runs.
        #expect(relay.upstream == ["Parse :SELECT 1", "Bind ", "Describe portal ", "Execute ", "Sync",
                                   "Parse :SELECT 'x' AS secret, 2", "Bind ", "Describe portal ", "Execute ", "Sync"])
        let second = [PostgresBackendMessage.ColumnDescription(name: "secret", tableOID: 16384, columnAttribute: 3, typeOID: 25, typeSize: -1),
                      PostgresBackendMessage.ColumnDescription(name: "?column?", typeOID: 23, typeSize: 4)]
        relay.receive([.parseComplete, .bindComplete, .rowDescription(Self.fields), Self.row, .commandComplete(tag: "SELECT 1"),
                       .readyForQuery(.idle), .parseComplete, .bindComplete])
        #expect(relay.receive(.rowDescription(second)).isKeepBack)
        guard case .row(let opening) = relay.receive(.dataRow(.init(columns: [ByteBuffer(string: "x"), ByteBuffer(string: "2")])))
        else { Issue.record("no row"); return }
        #expect(opening == second)
        relay.receive([.commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        #expect(relay.client == ["1", "2", "D", "C SELECT 1", "Z idle", "1", "2", "D", "C SELECT 1", "Z idle"])
    }

    /// The same for the unnamed statement: a Describe of it answered after a new Parse of it.
    @Test func aDescribeAnsweredAfterTheNextParseDoesNotDescribeTheNewStatement() {
        var relay = Relay()
        relay.send([.parse(name: "", query: "SELECT 1", parameterTypes: []), .describe(.statement, name: ""), .sync])
        relay.send([.parse(name: "", query: "SELECT 'x' AS secret, 2", parameterTypes: []), .bind(.init()), .execute(portal: "", maxRows: 0), .sync])
        relay.receive([.parseComplete, .parameterDescription([]), .rowDescription(Self.fields), .readyForQuery(.idle)])
        relay.receive([.parseComplete, .bindComplete])
        guard case .row(let opening) = relay.receive(.dataRow(.init(columns: [ByteBuffer(string: "x"), ByteBuffer(string: "2")])))
        else { Issue.record("no row"); return }
        #expect(opening == [])  // not known (and not the first statement's)
        // Without anything pipelined behind it, a Describe's answer is kept.
        relay.receive([.commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        relay.send([.describe(.statement, name: ""), .sync])
        relay.receive([.parameterDescription([]), .rowDescription(Self.fields), .readyForQuery(.idle)])
        #expect(relay.machine.relay.described[""]?.fields == Self.fields)
    }

    /// A second Parse of a named statement the server holds fails there; the statement's
    /// described columns still stand for its later Executes.
    @Test func aFailedParseOfAHeldNameKeepsTheStatementsColumns() {
        var relay = Relay()
        relay.send([.parse(name: "s", query: "SELECT 1", parameterTypes: []), .describe(.statement, name: "s"), .sync])
        relay.receive([.parseComplete, .parameterDescription([]), .rowDescription(Self.fields), .readyForQuery(.idle)])
        relay.send([.parse(name: "s", query: "SELECT 2", parameterTypes: []), .sync])
        relay.receive([.errorResponse(.init(severity: "ERROR", sqlState: "42P05", message: "prepared statement \"s\" already exists")),
                       .readyForQuery(.idle)])
        relay.send([.bind(.init(portal: "", statement: "s")), .execute(portal: "", maxRows: 0), .sync])
        relay.receive(.bindComplete)
        guard case .row(let opening) = relay.receive(Self.row) else { Issue.record("no row"); return }
        #expect(opening == Self.fields)
        relay.receive([.commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        #expect(relay.machine.relay.statements["s"] == "SELECT 1")
    }

    /// A DO block may replace a named statement or portal (SPI shares the server's namespaces):
    /// once it is forwarded, the relay no longer trusts what the names held.
    @Test func hiddenCodeMakesTheRelayForgetWhatNamesHold() {
        var relay = Relay()
        relay.send([.begin, .parse(name: "s", query: "SELECT 1", parameterTypes: []), .bind(.init(portal: "p", statement: "s")),
                    .describe(.statement, name: "s"), .sync])
        relay.receive([.commandComplete(tag: "BEGIN"), .readyForQuery(.inTransaction)])
        relay.receive([.parseComplete, .bindComplete, .parameterDescription([]), .rowDescription(Self.fields), .readyForQuery(.inTransaction)])
        #expect(relay.machine.relay.statements["s"] == "SELECT 1")
        #expect(relay.machine.relay.described["s"] != nil)
        relay.send(.query("DO $$ BEGIN EXECUTE 'DEALLOCATE s'; EXECUTE 'PREPARE s AS SELECT 2'; END $$"))
        // Forgotten as soon as the DO is forwarded, before its answer.
        #expect(relay.machine.relay.statements["s"] == "EXECUTE \"s\"")
        #expect(relay.machine.relay.described["s"] == nil)
        #expect(relay.machine.relay.portals["p"]?.text == "FETCH ALL FROM \"p\"")
        relay.receive([.commandComplete(tag: "DO"), .readyForQuery(.inTransaction)])
        #expect(relay.machine.relay.statements["s"] == "EXECUTE \"s\"")
        // An Execute of the portal is inspected as a FETCH the gate cannot resolve.
        guard case .inspect(.postgres(let request)) = relay.machine.clientMessage(.execute(portal: "p", maxRows: 0), frame: ByteBuffer()) else {
            Issue.record("the Execute was not inspected"); return
        }
        #expect(request.text == "FETCH ALL FROM \"p\"")
    }

    /// A Query inside an extended batch before its Sync: refused as an error of the batch (the
    /// server would skip it unanswered should the batch fail), and the rest skipped to the Sync.
    @Test func aQueryInsideAnUnsyncedBatchIsRefusedAsAnErrorOfTheBatch() {
        var relay = Relay()
        relay.send([.parse(name: "", query: "SELECT 1", parameterTypes: []), .bind(.init()), .execute(portal: "", maxRows: 0)])
        #expect(relay.send(.query("SELECT 2")).isRefuse)
        #expect(relay.send(.execute(portal: "", maxRows: 0)).isDrop)
        relay.send(.sync)
        #expect(relay.upstream == ["Parse :SELECT 1", "Bind ", "Execute ", "Sync"])
        relay.receive([.parseComplete, .bindComplete, Self.row, .commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        #expect(relay.client.count == 6)
        #expect(relay.client.prefix(4) == ["1", "2", "D", "C SELECT 1"])
        #expect(relay.client[4].hasPrefix("E 42501 tollgate: a Query ('Q') message inside an extended-protocol batch"))
        #expect(relay.client[5] == "Z idle")
        // After the Sync, a Query is a Query again.
        #expect(relay.send(.query("SELECT 3")).isForward)
    }

    /// SQL cursors and portals share one namespace: a Bind or Close of a DECLAREd cursor's name is refused.
    @Test func aPortalNamedLikeASQLCursorIsRefused() {
        var relay = Relay()
        relay.send(.query("BEGIN; DECLARE c CURSOR FOR SELECT 1"))
        relay.receive([.commandComplete(tag: "BEGIN"), .commandComplete(tag: "DECLARE CURSOR"), .readyForQuery(.inTransaction)])
        relay.send(.parse(name: "", query: "SELECT 2", parameterTypes: []))
        #expect(relay.send(.bind(.init(portal: "c", statement: ""))).isRefuse)
        relay.send(.sync)
        #expect(relay.send(.close(.portal, name: "c")).isRefuse)
        relay.send(.sync)
        #expect(relay.upstream == ["Query BEGIN; DECLARE c CURSOR FOR SELECT 1", "Parse :SELECT 2", "Sync", "Sync"])
    }

    /// A held Query: the client's later messages wait behind it, in order, and go upstream only
    /// once it is approved; the next request is decided only then.
    @Test func messagesWaitBehindAHeldQueryUntilItIsApproved() {
        var relay = Relay()
        relay.holds = ["UPDATE t SET a = 1"]
        #expect(relay.send(.query("UPDATE t SET a = 1")).isWait)
        #expect(relay.machine.heldApprovalID == "a1")
        #expect(relay.send(.query("SELECT 2")).isWait)
        #expect(relay.send(.query("SELECT 3")).isWait)
        #expect(relay.upstream.isEmpty)
        #expect(relay.exchanges == 1)  // the waiting ones are not decided yet
        relay.release(approved: true)
        #expect(relay.machine.heldApprovalID == nil)
        #expect(relay.upstream == ["Query UPDATE t SET a = 1", "Query SELECT 2", "Query SELECT 3"])
        #expect(relay.exchanges == 3)
        relay.receive([.commandComplete(tag: "UPDATE 1"), .readyForQuery(.idle), .commandComplete(tag: "SELECT 1"), .readyForQuery(.idle),
                       .commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        #expect(relay.results == ["1 UPDATE 1", "2 SELECT 1", "3 SELECT 1"])
    }

    /// A denied hold in an extended batch: the client gets the 42501 in the held Execute's place,
    /// and the rest of the batch that waited is skipped up to its Sync, as after any error.
    @Test func aDeniedHoldInABatchSkipsTheRestToSync() {
        var relay = Relay()
        relay.holds = ["UPDATE t SET a = 1"]
        relay.send([.parse(name: "", query: "UPDATE t SET a = 1", parameterTypes: []), .bind(.init())])
        #expect(relay.send(.execute(portal: "", maxRows: 0)).isWait)
        #expect(relay.send(.parse(name: "", query: "SELECT 2", parameterTypes: [])).isWait)
        #expect(relay.send(.bind(.init())).isWait)
        #expect(relay.send(.execute(portal: "", maxRows: 0)).isWait)
        #expect(relay.send(.sync).isWait)
        #expect(relay.upstream == ["Parse :UPDATE t SET a = 1", "Bind "])
        relay.release(approved: false)
        #expect(relay.upstream == ["Parse :UPDATE t SET a = 1", "Bind ", "Sync"])
        relay.receive([.parseComplete, .bindComplete, .readyForQuery(.idle)])
        #expect(relay.client == ["1", "2", "E 42501 denied by an approver", "Z idle"])
    }

    /// A hold in the middle of a pipelined batch, approved: what waited is relayed, and a second
    /// held message in what waited stops the relaying again, in its place.
    @Test func aSecondHoldAmongTheWaitingMessagesStopsThereAgain() {
        var relay = Relay()
        relay.holds = ["UPDATE t SET a = 1", "UPDATE t SET a = 2"]
        relay.send(.query("UPDATE t SET a = 1"))
        relay.send([.query("SELECT 1"), .query("UPDATE t SET a = 2"), .query("SELECT 3")])
        relay.release(approved: true)
        #expect(relay.upstream == ["Query UPDATE t SET a = 1", "Query SELECT 1"])
        #expect(relay.machine.heldApprovalID == "a3")
        relay.release(approved: true)
        #expect(relay.upstream == ["Query UPDATE t SET a = 1", "Query SELECT 1", "Query UPDATE t SET a = 2", "Query SELECT 3"])
    }

    /// A client that pipelines too much behind a hold is ended (fail closed), and an abandoned hold
    /// (the client went away) leaves nothing held or waiting.
    @Test func tooMuchBehindAHoldFailsAndAnAbandonedHoldLeavesNothing() {
        var relay = Relay()
        relay.holds = ["UPDATE t SET a = 1"]
        relay.send(.query("UPDATE t SET a = 1"))
        let big = String(repeating: "x", count: 1 << 20)
        var failed = false
        for _ in 0..<70 where !failed {
            if case .fail(let code, _, _) = relay.send(.query("SELECT '\(big)'")) { failed = code == "54000" }
        }
        #expect(failed)
        relay.machine.abandonHold()
        #expect(relay.machine.heldApprovalID == nil)
        #expect(relay.machine.nextWaiting() == nil)
        #expect(relay.upstream.isEmpty)
    }

    @Test func aNamedPortalIsHeldOnceConfirmedAndClosed() {
        var relay = Relay()
        relay.send([.begin, .parse(name: "s", query: "SELECT 1", parameterTypes: []), .bind(.init(portal: "p", statement: "s")), .sync])
        // A second Bind of the name before the server confirmed the first: refused.
        #expect(relay.send(.bind(.init(portal: "p", statement: "s"))).isRefuse)
        relay.send(.sync)
        relay.receive([.commandComplete(tag: "BEGIN"), .readyForQuery(.inTransaction)])
        relay.receive([.parseComplete, .bindComplete, .readyForQuery(.inTransaction)])
        // The refusal in its place: after the first batch's answers, before the second Sync's.
        #expect(relay.client == ["C BEGIN", "Z inTransaction", "1", "2", "Z inTransaction",
                                 "E 42501 tollgate: portal \"p\" exists or has a Bind the server has not confirmed yet; close it or wait for its answer"])
        relay.receive(.readyForQuery(.inTransaction))
        #expect(relay.machine.relay.portals["p"]?.statement == "s")
        #expect(relay.machine.relay.statements["s"] == "SELECT 1")
        // Closed: gone at once (its name is free for the next Bind).
        relay.send([.close(.portal, name: "p"), .sync])
        #expect(relay.machine.relay.portals["p"] == nil)
        relay.receive([.closeComplete, .readyForQuery(.inTransaction)])
        #expect(relay.send(.bind(.init(portal: "p", statement: "s"))).isForward)
        #expect(relay.machine.relay.pendingPortals["p"] != nil)
    }
}

extension PostgresFrontendMessage {
    static var begin: PostgresFrontendMessage { .query("BEGIN") }
}

extension RelayStateMachine.ClientAction {
    var isForward: Bool { if case .forward = self { true } else { false } }
    var isRefuse: Bool { if case .refuse = self { true } else { false } }
    var isDrop: Bool { if case .drop = self { true } else { false } }
    var isWait: Bool { if case .wait = self { true } else { false } }
}

extension RelayStateMachine.UpstreamAction {
    var isForward: Bool { if case .forward = self { true } else { false } }
    var isKeepBack: Bool { if case .keepBack = self { true } else { false } }
    var isCopyDone: Bool { if case .copyDone = self { true } else { false } }
    var isFail: Bool { if case .fail = self { true } else { false } }
}
