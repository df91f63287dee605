import SQLInspection

/// What a forwarded request would change in the session, until the server confirms it.
/// PREPAREs and DECLAREs are listed only when their name was free (confirmed and pending): a
/// request pipelined behind one may be decided on it, because should it fail, the name stays
/// free and whatever uses it fails too. A name already taken is not listed: the server refuses
/// the second PREPARE (issue 17's decoy) and keeps the first.
struct PendingChanges {
    var prepared: [String: StatementFacts] = [:]
    var deallocated: Set<String> = []
    /// Unconfirmed DEALLOCATE ALL and DISCARD ALL: while any is pending, which statement any
    /// name holds depends on the answer, so no name may be prepared or parsed again.
    var allDeallocations = 0
    var cursors: [String: StatementFacts] = [:]
    var closedCursors: Set<String> = []
    /// Unconfirmed search_path changes (and RESET ALL, DISCARD ALL): while any is pending,
    /// unqualified names resolve to no schema, since the path depends on the answer.
    var pathChanges = 0
    /// Temporary tables being created: their names resolve to no schema until confirmed.
    var tempTables: Set<String> = []
    /// Unconfirmed ROLLBACKs (and ROLLBACK TO SAVEPOINT): while any is pending, the cursors declared
    /// in the transaction may be gone on the server, so a FETCH does not resolve to them.
    var rollbacks = 0

    var isEmpty: Bool {
        prepared.isEmpty && deallocated.isEmpty && allDeallocations == 0 && cursors.isEmpty && closedCursors.isEmpty && pathChanges == 0
            && tempTables.isEmpty && rollbacks == 0
    }
}

/// How the protocol side holds a prepared statement name (SQL PREPARE and protocol Parse share
/// the server's namespace).
enum ProtocolStatementState {
    case free
    /// A named Parse the server confirmed: a PREPARE of the name fails (42P05).
    case held
    /// A named Parse or Close not yet answered: what the name will hold depends on the answer.
    case pending
}

/// The session state at the end of the last transaction, and what changed in the current one.
struct StableState {
    var searchPath: SearchPath
    var tempTables: Set<String>
    var cursors: Set<String>
    /// search_path changed in this transaction by SET / set_config(…, false), and by SET LOCAL /
    /// set_config(…, true) or a call whose scope the gate cannot read.
    var sessionPathChanged = false
    var localPathChanged = false
    /// Cursors DECLAREd (confirmed) in this transaction: a ROLLBACK or ROLLBACK TO SAVEPOINT may
    /// close any of them (the gate does not follow savepoints), so it forgets them all.
    var declaredCursors: Set<String> = []
}

extension SQLSessionInspector {
    /// Whether a statement changes what later statements mean (its change waits for confirmation).
    func changesSession(_ s: StatementFacts) -> Bool {
        ["prepare", "deallocate", "rollback"].contains(s.kind) || !s.settings.isEmpty || s.isCursorDeclaration || s.isCursorClose
            || createdTempTables(s).first != nil || !temporaryTablesAtStake(s).isEmpty || s.runsHiddenCode
    }

    func createdTempTables(_ s: StatementFacts) -> [String] {
        guard ["create_table", "other_ddl"].contains(s.kind) else { return [] }
        return s.relations.filter { $0.schema == "pg_temp" && $0.access == .write }.map(\.name)
    }

    /// A PREPARE, DEALLOCATE, DECLARE or CLOSE of a name whose last change is not confirmed: which
    /// statement or cursor the name would mean depends on an answer still to come, so it is refused.
    func pendingConflict(_ entry: SQLRequestInspector.Entry) -> String? {
        for s in entry.facts {
            if ["prepare", "deallocate"].contains(s.kind), let name = s.preparedName,
               pending.prepared[name] != nil || pending.deallocated.contains(name) || pending.allDeallocations > 0
               || protocolStatement(name) == .pending {
                return "tollgate: prepared statement \"\(name)\" has a change the server has not confirmed yet; wait for its answer"
            }
            if s.isCursorDeclaration || s.isCursorClose, let name = s.cursorName,
               pending.cursors[name] != nil || pending.closedCursors.contains(name) {
                return "tollgate: cursor \"\(name)\" has a change the server has not confirmed yet; wait for its answer"
            }
            // SQL cursors and protocol portals share one namespace on the server (a FETCH reads a
            // portal, an Execute runs a cursor): a DECLARE of a portal's name is refused, not guessed.
            if s.isCursorDeclaration, let name = s.cursorName, protocolPortal(name) {
                return "tollgate: cursor \"\(name)\" is also a portal this session bound with the extended protocol (Bind); close the portal first"
            }
        }
        return nil
    }

    /// Forwarded: kept as pending.
    func pend(_ s: StatementFacts) {
        if s.runsHiddenCode { forgetHiddenState() }
        var p = pending
        // A name the protocol side holds is not free: the server refuses the PREPARE. After code the
        // gate does not read, no name is known to be free (it may have taken any).
        if s.kind == "prepare", let name = s.preparedName, prepared[name] == nil, protocolStatement(name) == .free, !hiddenCodeRan {
            p.prepared[name] = s
        }
        if s.kind == "deallocate", let name = s.preparedName { p.deallocated.insert(name) }
        if Self.deallocatesAll(s) { p.allDeallocations += 1 }
        if s.isCursorDeclaration, let name = s.cursorName, cursors[name] == nil, !hiddenCodeRan { p.cursors[name] = s }
        if s.isCursorClose, let name = s.cursorName { p.closedCursors.insert(name) }
        if s.kind == "rollback" { p.rollbacks += 1 }
        if s.settings.contains(where: Self.touchesPath) { p.pathChanges += 1 }
        for t in createdTempTables(s) { p.tempTables.insert(t) }
        // Until the server answers, the temporary tables it may drop are of no known schema.
        p.tempTables.formUnion(temporaryTablesAtStake(s))
        pending = p
    }

    /// The session's temporary tables a statement may drop or rename.
    func temporaryTablesAtStake(_ s: StatementFacts) -> Set<String> {
        if s.discardsTemporaryTables { return tempTables }
        guard s.kind == "drop" || s.kind == "other_ddl" else { return [] }
        return Set(s.relations.filter { $0.schema == "pg_temp" && $0.access == .write && tempTables.contains($0.name) }.map(\.name))
    }

    /// DEALLOCATE ALL, or DISCARD ALL (which also deallocates every statement).
    static func deallocatesAll(_ s: StatementFacts) -> Bool {
        (s.kind == "deallocate" && s.preparedName == nil) || (s.kind != "reset" && s.settings.contains { $0.name == "*" })
    }

    static func touchesPath(_ setting: Setting) -> Bool { setting.name == nil || setting.name == "search_path" || setting.name == "*" }

    /// The change is no longer pending: confirmed or not, it is out of the pending set.
    func unpend(_ s: StatementFacts) {
        var p = pending
        if let name = s.preparedName { p.prepared[name] = nil; p.deallocated.remove(name) }
        if Self.deallocatesAll(s) { p.allDeallocations = max(0, p.allDeallocations - 1) }
        if let name = s.cursorName { p.cursors[name] = nil; p.closedCursors.remove(name) }
        if s.kind == "rollback" { p.rollbacks = max(0, p.rollbacks - 1) }
        if s.settings.contains(where: Self.touchesPath) { p.pathChanges = max(0, p.pathChanges - 1) }
        for t in createdTempTables(s) { p.tempTables.remove(t) }
        p.tempTables.subtract(temporaryTablesAtStake(s))
        pending = p
    }

    /// The server did not run it (an error came first, or it failed).
    func dropped(_ s: StatementFacts) {
        unpend(s)
        // Hidden code that failed may still have replaced a prepared statement (not transactional),
        // and what was confirmed before its answer may since have been replaced.
        if s.runsHiddenCode { forgetHiddenState() }
    }

    /// The server confirmed the statement (its CommandComplete): its change is the session's now.
    func confirmed(_ s: StatementFacts) {
        unpend(s)
        // Forgotten when forwarded; again now, since a change confirmed meanwhile (an earlier
        // statement of the same Query) may have been undone by the hidden code.
        if s.runsHiddenCode { forgetHiddenState() }
        followTemporaryTables(s)
        switch s.kind {
        case "prepare":
            // The server took it, so the name was free there: this is what it holds now.
            if let name = s.preparedName { prepared[name] = s }
        case "deallocate":
            if let name = s.preparedName { prepared[name] = nil } else { prepared = [:] }  // DEALLOCATE ALL
        case "rollback":
            // ROLLBACK, or ROLLBACK TO SAVEPOINT: the cursors declared in the transaction may be
            // closed now (those declared after the savepoint are); the gate forgets them all at once,
            // before a DECLARE of one of the names is confirmed (ReadyForQuery comes later).
            forgetDeclaredCursors()
        default:
            if s.isCursorDeclaration, let name = s.cursorName, cursors[name] == nil {
                cursors[name] = s
                stable?.declaredCursors.insert(name)
            }
            if s.isCursorClose, let name = s.cursorName { if name == "*" { cursors = [:] } else { cursors[name] = nil } }
        }
        for t in createdTempTables(s) { tempTables.insert(t) }
        for setting in s.settings {
            switch setting.name {
            case "search_path":
                searchPath = setting.value.map { $0.uppercased() == "DEFAULT" ? startupPath : SearchPath(setting: $0) } ?? startupPath
                // A scope the gate cannot read (set_config's third argument not a constant) counts as both:
                // at the transaction's end the value in force is then unknown.
                if setting.local != false { stable?.localPathChanged = true }
                if setting.local != true { stable?.sessionPathChanged = true }
            case nil:
                // set_config with a name the gate cannot read: any setting, the path included.
                searchPath = .unknown
                stable?.sessionPathChanged = true
            case "*":
                // RESET ALL, DISCARD ALL
                searchPath = startupPath
                stable?.sessionPathChanged = true
                if s.kind != "reset" { prepared = [:]; cursors = [:]; tempTables = [] }
            default:
                break
            }
        }
    }

    /// What the server dropped or renamed of the session's temporary tables: PostgreSQL then reads
    /// those names on the path again. A DROP forgets them, DISCARD TEMP forgets all; any other DDL
    /// on one (a rename) leaves the gate unable to say what the names mean, so the path becomes
    /// unknown (fail closed). Read before the statement's own creations are added.
    func followTemporaryTables(_ s: StatementFacts) {
        if s.discardsTemporaryTables { tempTables = [] }
        guard s.kind == "drop" || s.kind == "other_ddl" else { return }
        let touched = s.relations.filter { $0.schema == "pg_temp" && $0.access == .write && tempTables.contains($0.name) }.map(\.name)
        guard !touched.isEmpty else { return }
        if s.kind == "drop" {
            for t in touched { tempTables.remove(t) }
        } else {
            searchPath = .unknown
            stable?.sessionPathChanged = true
        }
    }

    /// The cursors declared in the current transaction are no longer known (a ROLLBACK or ROLLBACK
    /// TO SAVEPOINT closes some or all of them): a FETCH of one is then of an unknown cursor (its
    /// result masked whole), and a new DECLARE of the name is the one the gate follows.
    func forgetDeclaredCursors() {
        guard let declared = stable?.declaredCursors, !declared.isEmpty else { return }
        for name in declared { cursors[name] = nil }
        stable?.declaredCursors = []
    }

    /// The cursors a FETCH may resolve to: while a ROLLBACK is unanswered, not those declared in the
    /// transaction, nor pending ones (which side of the rollback they fall on depends on the answer).
    func knownCursors() -> [String: StatementFacts] {
        guard pending.rollbacks > 0 else { return cursors.merging(pending.cursors) { confirmed, _ in confirmed } }
        let declared = stable?.declaredCursors ?? []
        return cursors.filter { !declared.contains($0.key) }
    }

    /// A transaction ended (or was rolled back to a savepoint): follow the server.
    func transactionEnded(_ end: ConfirmedSessionState.TransactionEnd) {
        if end != .committed { forgetDeclaredCursors() }
        guard stable != nil else { return }
        // The common case, nothing to follow: read in place (a copy of the state and a set of the
        // cursors' names per transaction were a cost of every transaction, issue 18).
        if end == .committed, !stable!.sessionPathChanged, !stable!.localPathChanged, stable!.tempTables == tempTables,
           stable!.cursors.count == cursors.count, cursors.keys.allSatisfy({ stable!.cursors.contains($0) }) {
            if !stable!.declaredCursors.isEmpty { stable!.declaredCursors = [] }
            return
        }
        guard var before = stable else { return }
        let changed = before.sessionPathChanged || before.localPathChanged
        switch end {
        case .committed:
            // SET LOCAL ends with the transaction; after SET and SET LOCAL both, the value in force is not known.
            if before.localPathChanged { searchPath = before.sessionPathChanged ? .unknown : before.searchPath }
            // Cursors without WITH HOLD end with the transaction; those with it the gate forgets (fail closed).
            cursors = cursors.filter { before.cursors.contains($0.key) }
        case .rolledBack(let afterCommit):
            // A COMMIT earlier in the same exchange kept some of the changes, and the gate cannot tell which.
            if changed { searchPath = afterCommit ? .unknown : before.searchPath }
            tempTables = afterCommit ? tempTables.intersection(before.tempTables) : before.tempTables
            cursors = cursors.filter { before.cursors.contains($0.key) }
        case .rolledBackToSavepoint:
            // What followed the savepoint is undone; the gate does not follow savepoints (fail closed).
            // Cursors declared in the transaction were forgotten above (forgetDeclaredCursors).
            if changed { searchPath = .unknown }
            tempTables = tempTables.intersection(before.tempTables)
            before.tempTables = tempTables
            stable = before
            return
        }
        stable = StableState(searchPath: searchPath, tempTables: tempTables, cursors: Set(cursors.keys))
    }

    /// A statement that runs code the gate does not read is being forwarded (HiddenCode.swift):
    /// whatever that code does to the session, the gate can no longer say what a prepared
    /// statement, cursor or portal name holds, which temporary tables exist, or what the path is.
    /// So it forgets them at once, before the answer (prepared statements are not transactional:
    /// even a failed statement may have replaced one): an EXECUTE, FETCH, Bind or Execute of such
    /// a name is then unresolved (a write, its results masked whole), and unqualified names
    /// resolve to no schema until the next `SET search_path` the gate sees confirmed.
    func forgetHiddenState() {
        hiddenCodeRan = true
        prepared = [:]
        cursors = [:]
        tempTables = []
        searchPath = .unknown
        stable?.sessionPathChanged = true
        hiddenCodeGeneration += 1
    }
}
