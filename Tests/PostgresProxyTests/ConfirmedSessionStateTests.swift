import CaptureFormat
import Metrics
import MetricsTestKit
import PostgresWire
import ProxyCore
import SQLInspection
import Testing
@testable import PostgresProxy

/// The session state changes only when the server confirms it, and every command tag is checked
/// against the statement kind the gate decided on: message sequences written here, no sockets.
@Suite struct ConfirmedSessionStateTests {
    /// A session's SQL inspection and its confirmation state, driven as the session handler drives them.
    final class Session {
        let inspector = SQLSessionInspector(inspector: SQLRequestInspector(), catalog: nil, searchPath: SearchPath(schemas: ["public"]))
        let context = SessionContext(sessionID: "s", target: "db", subject: "u", groups: [], clientAddress: "", applicationName: "")
        var state = ConfirmedSessionState()
        var exchange: UInt64 = 0
        var divergences: [ConfirmedSessionState.Divergence] = []
        var registered: [String: String] = [:]

        func inspect(_ text: String) -> InspectedRequest {
            inspector.inspect(.postgres(PostgresRequest(text: text, path: .simple)), in: context)
        }

        /// A simple Query the gate allowed and forwarded.
        @discardableResult
        func send(_ text: String) -> InspectedRequest {
            exchange += 1
            let inspected = inspect(text)
            inspector.forwarded(inspected)
            state.forwarded(.query(exchange: exchange, statements: inspector.lastPlanned))
            return inspected
        }

        func answer(_ messages: PostgresBackendMessage...) {
            for m in messages {
                for action in state.received(m) {
                    switch action {
                    case .apply(let s): inspector.confirmed(s)
                    case .drop(let s): inspector.dropped(s)
                    case .registerStatement(let name, let text): registered[name] = text; inspector.prepared[name] = nil
                    case .forgetStatement(let name): registered[name] = nil; inspector.prepared[name] = nil
                    case .forgetAllStatements: registered = registered.filter { $0.key.isEmpty }
                    case .registerPortal, .dropPortal, .portalsEnded: break
                    case .transactionEnded(let end): inspector.transactionEnded(end)
                    case .divergence(let d): divergences.append(d)
                    }
                }
            }
        }

        init() {
            // The protocol side of the namespace, as the session handler reports it.
            inspector.protocolStatement = { [unowned self] name in
                state.hasPendingChange(statement: name) ? .pending : registered[name] != nil ? .held : .free
            }
        }

        /// A named Parse the gate forwarded.
        func parse(_ name: String, _ text: String) { state.forwarded(.parse(name: name, text: text)) }

        /// The first refusal the inspection of `text` carries, if any.
        func refusal(_ text: String) -> String? { inspect(text).statements.compactMap(\.parseError).first }

        /// The tables a statement text would be decided on now.
        func tables(_ text: String) -> [String] {
            inspect(text).statements.flatMap(\.resources).map { "\($0.schema).\($0.name)" }
        }
    }

    func error(_ message: String = "failed") -> PostgresBackendMessage {
        .errorResponse(.init(severity: "ERROR", sqlState: "42P05", message: message))
    }

    @Test func aRejectedSecondPrepareDoesNotReplaceTheFirst() {
        let s = Session()
        s.send("PREPARE p AS SELECT * FROM confirm_real")
        s.answer(.commandComplete(tag: "PREPARE"), .readyForQuery(.idle))
        // The decoy: the server refuses it (the name is taken), so the gate must keep the first.
        s.send("PREPARE p AS SELECT 1 FROM confirm_decoy")
        s.answer(error("prepared statement \"p\" already exists"), .readyForQuery(.idle))
        #expect(s.tables("EXECUTE p") == ["public.confirm_real"])
        #expect(s.divergences.isEmpty)
    }

    @Test func aPrepareTheServerRefusesIsNeverApplied() {
        let s = Session()
        s.send("PREPARE q AS SELECT * FROM confirm_a")
        s.answer(error(), .readyForQuery(.idle))
        // Unknown to the gate: EXECUTE q is an unresolved execute (decided as an unknown write).
        #expect(s.inspect("EXECUTE q").statements.first?.kind == "execute")
    }

    @Test func anExecutePipelinedBehindItsPrepareIsDecidedOnIt() {
        let s = Session()
        s.send("PREPARE p AS SELECT * FROM confirm_t")
        // Before the answer: the name was free, so if the PREPARE fails the EXECUTE fails too.
        let execute = s.send("EXECUTE p")
        #expect(execute.statements.first?.resources.map(\.name) == ["confirm_t"])
        s.answer(.commandComplete(tag: "PREPARE"), .readyForQuery(.idle), .commandComplete(tag: "SELECT 0"), .readyForQuery(.idle))
        #expect(s.divergences.isEmpty)
        #expect(s.tables("EXECUTE p") == ["public.confirm_t"])
    }

    @Test func aSecondPrepareOfAPendingNameIsRefused() {
        let s = Session()
        s.send("PREPARE p AS SELECT * FROM confirm_t")
        #expect(s.inspect("PREPARE p AS SELECT 1").statements.first?.kind == "unparseable")
        s.answer(.commandComplete(tag: "PREPARE"), .readyForQuery(.idle))
        #expect(s.inspect("DEALLOCATE p").statements.first?.kind == "deallocate")
    }

    @Test func aCursorDeclaredTwiceKeepsTheFirst() {
        let s = Session()
        s.send("BEGIN")
        s.answer(.commandComplete(tag: "BEGIN"), .readyForQuery(.inTransaction))
        s.send("DECLARE c CURSOR FOR SELECT * FROM confirm_real")
        s.answer(.commandComplete(tag: "DECLARE CURSOR"), .readyForQuery(.inTransaction))
        s.send("DECLARE c CURSOR FOR SELECT * FROM confirm_decoy")
        s.answer(error("cursor \"c\" already exists"), .readyForQuery(.failed))
        #expect(s.tables("FETCH c") == ["public.confirm_real"])
        // The block ends: a cursor without WITH HOLD ends with it.
        s.send("ROLLBACK")
        s.answer(.commandComplete(tag: "ROLLBACK"), .readyForQuery(.idle))
        #expect(s.inspector.cursors.isEmpty)
    }

    /// Review 2026-12-05: a cursor declared inside a savepoint is closed by ROLLBACK TO, so a new
    /// DECLARE of its name succeeds on the server; the gate must follow the new one, not keep the first.
    @Test func aCursorRolledBackToASavepointIsForgotten() {
        let s = Session()
        s.send("BEGIN")
        s.answer(.commandComplete(tag: "BEGIN"), .readyForQuery(.inTransaction))
        s.send("SAVEPOINT sp")
        s.answer(.commandComplete(tag: "SAVEPOINT"), .readyForQuery(.inTransaction))
        s.send("DECLARE c CURSOR FOR SELECT * FROM confirm_decoy")
        s.answer(.commandComplete(tag: "DECLARE CURSOR"), .readyForQuery(.inTransaction))
        s.send("ROLLBACK TO SAVEPOINT sp")
        s.answer(.commandComplete(tag: "ROLLBACK"), .readyForQuery(.inTransaction))
        #expect(s.inspector.cursors["c"] == nil)
        s.send("DECLARE c CURSOR FOR SELECT * FROM confirm_real")
        s.answer(.commandComplete(tag: "DECLARE CURSOR"), .readyForQuery(.inTransaction))
        #expect(s.tables("FETCH c") == ["public.confirm_real"])
        #expect(s.divergences.isEmpty)
    }

    /// The same pipelined: while the ROLLBACK TO is unanswered, a FETCH resolves to no cursor of
    /// the transaction (which side of the rollback each falls on depends on the answer).
    @Test func aFetchBehindAnUnansweredRollbackKnowsNoCursorOfTheTransaction() {
        let s = Session()
        s.send("BEGIN")
        s.answer(.commandComplete(tag: "BEGIN"), .readyForQuery(.inTransaction))
        s.send("SAVEPOINT sp; DECLARE c CURSOR FOR SELECT * FROM confirm_decoy")
        s.answer(.commandComplete(tag: "SAVEPOINT"), .commandComplete(tag: "DECLARE CURSOR"), .readyForQuery(.inTransaction))
        #expect(s.tables("FETCH c") == ["public.confirm_decoy"])
        s.send("ROLLBACK TO SAVEPOINT sp")
        s.send("DECLARE c CURSOR FOR SELECT * FROM confirm_real")
        #expect(s.tables("FETCH c").isEmpty)
        #expect(s.tables("ROLLBACK TO sp; FETCH c").isEmpty)
        s.answer(.commandComplete(tag: "ROLLBACK"), .readyForQuery(.inTransaction))
        s.answer(.commandComplete(tag: "DECLARE CURSOR"), .readyForQuery(.inTransaction))
        #expect(s.tables("FETCH c") == ["public.confirm_real"])
    }

    /// An error aborts the block; ROLLBACK TO ends the abort and closes the cursors after the savepoint.
    @Test func aCursorIsForgottenAfterAnErrorAndRollbackTo() {
        let s = Session()
        s.send("BEGIN; SAVEPOINT sp")
        s.answer(.commandComplete(tag: "BEGIN"), .commandComplete(tag: "SAVEPOINT"), .readyForQuery(.inTransaction))
        s.send("DECLARE c CURSOR FOR SELECT * FROM confirm_decoy")
        s.answer(.commandComplete(tag: "DECLARE CURSOR"), .readyForQuery(.inTransaction))
        s.send("SELECT 1/0")
        s.answer(error("division by zero"), .readyForQuery(.failed))
        s.send("ROLLBACK TO sp")
        s.answer(.commandComplete(tag: "ROLLBACK"), .readyForQuery(.inTransaction))
        #expect(s.inspector.cursors["c"] == nil)
    }

    @Test func searchPathSetInARolledBackTransactionIsUndone() {
        let s = Session()
        s.send("BEGIN")
        s.answer(.commandComplete(tag: "BEGIN"), .readyForQuery(.inTransaction))
        s.send("SET search_path TO confirm_other")
        // Not confirmed yet: the path depends on the answer, so unqualified names resolve to no schema.
        #expect(s.tables("SELECT * FROM x") == [".x"])
        s.answer(.commandComplete(tag: "SET"), .readyForQuery(.inTransaction))
        #expect(s.tables("SELECT * FROM x") == ["confirm_other.x"])
        s.send("ROLLBACK")
        s.answer(.commandComplete(tag: "ROLLBACK"), .readyForQuery(.idle))
        #expect(s.tables("SELECT * FROM x") == ["public.x"])
    }

    @Test func anErrorInAnImplicitTransactionUndoesItsSet() {
        let s = Session()
        s.send("SET search_path TO confirm_other; SELECT 1/0")
        s.answer(.commandComplete(tag: "SET"), error("division by zero"), .readyForQuery(.idle))
        #expect(s.tables("SELECT * FROM x") == ["public.x"])
    }

    @Test func setLocalEndsWithTheTransaction() {
        let s = Session()
        s.send("BEGIN")
        s.answer(.commandComplete(tag: "BEGIN"), .readyForQuery(.inTransaction))
        s.send("SET LOCAL search_path TO confirm_other")
        s.answer(.commandComplete(tag: "SET"), .readyForQuery(.inTransaction))
        #expect(s.tables("SELECT * FROM x") == ["confirm_other.x"])
        s.send("COMMIT")
        s.answer(.commandComplete(tag: "COMMIT"), .readyForQuery(.idle))
        #expect(s.tables("SELECT * FROM x") == ["public.x"])
        // A committed SET stays.
        s.send("BEGIN; SET search_path TO confirm_other; COMMIT")
        s.answer(.commandComplete(tag: "BEGIN"), .commandComplete(tag: "SET"), .commandComplete(tag: "COMMIT"), .readyForQuery(.idle))
        #expect(s.tables("SELECT * FROM x") == ["confirm_other.x"])
    }

    @Test func rollbackToSavepointMakesAChangedPathUnknown() {
        let s = Session()
        s.send("BEGIN; SAVEPOINT a; SET search_path TO confirm_other; ROLLBACK TO SAVEPOINT a")
        s.answer(.commandComplete(tag: "BEGIN"), .commandComplete(tag: "SAVEPOINT"), .commandComplete(tag: "SET"), .commandComplete(tag: "ROLLBACK"),
                 .readyForQuery(.inTransaction))
        #expect(s.tables("SELECT * FROM x") == [".x"])
        #expect(s.divergences.isEmpty)
    }

    @Test func aDroppedTemporaryTableIsReadOnThePathAgain() {
        let s = Session()
        s.send("CREATE TEMP TABLE confirm_t (a int)")
        s.answer(.commandComplete(tag: "CREATE TABLE"), .readyForQuery(.idle))
        #expect(s.tables("SELECT * FROM confirm_t") == ["pg_temp.confirm_t"])
        s.send("DROP TABLE confirm_t")
        // Until the server answers, the name is of no known schema.
        #expect(s.tables("SELECT * FROM confirm_t") == [".confirm_t"])
        s.answer(.commandComplete(tag: "DROP TABLE"), .readyForQuery(.idle))
        #expect(s.tables("SELECT * FROM confirm_t") == ["public.confirm_t"])
    }

    @Test func aDropTheServerRefusedKeepsTheTemporaryTable() {
        let s = Session()
        s.send("CREATE TEMP TABLE confirm_t (a int)")
        s.answer(.commandComplete(tag: "CREATE TABLE"), .readyForQuery(.idle))
        s.send("DROP TABLE confirm_t")
        s.answer(error("cannot drop"), .readyForQuery(.idle))
        #expect(s.tables("SELECT * FROM confirm_t") == ["pg_temp.confirm_t"])
    }

    @Test func discardTempForgetsEveryTemporaryTable() {
        let s = Session()
        s.send("CREATE TEMP TABLE confirm_t (a int); CREATE TEMP TABLE confirm_u (a int)")
        s.answer(.commandComplete(tag: "CREATE TABLE"), .commandComplete(tag: "CREATE TABLE"), .readyForQuery(.idle))
        s.send("DISCARD TEMP")
        #expect(s.tables("SELECT * FROM confirm_u") == [".confirm_u"])
        s.answer(.commandComplete(tag: "DISCARD TEMP"), .readyForQuery(.idle))
        #expect(s.tables("SELECT * FROM confirm_t") == ["public.confirm_t"])
        #expect(s.tables("SELECT * FROM confirm_u") == ["public.confirm_u"])
        #expect(s.divergences.isEmpty)
    }

    @Test func aRenamedTemporaryTableLeavesNamesUnknown() {
        let s = Session()
        s.send("CREATE TEMP TABLE confirm_t (a int)")
        s.answer(.commandComplete(tag: "CREATE TABLE"), .readyForQuery(.idle))
        s.send("ALTER TABLE confirm_t RENAME TO confirm_v")
        s.answer(.commandComplete(tag: "ALTER TABLE"), .readyForQuery(.idle))
        // confirm_v is a temporary table now, which the gate did not see created: no name is known.
        #expect(s.tables("SELECT * FROM confirm_v") == [".confirm_v"])
    }

    @Test func aWriteTagForASelectIsADivergence() {
        let s = Session()
        s.send("SELECT 'a\\' , ' ; DELETE FROM t; -- '")
        s.answer(.commandComplete(tag: "SELECT 1"), .commandComplete(tag: "DELETE 1"), .readyForQuery(.idle))
        #expect(s.divergences.count == 1)
        #expect(s.divergences.first?.actual == "DELETE 1")
        let t = Session()
        t.send("SELECT 1")
        t.answer(.commandComplete(tag: "DELETE 1"), .readyForQuery(.idle))
        #expect(t.divergences.first?.expected == "select")
    }

    @Test func fewerCompletionsThanStatementsWithoutAnErrorIsADivergence() {
        let s = Session()
        s.send("SELECT 1; SELECT 2")
        s.answer(.commandComplete(tag: "SELECT 1"), .readyForQuery(.idle))
        #expect(s.divergences.count == 1)
    }

    @Test func theProjectsOwnTagsAreNotDivergences() {
        let s = Session()
        let cases: [(String, [String])] = [
            ("EXPLAIN DELETE FROM t", ["EXPLAIN"]),
            ("CREATE TABLE confirm_x AS SELECT 1", ["SELECT 1"]),
            ("SELECT 1 INTO confirm_y", ["SELECT 1"]),
            ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", ["SELECT 3"]),
            ("COPY t TO STDOUT", ["COPY 2"]),
            ("INSERT INTO t VALUES (1)", ["INSERT 0 1"]),
            ("BEGIN; COMMIT", ["BEGIN", "COMMIT"]),
            ("COMMIT", ["ROLLBACK"]),
            ("SET application_name = 'x'", ["SET"]),
            ("DISCARD ALL", ["DISCARD ALL"]),
            ("CREATE TEMP TABLE confirm_tmp (a int)", ["CREATE TABLE"]),
            ("DROP TABLE IF EXISTS confirm_x", ["DROP TABLE"]),
            ("ALTER TABLE t ADD COLUMN b int", ["ALTER TABLE"]),
            ("TRUNCATE t", ["TRUNCATE TABLE"]),
            ("SHOW search_path", ["SHOW"]),
            ("SELECT set_config('application_name', 'x', false)", ["SELECT 1"]),
            ("CREATE MATERIALIZED VIEW confirm_mv AS SELECT 1", ["SELECT 1"]),
        ]
        for (text, tags) in cases {
            s.send(text)
            for tag in tags { s.answer(.commandComplete(tag: tag)) }
            s.answer(.readyForQuery(.idle))
            #expect(s.divergences.isEmpty, "\(text)")
        }
    }

    @Test func commandTagsAreExactForWrites() {
        #expect(CommandTags.matches(kind: "update", tag: "UPDATE 3"))
        #expect(!CommandTags.matches(kind: "update", tag: "DELETE 3"))
        #expect(!CommandTags.matches(kind: "select", tag: "INSERT 0 1"))
        #expect(!CommandTags.matches(kind: "show", tag: "DELETE 1"))
        #expect(!CommandTags.matches(kind: "other_utility", tag: "DELETE 1"))
        #expect(!CommandTags.matches(kind: "set", tag: "SELECT 1"))
        #expect(CommandTags.matches(kind: "fetch", tag: "MOVE 2"))
        #expect(CommandTags.matches(kind: "drop", tag: "DROP FUNCTION"))
        #expect(CommandTags.verb(of: "INSERT 0 12") == "INSERT")
    }

    /// The allocation-free verb (issue 18) reads every tag as splitting it into words and
    /// dropping the trailing numeric ones does, odd tags included.
    @Test func theTagVerbWithoutAllocatingIsTheWordsVerb() {
        func words(_ tag: String) -> String {
            var w = tag.split(separator: " ")
            while let last = w.last, last.allSatisfy(\.isNumber) { w.removeLast() }
            return w.joined(separator: " ")
        }
        let tags = ["SELECT 1", "INSERT 0 12", "UPDATE 0", "CREATE TABLE", "DROP FUNCTION", "BEGIN", "COMMIT",
                    "SELECT", "12", "1 2 3", "", " ", "SELECT  1", " SELECT 1", "SELECT 1 ", "A1 2", "2 A",
                    "FETCH 10", "MOVE 0", "SELECT ١٢", "SELECT 1٢", "CRÉER 3", "INSERT 0 1a", "X 0 Y 1",
                    "PREPARE TRANSACTION", "ALTER TABLE", "LOCK TABLE"]
        for tag in tags {
            #expect(String(CommandTags.verbSlice(of: tag)) == words(tag), "\(tag)")
            #expect(CommandTags.verb(of: tag) == words(tag), "\(tag)")
        }
        #expect(CommandTags.matches(kind: "select", tag: "SELECT 4"))
    }

    @Test func aRefusedNamedParseIsNeverRegistered() {
        var state = ConfirmedSessionState()
        state.forwarded(.parse(name: "s1", text: "SELECT 1"))
        state.forwarded(.sync)
        #expect(state.hasPendingChange(statement: "s1"))
        #expect(state.received(.errorResponse(.init(severity: "ERROR", sqlState: "42601", message: "syntax"))).isEmpty)
        _ = state.received(.readyForQuery(.idle))
        #expect(!state.hasPendingChange(statement: "s1"))
        state.forwarded(.parse(name: "s1", text: "SELECT 2"))
        state.forwarded(.bind(portal: ""))
        state.forwarded(.execute(exchange: 1, statement: .init(kind: "select")))
        state.forwarded(.sync)
        let actions = state.received(.parseComplete)
        guard case .registerStatement(let name, let text)? = actions.first else { Issue.record("not registered"); return }
        #expect(name == "s1" && text == "SELECT 2")
        _ = state.received(.bindComplete)
        #expect(state.received(.commandComplete(tag: "DELETE 1")).contains { if case .divergence = $0 { true } else { false } })
    }

    @Test func aCloseIsAppliedOnlyWhenConfirmed() {
        var state = ConfirmedSessionState()
        state.forwarded(.execute(exchange: 1, statement: .init(kind: "select")))
        state.forwarded(.closeStatement(name: "s1"))
        state.forwarded(.sync)
        // The Execute fails: the server skips the Close, so the statement still exists.
        let actions = state.received(.errorResponse(.init(severity: "ERROR", sqlState: "22012", message: "division by zero")))
        #expect(!actions.contains { if case .forgetStatement = $0 { true } else { false } })
        #expect(!state.hasPendingChange(statement: "s1"))
    }

    func has(_ actions: [ConfirmedSessionState.Action], _ test: (ConfirmedSessionState.Action) -> Bool) -> Bool { actions.contains(where: test) }

    @Test func aNamedPortalIsRegisteredOnlyWhenConfirmed() {
        var state = ConfirmedSessionState()
        state.forwarded(.bind(portal: "confirm_p1"))
        state.forwarded(.execute(exchange: 1, statement: .init(kind: "select")))
        state.forwarded(.sync)
        #expect(state.hasPendingChange(portal: "confirm_p1"))
        // The Bind fails (wrong parameter count): the portal never existed, the Execute is skipped.
        let failed = state.received(.errorResponse(.init(severity: "ERROR", sqlState: "08P01", message: "bind message supplies 1 parameters")))
        #expect(has(failed) { if case .dropPortal(let n) = $0 { n == "confirm_p1" } else { false } })
        #expect(!has(failed) { if case .registerPortal = $0 { true } else { false } })
        #expect(!state.hasPendingChange(portal: "confirm_p1"))
        _ = state.received(.readyForQuery(.idle))
        #expect(state.isAnswered)
        state.forwarded(.bind(portal: "confirm_p1"))
        state.forwarded(.sync)
        #expect(has(state.received(.bindComplete)) { if case .registerPortal(let n) = $0 { n == "confirm_p1" } else { false } })
        #expect(!state.hasPendingChange(portal: "confirm_p1"))
    }

    @Test func portalsEndWithTheirTransaction() {
        var state = ConfirmedSessionState()
        // COMMIT and a new BEGIN in one Query: the ReadyForQuery never says idle, the COMMIT tag does.
        state.forwarded(.query(exchange: 1, statements: [.init(kind: "commit"), .init(kind: "begin")]))
        #expect(has(state.received(.commandComplete(tag: "COMMIT"))) { if case .portalsEnded = $0 { true } else { false } })
        #expect(!has(state.received(.commandComplete(tag: "BEGIN"))) { if case .portalsEnded = $0 { true } else { false } })
        _ = state.received(.readyForQuery(.inTransaction))
        state.forwarded(.query(exchange: 2, statements: [.init(kind: "rollback")]))
        #expect(has(state.received(.commandComplete(tag: "ROLLBACK"))) { if case .portalsEnded = $0 { true } else { false } })
    }

    @Test func anEndingSessionWaitsForWhatWasForwarded() {
        var state = ConfirmedSessionState()
        state.forwarded(.query(exchange: 1, statements: [.init(kind: "select")]))
        state.forwarded(.query(exchange: 2, statements: [.init(kind: "select")]))
        state.forwarded(.bind(portal: ""))
        state.forwarded(.execute(exchange: 3, statement: .init(kind: "select")))
        #expect(state.awaitsSync)
        let first = state.end(.init(code: "0A000", message: "lexing", reason: "lexing-settings-changed"))
        let second = state.end(.init(code: "42501", message: "divergence", reason: "divergence"))
        #expect(first && !second)
        #expect(state.ending?.reason == "lexing-settings-changed")
        state.forwarded(.sync)
        #expect(!state.awaitsSync)
        for m: PostgresBackendMessage in [.commandComplete(tag: "SELECT 1"), .readyForQuery(.idle), .commandComplete(tag: "SELECT 1")] {
            _ = state.received(m)
        }
        // The second Query's hidden write: a divergence, read although the session is ending.
        #expect(has(state.received(.commandComplete(tag: "DELETE 1"))) { if case .divergence = $0 { true } else { false } })
        _ = state.received(.readyForQuery(.idle))
        #expect(!state.isAnswered)
        for m: PostgresBackendMessage in [.bindComplete, .commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)] { _ = state.received(m) }
        #expect(state.isAnswered)
    }

    /// Parse s, then a SQL PREPARE s pipelined behind it: which one the server keeps depends on
    /// the Parse's answer, so the PREPARE is refused; once the Parse is confirmed, a PREPARE of
    /// the name is not taken as pending (the server refuses it), so an EXECUTE pipelined behind
    /// it is not decided on it.
    @Test func aPrepareBehindAParseOfTheSameNameFollowsTheServer() {
        let s = Session()
        s.parse("confirm_s", "SELECT email FROM public.customers")
        #expect(s.refusal("PREPARE confirm_s AS SELECT count(*) FROM analytics.events")?.contains("has a change the server has not confirmed") == true)
        s.state.forwarded(.sync)
        s.answer(.parseComplete, .readyForQuery(.idle))
        #expect(s.registered["confirm_s"] == "SELECT email FROM public.customers")
        #expect(s.refusal("PREPARE confirm_s AS SELECT count(*) FROM analytics.events") == nil)
        s.send("PREPARE confirm_s AS SELECT count(*) FROM analytics.events")
        #expect(!s.tables("EXECUTE confirm_s").contains("analytics.events"))
        s.answer(error("prepared statement \"confirm_s\" already exists"), .readyForQuery(.idle))
        #expect(s.registered["confirm_s"] == "SELECT email FROM public.customers" && s.inspector.prepared["confirm_s"] == nil)
    }

    /// The reverse: a SQL PREPARE the server confirmed, then a Parse of the name (refused by the
    /// server): the PREPAREd statement stays; a DEALLOCATE of the name ends the protocol one too.
    @Test func deallocateEndsProtocolStatementsToo() {
        let s = Session()
        s.parse("confirm_a", "SELECT 1"); s.parse("confirm_b", "SELECT 2")
        s.state.forwarded(.sync)
        s.answer(.parseComplete, .parseComplete, .readyForQuery(.idle))
        #expect(s.registered.count == 2)
        s.send("DEALLOCATE confirm_a")
        // Pending: a Parse or PREPARE of the name waits for the answer.
        #expect(s.refusal("PREPARE confirm_a AS SELECT 3")?.contains("not confirmed") == true)
        s.answer(.commandComplete(tag: "DEALLOCATE"), .readyForQuery(.idle))
        #expect(s.registered["confirm_a"] == nil && s.registered["confirm_b"] == "SELECT 2")
        s.send("DEALLOCATE ALL")
        // While DEALLOCATE ALL is pending, no name may be prepared again.
        #expect(s.refusal("PREPARE confirm_c AS SELECT 3")?.contains("not confirmed") == true)
        #expect(s.inspector.pending.allDeallocations == 1)
        s.answer(.commandComplete(tag: "DEALLOCATE ALL"), .readyForQuery(.idle))
        #expect(s.registered.isEmpty && s.inspector.pending.allDeallocations == 0)
        // A PREPARE the server confirms holds the name (the server took it, so it was free).
        s.send("PREPARE confirm_b AS SELECT count(*) FROM analytics.events")
        s.answer(.commandComplete(tag: "PREPARE"), .readyForQuery(.idle))
        #expect(s.inspector.prepared["confirm_b"] != nil && s.tables("EXECUTE confirm_b") == ["analytics.events"])
        // DISCARD ALL ends both kinds.
        s.parse("confirm_d", "SELECT 4"); s.state.forwarded(.sync)
        s.answer(.parseComplete, .readyForQuery(.idle))
        s.send("DISCARD ALL")
        s.answer(.commandComplete(tag: "DISCARD ALL"), .readyForQuery(.idle))
        #expect(s.registered.isEmpty && s.inspector.prepared.isEmpty)
    }

    /// A Close of a protocol statement pending: a PREPARE of the name waits for it.
    @Test func aPrepareBehindAPendingCloseIsRefused() {
        let s = Session()
        s.parse("confirm_e", "SELECT 1"); s.state.forwarded(.sync)
        s.answer(.parseComplete, .readyForQuery(.idle))
        s.state.forwarded(.closeStatement(name: "confirm_e"))
        #expect(s.refusal("PREPARE confirm_e AS SELECT 2")?.contains("not confirmed") == true)
        s.state.forwarded(.sync)
        s.answer(.closeComplete, .readyForQuery(.idle))
        #expect(s.registered["confirm_e"] == nil && s.refusal("PREPARE confirm_e AS SELECT 2") == nil)
    }

    @Test func divergencesAreCounted() throws {
        let metrics = TestMetrics()
        DivergenceMetrics.count(target: "confirm-db", factory: metrics)
        DivergenceMetrics.count(target: "confirm-db", factory: metrics)
        let counter = try metrics.expectCounter(DivergenceMetrics.label, [("target", "confirm-db")])
        #expect(counter.totalValue == 2)
    }

    /// The footer's summary counts the new kind under the name a 1.1 reader computes for it, so
    /// `sessinfo --verify` of the previous release still verifies a 1.2 capture (checked by hand
    /// with main's sessinfo on a capture of `aHiddenWriteIsCaughtByItsCommandTag`).
    @Test func theSummaryNamesTheNewKindAsAnOlderReaderDoes() {
        #expect(EventKind.divergence.summaryName == "kind-10")
        #expect(EventKind.annotation.summaryName == "annotation")
        #expect(EventKind.displayName(summaryName: "kind-10") == "divergence")
        #expect(EventKind.displayName(summaryName: "kind-77") == "kind-77")
    }

    @Test func aDivergenceEventRoundTrips() throws {
        let event = Event(sequence: 1, monotonicNanos: 2, wallMicros: 3, exchangeID: 4,
                          payload: .divergence(Divergence(statement: 1, expected: "select", actual: "DELETE 1")))
        var w = WireWriter()
        event.encode(to: &w)
        let decoded = try w.bytes.withUnsafeBytes { buffer in
            var r = WireReader(buffer)
            return try Event(wire: &r)
        }
        #expect(decoded == event)
    }
}
