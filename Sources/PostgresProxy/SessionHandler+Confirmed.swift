import CaptureFormat
import Logging
import NIOCore
import PostgresWire

/// The session handler's side of `ConfirmedSessionState`: it tells the state machine what was
/// forwarded, applies what the server's answers confirm, and ends the session on a divergence.
extension PostgresSessionHandler {
    /// After a client message was forwarded upstream.
    func noteForwarded(_ message: PostgresFrontendMessage) {
        let sent: ConfirmedSessionState.Sent?
        switch message {
        case .query:
            let planned = sqlInspection?.lastPlanned ?? []
            forgetPortals(closedOrDeclaredBy: planned)
            sent = .query(exchange: core.exchanges, statements: planned)
        case .parse(let name, let query, _): sent = .parse(name: name, text: query)
        case .bind(let bind): sent = .bind(portal: bind.portal)
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

    /// How the protocol side holds a statement name, for SQL PREPARE and DEALLOCATE.
    func protocolStatementState(_ name: String) -> ProtocolStatementState {
        if relay.confirmed.hasPendingChange(statement: name) { return .pending }
        return relay.statements[name] != nil ? .held : .free
    }

    /// Why a Parse of `name` is refused now: a Parse or Close of the name (or a SQL PREPARE or
    /// DEALLOCATE, which share the namespace) that the server has not answered yet.
    func pendingNameRefusal(_ name: String) -> String? {
        guard relay.confirmed.hasPendingChange(statement: name)
            || sqlInspection.map({ $0.pending.prepared[name] != nil || $0.pending.deallocated.contains(name) || $0.pending.allDeallocations > 0 }) == true
        else { return nil }
        return "tollgate: prepared statement \"\(name)\" has a change the server has not confirmed yet; wait for its answer"
    }

    /// A Bind as the gate keeps it: the unnamed portal at once (each Bind replaces it), a named
    /// one once the server confirms it. A named portal the gate holds, or whose Bind is still
    /// unconfirmed, cannot be bound again: refused (the server would refuse the first, and
    /// which portal the second means depends on an answer still to come). False: refused.
    func bindPortal(_ bind: PostgresFrontendMessage.Bind, context: ChannelHandlerContext) -> Bool {
        if !bind.portal.isEmpty, relay.portals[bind.portal] != nil || relay.pendingPortals[bind.portal] != nil
            || relay.confirmed.hasPendingChange(portal: bind.portal) || sqlCursorHeld(bind.portal) {
            // A SQL cursor shares the namespace (SessionHandler+SharedNames).
            relay.lastDenial = sqlCursorHeld(bind.portal)
                ? "tollgate: portal \"\(bind.portal)\" is a cursor DECLAREd in SQL; choose another name"
                : "tollgate: portal \"\(bind.portal)\" exists or has a Bind the server has not confirmed yet; close it or wait for its answer"
            relay.skippingUntilSync = true
            refuse(context, ownReady: false)
            return false
        }
        let portal = RelayState.Portal(statement: bind.statement, text: statementText(bind.statement),
                                       parameters: bind.parameters.enumerated().map { i, p in
                                           Parameter(value: p.map { Array($0.readableBytesView) },
                                                     format: UInt8(truncatingIfNeeded: bind.format(ofParameter: i)))
                                       }, resultFormats: bind.resultFormats, sync: relay.syncSequence + 1)
        if bind.portal.isEmpty {
            relay.portals[""] = portal
            relay.portalDescribed[""] = nil
        } else {
            relay.pendingPortals[bind.portal] = portal
        }
        return true
    }

    /// A statement the server holds now: the unnamed one as sent (each Parse replaces it), a
    /// named one on its ParseComplete (the server took it, so the name was free there, whatever
    /// the gate held under it: SQL PREPARE shares the namespace).
    func registerStatement(_ name: String, text: String) {
        if !name.isEmpty { sqlInspection?.prepared[name] = nil }
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
        defer {
            // A batch answered: named Binds of it that failed are gone.
            if case .readyForQuery = message, !relay.pendingPortals.isEmpty {
                relay.pendingPortals = relay.pendingPortals.filter { relay.confirmed.hasPendingChange(portal: $0.key) }
            }
        }
        for action in relay.confirmed.received(message) {
            switch action {
            case .apply(let s): sqlInspection?.confirmed(s)
            case .drop(let s): sqlInspection?.dropped(s)
            case .registerStatement(let name, let text): if !name.isEmpty { registerStatement(name, text: text) }
            case .forgetStatement(let name): if !name.isEmpty { forgetStatement(name) }
            case .forgetAllStatements:
                for name in relay.statements.keys where !name.isEmpty { forgetStatement(name) }
            case .registerPortal(let name):
                // The server took the Bind, so the name was free there: what it bound is the portal,
                // whatever the gate held under the name before.
                if let p = relay.pendingPortals.removeValue(forKey: name) {
                    relay.portals[name] = p
                    relay.portalDescribed[name] = nil
                }
            case .dropPortal:
                // Kept until the batch's ReadyForQuery (below): an Execute of it later in the batch,
                // which the server skips, is still recorded as what it was bound to.
                break
            case .portalsEnded:
                relay.portals.removeAll(keepingCapacity: true)
                relay.portalDescribed.removeAll(keepingCapacity: true)
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
        endAfterAnswers(context, .init(code: "42501", message: "tollgate: the database ran something other than what the gate decided on (statement \(d.statement + 1): "
                                       + "expected \(d.expected), the database answered \(d.actual)); the session was ended", reason: "divergence"))
    }

    /// The server reports a lexing setting the gate cannot read with, mid-session: from here on
    /// the gate would misread statements, so the session ends, after the requests already
    /// forwarded are answered and their tags checked.
    func lexingChanged(_ refusal: String, context: ChannelHandlerContext) {
        gate.logger.error("session ending: the database reads statements differently from the gate",
                          metadata: ["target": "\(target.name)", "session": "\(session?.sessionID ?? "")", "reason": "\(refusal)"])
        endAfterAnswers(context, .init(code: "0A000", message: "tollgate: \(refusal); the session is ended", reason: "lexing-settings-changed"))
    }

    /// Ends the session once the server has answered every request already forwarded (each
    /// answer recorded, each tag checked: a write hidden in a pipelined request is caught by its
    /// tag even though the session was already ending). Meanwhile nothing new is forwarded and
    /// nothing more reaches the client (the gate's reading of those requests may be wrong). A
    /// server that does not answer within the target's idle timeout does not hold the end back.
    func endAfterAnswers(_ context: ChannelHandlerContext, _ ending: ConfirmedSessionState.Ending) {
        guard state == .relaying, relay.confirmed.end(ending) else { return }
        if relay.confirmed.awaitsSync {
            // An extended batch is answered only at its Sync, which the client may never send.
            do { try PostgresFrontendMessage.sync.encode(into: &upstreamOut) } catch {
                return fail(context, code: ending.code, ending.message, reason: ending.reason)
            }
            relay.syncSequence += 1
            relay.expected.append(.sync)
            relay.confirmed.forwarded(.sync)
            flushUpstream()
        }
        if endIfAnswered() { return }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .nanoseconds(target.idleTimeout.nanoseconds)) {
            let session = handler.value
            guard session.state == .relaying, let ending = session.relay.confirmed.ending, let context = session.context else { return }
            session.gate.logger.error("the database did not answer the requests already forwarded; ending the session without their answers",
                                      metadata: ["target": "\(session.target.name)", "session": "\(session.session?.sessionID ?? "")"])
            session.fail(context, code: ending.code, ending.message, reason: ending.reason)
        }
    }

    /// An ending session whose requests are all answered ends now. True when it ended.
    @discardableResult
    func endIfAnswered() -> Bool {
        guard state == .relaying, let ending = relay.confirmed.ending, relay.confirmed.isAnswered, let context else { return false }
        fail(context, code: ending.code, ending.message, reason: ending.reason)
        return true
    }
}
