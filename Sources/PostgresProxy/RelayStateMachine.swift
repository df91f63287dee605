import CaptureFormat
import NIOCore
import PostgresWire
import ProxyCore

/// The relay's bookkeeping as a value that takes decoded messages and returns what to do, in the
/// manner of postgres-nio's `ConnectionStateMachine`: what the server still owes and what each
/// expected answer is (pipelined extended protocol, COPY both ways, a refusal in the middle of a
/// batch, an error in the middle of a result), the prepared statements and portals, and what the
/// server confirmed (`ConfirmedSessionState`). No channel, no event loop: the session handler
/// frames the bytes, executes the actions (write, flush, record through the core, close), and
/// the machine is tested with message sequences alone (RelayStateMachineTests).
///
/// Client side: `clientMessage` answers `.inspect`/`.preview` when the core must decide; the
/// handler asks it and calls `inspected(_:)`, which answers how to forward or refuse. Server
/// side: `upstreamMessage` says what the message is to the result in flight; once the handler
/// has passed it on (or kept it back), `answered(_:)` moves past what it answers.
struct RelayStateMachine {
    /// What the relay tracks (statements, portals, the queues of what is owed). Read by the
    /// handler; changed only by the machine's methods (in its extension files, hence not `private(set)`).
    var relay = RelayState()
    /// The session's SQL inspection (the core's inspector, a reference shared with it): protocol
    /// statements and SQL PREPARE share one namespace on the server, and what the server confirms
    /// is applied to it. Nil in tests of the protocol alone.
    var sql: SQLSessionInspector?
    /// Results are masked as they stream: an Execute whose portal's columns are not known is
    /// preceded by the gate's own Describe of the portal, whose answer the client never sees.
    var masksResults = false
    /// The client message the core is deciding on, between `.inspect`/`.preview` and `inspected`.
    private var inspecting: PostgresFrontendMessage?
    /// The bytes of the message being inspected, kept should the core hold it.
    private var inspectingFrame = ByteBuffer()
    /// A request held for approval and the client's messages behind it (RelayStateMachine+Holds).
    var holds = HoldQueue()
    /// The inspector's `hiddenCodeGeneration` the relay last followed (RelayStateMachine+HiddenCode).
    var hiddenCodeFollowed = 0

    init(sql: SQLSessionInspector? = nil) { self.sql = sql }

    /// What to do with a client message.
    enum ClientAction {
        /// Send the frame upstream as the client sent it.
        case forward
        /// CopyData: record it against `exchange` (none: no request is pending), then forward it.
        case forwardCopyData(exchange: UInt64?)
        /// Send the gate's own Describe of this portal first (masking needs its columns), then the frame.
        case forwardAndDescribePortal(String)
        /// The core decides (inspect, decide, record); then `inspected(_:)`.
        case inspect(Request)
        /// A Parse: decided here only where the policy enforces (a refused statement is never even
        /// prepared upstream; an allowed one is decided and recorded at Execute). Then `inspected(_:)`.
        case preview(name: String, text: String)
        /// Refused: the gate's 42501 waits behind what the server still owes for earlier messages.
        /// Emit the refusals now due (`nextDueRefusal`) and flush the client. `countRefusal`: the
        /// core did not count it (refused by the relay, not by a decision).
        case refuse(countRefusal: Bool)
        /// Not forwarded and not answered: skipped after an error up to Sync, or the session is ending.
        case drop
        /// Forward the Terminate, then end the session.
        case terminate
        /// Not something a client may send now: end the session with this FATAL error.
        case fail(code: String, message: String, reason: String)
        /// Kept: held for approval, or waiting behind a held request (RelayStateMachine+Holds).
        case wait
    }

    /// The core's answer for the message being inspected.
    enum Verdict {
        case admitted(Admitted)
        /// A Parse the preview let through (or no policy enforces): decided at its Execute.
        case allowed
        /// Not to be forwarded; the message the client gets.
        case refused(String)
        /// Held until an approver decides (`released(_:)` then gives the final verdict).
        case held(approvalID: String)
    }

    // MARK: Client messages

    mutating func clientMessage(_ message: PostgresFrontendMessage, frame: ByteBuffer) -> ClientAction {
        followHiddenCode()
        // An ending session forwards nothing new: the client gets its FATAL error.
        guard relay.confirmed.ending == nil else { return .drop }
        // Behind a held request, the client's messages wait in order.
        if holds.approvalID != nil { return waitBehindHold(message, frame: frame) }
        inspectingFrame = frame
        // After the gate refuses a statement of an extended-protocol batch, the rest of the batch up to
        // Sync is discarded unseen, as PostgreSQL does after an error: no second error, no decision.
        if relay.skippingUntilSync, message.isSkippedAfterError { return .drop }
        if let refusal = refusedBeforeForwarding(message) { return refusal }
        switch message {
        case .query(let text):
            relay.syncSequence += 1
            inspecting = message
            return .inspect(.postgres(PostgresRequest(text: text, path: .simple)))
        case .parse(let name, let query, _):
            // A named statement is registered when the server confirms it (ParseComplete, see
            // RelayStateMachine+Statements); one whose name has a change still unconfirmed is refused.
            if !name.isEmpty, let refusal = pendingNameRefusal(name) {
                relay.lastDenial = refusal
                relay.skippingUntilSync = true
                return refuse(ownReady: false, countRefusal: true)
            }
            inspecting = message
            return .preview(name: name, text: query)
        case .bind(let bind):
            // A named portal is registered when the server confirms it (RelayStateMachine+Statements).
            guard bindPortal(bind) else {
                relay.skippingUntilSync = true
                return refuse(ownReady: false, countRefusal: false)
            }
        case .describe(let kind, let name):
            relay.describes.append(.init(target: kind == .statement ? .statement(name) : .portal(name), injected: false,
                                         sync: relay.syncSequence + 1,
                                         serial: kind == .statement ? relay.parsed[name] ?? 0 : relay.portalSerial(name)))
        case .execute(let portal, _):
            // A portal whose Bind is pipelined before this Execute: if that Bind fails, the server skips this too.
            let bound = relay.portals[portal] ?? relay.pendingPortals[portal]
            let text = bound?.text ?? statementText(nil)
            inspecting = message
            return .inspect(.postgres(PostgresRequest(text: text, path: .extended, statementName: bound?.statement ?? "",
                                                      portalName: portal, parameters: bound?.parameters ?? [])))
        case .sync:
            relay.syncSequence += 1
            relay.skippingUntilSync = false
        case .close(let kind, let name):
            if kind == .statement {
                // A named statement is forgotten when the server confirms the Close (CloseComplete).
                if name.isEmpty { forgetStatement(name) }
            } else {
                relay.portals[name] = nil
                relay.pendingPortals[name] = nil  // its BindComplete (before the Close's) must not bring it back
                relay.portalDescribed[name] = nil
            }
        case .copyData:
            forwarded(message, exchange: 0)
            return .forwardCopyData(exchange: relay.pending.first?.exchange)
        case .functionCall:
            inspecting = message
            return .inspect(.postgres(PostgresRequest(text: "", path: .functionCall)))
        case .terminate:
            return .terminate
        case .startup, .sslRequest, .gssEncRequest, .cancelRequest, .password:
            return .fail(code: "08P01", message: "unexpected \(message.messageName) message after startup", reason: "protocol-error")
        default:
            break
        }
        forwarded(message, exchange: 0)
        return .forward
    }

    /// The core's verdict on the message `clientMessage` asked about: how to forward or refuse it.
    mutating func inspected(_ verdict: Verdict) -> ClientAction {
        guard let message = inspecting else { preconditionFailure("inspected(_:) without a message being inspected") }
        followHiddenCode()
        if case .held(let approvalID) = verdict {
            // Still the message being inspected: decided again once the approval is.
            holds.approvalID = approvalID
            holds.frame = inspectingFrame
            return .wait
        }
        inspecting = nil
        inspectingFrame = ByteBuffer()
        switch (message, verdict) {
        case (.query, .admitted(let admitted)):
            relay.pending.append(.init(exchange: admitted.exchange, simple: true, sync: relay.syncSequence, started: .now(),
                                       projections: admitted.projections, rowStreams: admitted.rowStreams))
            forwarded(message, exchange: admitted.exchange)
            return .forward
        case (.query, _):
            relay.syncSequence -= 1
            return refused(verdict, ownReady: true)
        case (.parse(let name, let query, let types), .allowed), (.parse(let name, let query, let types), .admitted):
            // A Parse of a named statement the server holds fails there (the name is taken): what
            // the name describes does not change.
            if name.isEmpty || relay.statements[name] == nil {
                relay.serial += 1
                relay.parsed[name] = relay.serial
                relay.parameterTypes[name] = types.isEmpty ? nil : types
            }
            if name.isEmpty { registerStatement(name, text: query) }
            forwarded(message, exchange: 0)
            return .forward
        case (.parse, .refused):
            relay.skippingUntilSync = true
            return refused(verdict, ownReady: false)
        case (.execute(let portal, _), .admitted(let admitted)):
            var describing = false
            // Masking needs the portal's real columns (a statement's Describe may be stale: the server
            // re-plans after DDL or a search_path change): ask the server, and keep the answer to itself.
            // A Describe of an earlier portal of the same name (pipelined before a new Bind of it) does not count.
            let serial = relay.portalSerial(portal)
            if masksResults, relay.portalDescribed[portal]?.serial != serial,
               !relay.describes.contains(where: { if case .portal(let p) = $0.target { return p == portal && $0.serial == serial } else { return false } }) {
                relay.describes.append(.init(target: .portal(portal), injected: true, sync: relay.syncSequence + 1, serial: serial))
                relay.expected.append(.describe)
                relay.confirmed.forwarded(.describe)
                describing = true
            }
            let bound = relay.portals[portal] ?? relay.pendingPortals[portal]
            relay.pending.append(.init(exchange: admitted.exchange, simple: false, sync: relay.syncSequence + 1, started: .now(),
                                       projections: admitted.projections, rowStreams: admitted.rowStreams,
                                       portal: portal, statement: bound?.statement, bound: bound))
            forwarded(message, exchange: admitted.exchange)
            return describing ? .forwardAndDescribePortal(portal) : .forward
        case (.execute, _):
            // Denied: the server never sees it; the client gets the error as if the server raised it,
            // and the rest of the batch up to Sync is skipped, as PostgreSQL itself would do.
            relay.skippingUntilSync = true
            return refused(verdict, ownReady: false)
        case (.functionCall, .admitted(let admitted)):
            relay.syncSequence += 1
            relay.pending.append(.init(exchange: admitted.exchange, simple: true, sync: relay.syncSequence, started: .now()))
            forwarded(message, exchange: admitted.exchange)
            return .forward
        case (.functionCall, _):
            return refused(verdict, ownReady: true)
        default:
            preconditionFailure("inspected(_:) for a message that is not inspected")
        }
    }

    /// The message being inspected (a held one until its approval is decided).
    var inspectingMessage: PostgresFrontendMessage? { inspecting }

    /// Drops the message being inspected (its hold was abandoned).
    mutating func takeInspecting() -> PostgresFrontendMessage? {
        defer { inspecting = nil; inspectingFrame = ByteBuffer() }
        return inspecting
    }

    private mutating func refused(_ verdict: Verdict, ownReady: Bool) -> ClientAction {
        if case .refused(let message) = verdict { relay.lastDenial = message }
        return refuse(ownReady: ownReady, countRefusal: false)
    }

    /// Queues the gate's 42501 for a refused request in its place: answered once the server has
    /// answered what was sent before it. `ownReady`: a simple Query or FunctionCall, which the gate
    /// answers with its own ReadyForQuery (nothing went upstream).
    mutating func refuse(ownReady: Bool, countRefusal: Bool) -> ClientAction {
        relay.expected.append(.refusal(relay.lastDenial, ownReady: ownReady))
        return .refuse(countRefusal: countRefusal)
    }

    /// The refusal at the head of what the server owes, if its turn has come; call until nil.
    /// `ready`: the transaction status for the gate's own ReadyForQuery after it, when it has one.
    mutating func nextDueRefusal() -> (message: String, ready: PostgresBackendMessage.TransactionStatus?)? {
        guard relay.confirmed.ending == nil, case .refusal(let message, let ownReady)? = relay.expected.first else { return nil }
        relay.expected.removeFirst()
        return (message, ownReady ? relay.transactionStatus : nil)
    }

    /// After a client message went upstream: what the server will answer for it.
    private mutating func forwarded(_ message: PostgresFrontendMessage, exchange: UInt64) {
        if let expectation = Self.expectation(for: message) { relay.expected.append(expectation) }
        noteForwarded(message, exchange: exchange)
    }

    /// What the server will answer for a message the gate forwards.
    static func expectation(for message: PostgresFrontendMessage) -> RelayState.Expectation? {
        switch message {
        case .query, .functionCall: .query
        case .parse: .parse
        case .bind: .bind
        case .close: .close
        case .describe: .describe
        case .execute: .execute
        case .sync: .sync
        default: nil
        }
    }

    /// The SQL an Execute of `statement` runs: its Parse text, or for a statement PREPAREd in SQL
    /// (or one the gate never saw parsed) an EXECUTE of it, which inspection resolves or treats as
    /// unknown (a write, with results masked as untraceable).
    func statementText(_ statement: String?) -> String {
        if let statement, let text = relay.statements[statement] { return text }
        // A pending Parse of a name SQL PREPARE holds fails (the server keeps the PREPAREd one).
        if let statement, sql?.prepared[statement] == nil, sql?.hiddenCodeRan != true,
           let text = relay.confirmed.pendingParses[statement] { return text }
        return "EXECUTE \"" + (statement ?? "").replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    // MARK: Ending

    /// How the session goes on ending after `end(_:)`.
    enum EndStep {
        /// It was already ending: the first reason stands.
        case alreadyEnding
        /// It ends once the server has answered what was forwarded. `sendSync`: the forwarded
        /// messages are an extended batch without its Sync, which the server answers only at one
        /// (and the client may never send it): the gate sends one, already counted as forwarded.
        case awaitAnswers(sendSync: Bool)
    }

    /// The session must end once the server has answered what was already forwarded (see
    /// `ConfirmedSessionState.Ending`); nothing new is forwarded meanwhile.
    mutating func end(_ ending: ConfirmedSessionState.Ending) -> EndStep {
        guard relay.confirmed.end(ending) else { return .alreadyEnding }
        guard relay.confirmed.awaitsSync else { return .awaitAnswers(sendSync: false) }
        relay.syncSequence += 1
        relay.expected.append(.sync)
        relay.confirmed.forwarded(.sync)
        return .awaitAnswers(sendSync: true)
    }

    /// An ending session whose forwarded requests are all answered: how it ends, now.
    var endingNow: ConfirmedSessionState.Ending? {
        guard let ending = relay.confirmed.ending, relay.confirmed.isAnswered else { return nil }
        return ending
    }

    /// The prepared-statement plan cache (see `RelayState.ResultPlan`), kept per statement name so
    /// that a new Parse or a Close of the name drops it.
    func resultPlan(_ statement: String) -> RelayState.ResultPlan? { relay.resultPlans[statement] }

    mutating func keepResultPlan(_ plan: RelayState.ResultPlan, for statement: String) {
        if relay.resultPlans.count >= 256 { relay.resultPlans.removeAll(keepingCapacity: true) }
        relay.resultPlans[statement] = plan
    }
}

extension PostgresFrontendMessage {
    /// After an error in an extended-protocol batch PostgreSQL discards messages until Sync; the
    /// gate does the same with a batch it refused, so the server never sees its remainder.
    var isSkippedAfterError: Bool {
        switch self {
        case .parse, .bind, .describe, .execute, .close, .flush: true
        default: false
        }
    }
}
