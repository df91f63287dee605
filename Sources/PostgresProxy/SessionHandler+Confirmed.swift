import CaptureFormat
import Logging
import PostgresWire

/// The session handler's side of `ConfirmedSessionState`: it tells the state machine what was
/// forwarded, applies what the server's answers confirm, and ends the session on a divergence.
extension PostgresSessionHandler {
    /// After a client message was forwarded upstream.
    func noteForwarded(_ message: PostgresFrontendMessage) {
        let sent: ConfirmedSessionState.Sent?
        switch message {
        case .query: sent = .query(exchange: core.exchanges, statements: sqlInspection?.lastPlanned ?? [])
        case .parse(let name, let query, _): sent = .parse(name: name, text: query)
        case .bind: sent = .bind
        case .describe: sent = .describe
        case .sync: sent = .sync
        case .functionCall: sent = .functionCall
        case .execute:
            // A Parse holds one statement at most; none is an empty query.
            sent = .execute(exchange: core.exchanges, statement: sqlInspection?.lastPlanned.first ?? .init(kind: "empty"))
        case .close(let kind, let name): sent = kind == .statement ? .closeStatement(name: name) : .closePortal(name: name)
        default: sent = nil
        }
        if let sent { relay.confirmed.forwarded(sent) }
    }

    /// Why a Parse of `name` is refused now: a Parse or Close of the name (or a SQL PREPARE or
    /// DEALLOCATE, which share the namespace) that the server has not answered yet.
    func pendingNameRefusal(_ name: String) -> String? {
        guard relay.confirmed.hasPendingChange(statement: name)
            || sqlInspection.map({ $0.pending.prepared[name] != nil || $0.pending.deallocated.contains(name) }) == true else { return nil }
        return "tollgate: prepared statement \"\(name)\" has a change the server has not confirmed yet; wait for its answer"
    }

    func registerStatement(_ name: String, text: String) {
        // A named statement that exists cannot be parsed again (the server refuses it and keeps
        // the one it has), so the gate keeps it too; the unnamed one is replaced.
        guard name.isEmpty || (relay.statements[name] == nil && sqlInspection?.prepared[name] == nil) else { return }
        relay.statements[name] = text
        relay.described[name] = nil
        // A new statement under the name: its plan (which depends on the statement's select list) no longer applies.
        relay.resultPlans[name] = nil
    }

    func forgetStatement(_ name: String) {
        relay.statements[name] = nil; relay.described[name] = nil; relay.resultPlans[name] = nil
        sqlInspection?.prepared[name] = nil  // SQL PREPARE and protocol statements share one namespace
    }

    /// After an upstream message was handled: what it confirms is applied; a divergence ends the session.
    func confirmAnswered(_ message: PostgresBackendMessage) {
        guard state == .relaying else { return }
        for action in relay.confirmed.received(message) {
            switch action {
            case .apply(let s): sqlInspection?.confirmed(s)
            case .drop(let s): sqlInspection?.dropped(s)
            case .registerStatement(let name, let text): if !name.isEmpty { registerStatement(name, text: text) }
            case .forgetStatement(let name): if !name.isEmpty { forgetStatement(name) }
            case .transactionEnded(let end): sqlInspection?.transactionEnded(end)
            case .divergence(let d):
                diverged(d)
                return
            }
        }
    }

    /// The server ran something other than what the gate decided on: on the record, in the log,
    /// counted, and the session ends (fail closed: the gate no longer knows what the session is).
    func diverged(_ d: ConfirmedSessionState.Divergence) {
        guard let context else { return }
        gate.logger.error("divergence: the server's answer does not match the gate's reading; ending the session",
                          metadata: ["session": "\(session?.sessionID ?? "")", "target": "\(target.name)", "exchange": "\(d.exchange)",
                                     "statement": "\(d.statement + 1)", "expected": "\(d.expected)", "actual": "\(d.actual)"])
        record(.divergence(CaptureFormat.Divergence(statement: UInt64(d.statement), expected: d.expected, actual: d.actual)),
               exchange: d.exchange)
        DivergenceMetrics.count(target: target.name)
        fail(context, code: "42501", "tollgate: the database ran something other than what the gate decided on (statement \(d.statement + 1): "
             + "expected \(d.expected), the database answered \(d.actual)); the session was ended", reason: "divergence")
    }
}
