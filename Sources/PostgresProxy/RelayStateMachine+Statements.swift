import CaptureFormat
import PostgresWire
import ProxyCore

/// Prepared statements and portals as the server holds them: what was forwarded is told to
/// `ConfirmedSessionState`, and the gate's reading changes only with what the server's answers confirm.
extension RelayStateMachine {
    /// After a client message was forwarded upstream. `exchange`: the core's number for a Query or Execute.
    mutating func noteForwarded(_ message: PostgresFrontendMessage, exchange: UInt64) {
        let sent: ConfirmedSessionState.Sent?
        switch message {
        case .query:
            let planned = sql?.lastPlanned ?? []
            forgetPortals(closedOrDeclaredBy: planned)
            sent = .query(exchange: exchange, statements: planned)
        case .parse(let name, let query, _): sent = .parse(name: name, text: query)
        case .bind(let bind): sent = .bind(portal: bind.portal)
        case .describe: sent = .describe
        case .sync: sent = .sync
        case .functionCall: sent = .functionCall
        case .execute:
            // A Parse holds one statement at most; none is an empty query.
            sent = .execute(exchange: exchange, statement: sql?.lastPlanned.first ?? .init(kind: "empty"))
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
            || sql.map({ $0.pending.prepared[name] != nil || $0.pending.deallocated.contains(name) || $0.pending.allDeallocations > 0 }) == true
        else { return nil }
        return "tollgate: prepared statement \"\(name)\" has a change the server has not confirmed yet; wait for its answer"
    }

    /// A Bind as the gate keeps it: the unnamed portal at once (each Bind replaces it), a named
    /// one once the server confirms it. A named portal the gate holds, or whose Bind is still
    /// unconfirmed, cannot be bound again: refused (the server would refuse the first, and
    /// which portal the second means depends on an answer still to come). False: refused
    /// (`relay.lastDenial` says why).
    mutating func bindPortal(_ bind: PostgresFrontendMessage.Bind) -> Bool {
        if !bind.portal.isEmpty, relay.portals[bind.portal] != nil || relay.pendingPortals[bind.portal] != nil
            || relay.confirmed.hasPendingChange(portal: bind.portal) || sqlCursorHeld(bind.portal) {
            // A SQL cursor shares the namespace (RelayStateMachine+SharedNames).
            relay.lastDenial = sqlCursorHeld(bind.portal)
                ? "tollgate: portal \"\(bind.portal)\" is a cursor DECLAREd in SQL; choose another name"
                : "tollgate: portal \"\(bind.portal)\" exists or has a Bind the server has not confirmed yet; close it or wait for its answer"
            return false
        }
        relay.serial += 1
        let types = relay.parameterTypes[bind.statement] ?? []
        let portal = RelayState.Portal(statement: bind.statement, text: statementText(bind.statement),
                                       parameters: bind.parameters.enumerated().map { i, p in
                                           Parameter(value: p.map { Array($0.readableBytesView) },
                                                     format: UInt8(truncatingIfNeeded: bind.format(ofParameter: i)),
                                                     typeOID: i < types.count ? types[i] : 0)
                                       }, resultFormats: bind.resultFormats, sync: relay.syncSequence + 1, serial: relay.serial,
                                       statementSerial: relay.parsed[bind.statement] ?? 0)
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
    mutating func registerStatement(_ name: String, text: String) {
        if !name.isEmpty { sql?.prepared[name] = nil }
        relay.statements[name] = text
        relay.described[name] = nil
        // A new statement under the name: its plan (which depends on the statement's select list) no longer applies.
        relay.resultPlans[name] = nil
    }

    mutating func forgetStatement(_ name: String) {
        relay.statements[name] = nil; relay.described[name] = nil; relay.resultPlans[name] = nil
        if !name.isEmpty { relay.parsed[name] = nil; relay.parameterTypes[name] = nil }
        sql?.prepared[name] = nil  // SQL PREPARE and protocol statements share one namespace
    }

    /// What a server message confirms is applied; a divergence is returned (the session ends).
    mutating func confirmAnswered(_ message: PostgresBackendMessage) -> ConfirmedSessionState.Divergence? {
        defer {
            // A batch answered: named Binds of it that failed are gone.
            if case .readyForQuery = message, !relay.pendingPortals.isEmpty {
                let confirmed = relay.confirmed
                relay.pendingPortals = relay.pendingPortals.filter { confirmed.hasPendingChange(portal: $0.key) }
            }
        }
        for action in relay.confirmed.received(message) {
            switch action {
            case .apply(let s): sql?.confirmed(s); followHiddenCode()
            case .drop(let s): sql?.dropped(s); followHiddenCode()
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
                // Kept until the batch's ReadyForQuery (above): an Execute of it later in the batch,
                // which the server skips, is still recorded as what it was bound to.
                break
            case .portalsEnded:
                relay.portals.removeAll(keepingCapacity: true)
                relay.portalDescribed.removeAll(keepingCapacity: true)
            case .transactionEnded(let end): sql?.transactionEnded(end)
            case .divergence(let d):
                return d
            }
        }
        return nil
    }
}

extension PostgresFrontendMessage.Bind {
    /// The format of parameter `i`: none listed means text, one applies to all.
    func format(ofParameter i: Int) -> Int16 {
        parameterFormats.isEmpty ? 0 : parameterFormats.count == 1 ? parameterFormats[0] : (i < parameterFormats.count ? parameterFormats[i] : 0)
    }
}
