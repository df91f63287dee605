import PostgresWire

/// SQL cursors (DECLARE, CLOSE, FETCH) and protocol portals (Bind, Close, Execute) are one
/// namespace on the server: FETCH reads a portal bound with Bind, Execute runs a DECLAREd cursor,
/// and CLOSE or Close ends either. The gate keeps them apart (relay portals, SQL cursors), so a
/// change on one side that the other side would miss is refused or makes that side forget the
/// name (fail closed: a FETCH or Execute of a name the gate does not know is decided as unknown and
/// its result masked whole). Review 2026-12-05, third section.
extension RelayStateMachine {
    /// A portal of this name is bound (confirmed or not): a SQL DECLARE of the name is refused.
    func protocolPortalHeld(_ name: String) -> Bool {
        relay.portals[name] != nil || relay.pendingPortals[name] != nil || relay.confirmed.hasPendingChange(portal: name)
    }

    /// A cursor of this name was DECLAREd in SQL (confirmed or not): a Bind or Close of the name
    /// would create or end what the SQL side reads, so it is refused.
    func sqlCursorHeld(_ name: String) -> Bool {
        guard let sql else { return false }
        return sql.cursors[name] != nil || sql.pending.cursors[name] != nil || sql.pending.closedCursors.contains(name)
    }

    /// A protocol Close of a portal that is a SQL cursor: refused (the SQL side would still read
    /// the closed cursor's query under a name the server frees).
    mutating func refusedPortalClose(_ message: PostgresFrontendMessage) -> ClientAction? {
        guard case .close(let kind, let name) = message, kind == .portal, !name.isEmpty, sqlCursorHeld(name) else { return nil }
        relay.lastDenial = "tollgate: portal \"\(name)\" is a cursor DECLAREd in SQL; close it with CLOSE"
        relay.skippingUntilSync = true
        return refuse(ownReady: false, countRefusal: true)
    }

    /// A forwarded SQL CLOSE or DECLARE of a name ends any protocol portal of that name (CLOSE
    /// ALL every portal) as far as the gate knows, at once: should the server not run it, an
    /// Execute of the name is decided as unknown rather than as what the portal was.
    mutating func forgetPortals(closedOrDeclaredBy planned: [ConfirmedSessionState.Planned]) {
        for case let change? in planned.map(\.change) where change.isCursorClose || change.isCursorDeclaration {
            guard let name = change.cursorName else { continue }
            if name == "*" {
                relay.portals.removeAll(keepingCapacity: true)
                relay.pendingPortals.removeAll(keepingCapacity: true)
                relay.portalDescribed.removeAll(keepingCapacity: true)
            } else {
                relay.portals[name] = nil
                relay.pendingPortals[name] = nil
                relay.portalDescribed[name] = nil
            }
        }
    }
}
