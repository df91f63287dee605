import NIOCore
import PostgresWire
import SQLInspection

/// What the gate forwarded and the server has not answered yet, and what each answer confirms
/// (issue 17): the gate's reading of the session (prepared statements, cursors, temp tables,
/// search_path, protocol-level statements) changes only once the server says the change
/// happened, and every command tag is checked against the statement kind the gate decided on.
/// A value type fed the messages the gate forwards and the server's answers; it returns what to
/// apply, so it is tested with message sequences alone.
struct ConfirmedSessionState {
    /// One statement the gate decided on: its kind (for the tag check) and, when it changes the
    /// session, its facts (applied on its CommandComplete).
    /// The facts sit in an immutable box: `Planned` rides in every `Sent` of the queue below,
    /// which is appended, matched and removed several times per message, and `StatementFacts`
    /// inline made each of those a copy of a few hundred bytes with a retain per field.
    struct Planned {
        var kind: String
        private var box: ChangeBox?
        var change: StatementFacts? {
            get { box?.facts }
            set { box = newValue.map(ChangeBox.init) }
        }
        init(kind: String, change: StatementFacts? = nil) { self.kind = kind; self.box = change.map(ChangeBox.init) }
    }
    final class ChangeBox: Sendable {
        let facts: StatementFacts
        init(_ facts: StatementFacts) { self.facts = facts }
    }

    /// A message the gate forwarded, as far as its answer matters here.
    enum Sent {
        /// A simple Query: one CommandComplete (or EmptyQueryResponse) per statement, then ReadyForQuery.
        case query(exchange: UInt64, statements: [Planned])
        case parse(name: String, text: String)
        case bind(portal: String)
        case describe, sync, functionCall
        case execute(exchange: UInt64, statement: Planned)
        case closeStatement(name: String)
        case closePortal(name: String)
    }

    /// How the transaction that just ended (or went on) ended, for settings and cursors.
    enum TransactionEnd: Equatable {
        /// Committed (or an implicit transaction that succeeded).
        case committed
        /// Rolled back, by ROLLBACK or an error in an implicit transaction; `afterCommit`: a COMMIT
        /// ended an earlier block inside the same exchange, so what to undo cannot be known.
        case rolledBack(afterCommit: Bool)
        /// ROLLBACK TO SAVEPOINT: the transaction goes on without what followed the savepoint.
        case rolledBackToSavepoint
    }

    /// What the session must do for a server message.
    enum Action {
        /// The i-th statement of a request completed: its change is now the server's.
        case apply(StatementFacts)
        /// The i-th statement did not run (an error came first): its change never happened.
        case drop(StatementFacts)
        case registerStatement(name: String, text: String)
        case forgetStatement(name: String)
        /// DEALLOCATE ALL or DISCARD ALL confirmed: no named statement is left, protocol ones included.
        case forgetAllStatements
        /// A named portal's Bind was confirmed (BindComplete): the name now holds what it bound.
        case registerPortal(name: String)
        /// A named portal's Bind did not happen (an error came first): the name holds nothing new.
        case dropPortal(name: String)
        /// A COMMIT or ROLLBACK completed: the transaction's portals are gone (a ROLLBACK TO
        /// SAVEPOINT drops only some; forgetting them all is the safe side: an Execute of a
        /// portal the gate does not know is an unknown write).
        case portalsEnded
        case transactionEnded(TransactionEnd)
        case divergence(Divergence)
    }

    struct Divergence: Equatable, CustomStringConvertible {
        var exchange: UInt64
        /// The statement's position in its request (0-based), or the completion's number when there are more than statements.
        var statement: Int
        var expected: String
        var actual: String
        var description: String { "exchange \(exchange) statement \(statement + 1): expected \(expected), server answered \(actual)" }
    }

    /// What the server owes, in the order the gate sent it.
    private(set) var sent = CircularBuffer<Sent>()
    /// How many completions the head simple Query has had.
    private var completions = 0
    /// Named statements parsed but not yet confirmed: an Execute in the same pipeline runs this
    /// text or, if the Parse fails, nothing (the name was free when the Parse was sent).
    private(set) var pendingParses: [String: String] = [:]
    /// Named statements whose Close is not confirmed: until it is, the name still means the old statement.
    private(set) var pendingCloses: Set<String> = []
    /// Named portals whose Bind is not confirmed yet.
    private(set) var pendingBinds: Set<String> = []
    /// Why the session ends once the server has answered what was already forwarded (a lexing
    /// setting changed, or a divergence): nothing new is forwarded meanwhile, and the answers still
    /// owed are read and checked, so a write hidden in one of them is recorded by its tag.
    struct Ending: Equatable {
        var code: String
        var message: String
        var reason: String
    }
    private(set) var ending: Ending?
    // Since the last ReadyForQuery: how the current transaction is going.
    private var sawError = false
    private var sawRollback = false
    private var sawCommit = false

    /// A named statement with an unconfirmed Parse or Close: a new Parse of it is refused (which
    /// statement it would replace depends on an answer still to come).
    func hasPendingChange(statement name: String) -> Bool {
        pendingParses[name] != nil || pendingCloses.contains(name)
    }

    /// Every forwarded request has had its answer.
    var isAnswered: Bool { sent.isEmpty }

    /// The last messages forwarded are an extended batch without its Sync: the server answers
    /// them only once one comes.
    var awaitsSync: Bool {
        switch sent.last {
        case nil, .sync?, .query?, .functionCall?: false
        default: true
        }
    }

    /// The session must end, once what was forwarded is answered. The first reason stands.
    /// Returns whether this starts the end (false: it was already ending).
    mutating func end(_ reason: Ending) -> Bool {
        guard ending == nil else { return false }
        ending = reason
        return true
    }

    /// A named portal with an unconfirmed Bind: a second Bind of it is refused (whether the
    /// server takes it depends on an answer still to come).
    func hasPendingChange(portal name: String) -> Bool { pendingBinds.contains(name) }

    mutating func forwarded(_ message: Sent) {
        switch message {
        case .bind(let portal) where !portal.isEmpty: pendingBinds.insert(portal)
        case .parse(let name, let text) where !name.isEmpty: pendingParses[name] = text
        case .closeStatement(let name) where !name.isEmpty: pendingCloses.insert(name)
        default: break
        }
        sent.append(message)
    }

    /// Takes one server message; returns what it confirms, drops, or finds divergent.
    mutating func received(_ message: PostgresBackendMessage) -> [Action] {
        var actions: [Action] = []
        switch message {
        case .commandComplete(let tag):
            complete(tag: tag, into: &actions)
        case .emptyQueryResponse:
            complete(tag: nil, into: &actions)
        case .portalSuspended:
            if case .execute? = sent.first { sent.removeFirst() }
        case .parseComplete:
            if case .parse(let name, let text)? = sent.first {
                sent.removeFirst()
                pendingParses[name] = nil
                actions.append(.registerStatement(name: name, text: text))
            }
        case .bindComplete:
            if case .bind(let portal)? = sent.first {
                sent.removeFirst()
                if !portal.isEmpty {
                    pendingBinds.remove(portal)
                    actions.append(.registerPortal(name: portal))
                }
            }
        case .closeComplete:
            if case .closeStatement(let name)? = sent.first {
                sent.removeFirst()
                pendingCloses.remove(name)
                actions.append(.forgetStatement(name: name))
            } else if case .closePortal? = sent.first {
                sent.removeFirst()
            }
        case .rowDescription, .noData:
            if case .describe? = sent.first { sent.removeFirst() }
        case .functionCallResponse:
            break  // the FunctionCall is answered by ReadyForQuery
        case .errorResponse:
            sawError = true
            failed(into: &actions)
        case .readyForQuery(let status):
            ready(status, into: &actions)
        default:
            break
        }
        return actions
    }

    /// A CommandComplete (tag) or EmptyQueryResponse (nil) for the head request.
    private mutating func complete(tag: String?, into actions: inout [Action]) {
        // The tag's verb, read once (without allocating) for the transaction's end and the check.
        let verb = tag.map(CommandTags.verbSlice(of:))
        if let tag, let word = verb {
            if word == "ROLLBACK" { sawRollback = true }
            if word == "COMMIT" { sawCommit = true }
            if word == "COMMIT" || word == "ROLLBACK" || tag == "PREPARE TRANSACTION" { actions.append(.portalsEnded) }
        }
        switch sent.first {
        case .query(let exchange, let statements)?:
            let i = completions
            completions += 1
            guard i < statements.count else {
                // More completions than the gate found statements: the server read another request.
                if !(statements.isEmpty && tag == nil && i == 0) {
                    actions.append(.divergence(Divergence(exchange: exchange, statement: i,
                                                          expected: "\(statements.count) statement(s)", actual: tag ?? "an empty query")))
                }
                return
            }
            check(statements[i], tag: tag, verb: verb, exchange: exchange, index: i, into: &actions)
        case .execute(let exchange, let statement)?:
            sent.removeFirst()
            check(statement, tag: tag, verb: verb, exchange: exchange, index: 0, into: &actions)
        default:
            break
        }
    }

    private func check(_ statement: Planned, tag: String?, verb: Substring?, exchange: UInt64, index: Int, into actions: inout [Action]) {
        if let tag, let verb, !CommandTags.matches(kind: statement.kind, verb: verb) {
            actions.append(.divergence(Divergence(exchange: exchange, statement: index, expected: statement.kind, actual: tag)))
            return
        }
        if tag == nil, statement.kind != "empty" {
            // An empty-query answer for a statement the gate read: the server read something else.
            actions.append(.divergence(Divergence(exchange: exchange, statement: index, expected: statement.kind, actual: "an empty query")))
            return
        }
        if let change = statement.change {
            // SQL PREPARE/DEALLOCATE and protocol Parse/Close share one namespace on the server:
            // a confirmed PREPARE (the name was free) or DEALLOCATE ends what the gate held under the name.
            if ["prepare", "deallocate"].contains(change.kind), let name = change.preparedName {
                actions.append(.forgetStatement(name: name))
            } else if SQLSessionInspector.deallocatesAll(change) {
                actions.append(.forgetAllStatements)
            }
            actions.append(.apply(change))
        }
    }

    /// An error: what it answers did not happen, and in an extended batch neither does anything
    /// up to the Sync (the server skips it). A simple Query's later statements do not run.
    private mutating func failed(into actions: inout [Action]) {
        guard let head = sent.first else { return }
        switch head {
        case .query(_, let statements):
            // The statement that failed and those after it: none of their changes happened.
            for s in statements.dropFirst(completions) { if let c = s.change { actions.append(.drop(c)) } }
            completions = statements.count
        case .sync, .functionCall:
            break  // answered by ReadyForQuery
        default:
            while let first = sent.first {
                if case .sync = first { break }
                sent.removeFirst()
                switch first {
                case .parse(let name, _): pendingParses[name] = nil
                case .closeStatement(let name): pendingCloses.remove(name)
                case .bind(let portal) where !portal.isEmpty:
                    pendingBinds.remove(portal)
                    actions.append(.dropPortal(name: portal))
                case .execute(_, let s): if let c = s.change { actions.append(.drop(c)) }
                default: break
                }
            }
        }
    }

    private mutating func ready(_ status: PostgresBackendMessage.TransactionStatus, into actions: inout [Action]) {
        switch sent.first {
        case .query(let exchange, let statements)?:
            if completions < statements.count && !sawError {
                // Fewer completions than statements, and no error to explain it: the server read fewer.
                actions.append(.divergence(Divergence(exchange: exchange, statement: completions,
                                                      expected: "\(statements.count) statement(s)", actual: "\(completions) completion(s)")))
            }
            sent.removeFirst()
        case .sync?, .functionCall?:
            sent.removeFirst()
        default:
            break
        }
        completions = 0
        switch status {
        case .idle:
            if sawRollback || sawError { actions.append(.transactionEnded(.rolledBack(afterCommit: sawCommit))) }
            else { actions.append(.transactionEnded(.committed)) }
            sawError = false; sawRollback = false; sawCommit = false
        case .inTransaction:
            // Still in the block after a ROLLBACK: it was ROLLBACK TO SAVEPOINT.
            if sawRollback { actions.append(.transactionEnded(.rolledBackToSavepoint)) }
            sawRollback = false; sawError = false
        default:
            break  // a failed block: it ends with the ROLLBACK still to come
        }
    }
}
