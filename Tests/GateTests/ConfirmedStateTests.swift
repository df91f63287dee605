import CaptureFormat
import Foundation
import TestSupport
import Testing

/// The gate's session state changes only when the server confirms it (issues 17 and 18), and a
/// command tag that does not match what the gate decided on ends the session. Real gate, real
/// PostgreSQL, psql and the hand-speaking client.
@Suite("confirmed state and divergences", .serialized)
struct ConfirmedStateTests {
    let provider: OIDCProvider
    init() throws { provider = try sharedProvider.get() }

    /// Preparing or declaring anything read-only is allowed (nothing runs yet); running it is
    /// allowed on analytics only.
    static let policy = """
        policies:
          - name: confirm
            who: {groups: [ai-assistants]}
            target: demo
            rules:
              - {name: session, when: {statement: [prepare, deallocate, other_utility, begin, commit, rollback, savepoint, set]}, then: allow}
              - {name: read-analytics, when: {statement: [select], schemas: [analytics], writes: false}, then: allow}

        """

    func psql(_ gate: GateProcess, _ token: String, _ script: String) throws -> Output {
        // Errors do not stop the script: the decoy is meant to fail.
        try run("psql", ["-X", "-At", "host=127.0.0.1 port=\(gate.port("demo")) dbname=\(gate.database.database) user=agent sslmode=disable"],
                environment: ["PGPASSWORD": token, "PGCONNECT_TIMEOUT": "10"], stdin: script)
    }

    func divergences(_ gate: GateProcess) throws -> [CaptureFormat.Divergence] {
        try gate.captures().flatMap { try allEvents($0) }.compactMap { if case .divergence(let d) = $0.payload { d } else { nil } }
    }

    /// PREPARE p AS <real>, then PREPARE p AS <decoy> (the server refuses it: the name is taken),
    /// then EXECUTE p: the server runs the real query, so the gate must decide on it.
    @Test func aDecoyPrepareDoesNotReplaceTheRealOne() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: Self.policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let out = try psql(gate, token, """
            PREPARE confirm_p AS SELECT email FROM public.customers ORDER BY id LIMIT 1;
            PREPARE confirm_p AS SELECT count(*)::text FROM analytics.events;
            EXECUTE confirm_p;
            """)
        #expect(out.stderr.contains("already exists"), "\(out.stderr)")
        #expect(out.stderr.contains("tollgate: denied"), "the EXECUTE ran the real query unchecked: \(out.stdout) \(out.stderr)")
        #expect(!out.stdout.contains("@"), "\(out.stdout)")
        #expect(gate.stop() == 0)
        #expect(try divergences(gate).isEmpty)
    }

    /// A cursor declared twice: the second DECLARE fails, and after ROLLBACK TO SAVEPOINT the
    /// first cursor is what FETCH reads.
    @Test func aCursorDeclaredTwiceKeepsTheFirst() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: Self.policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let out = try psql(gate, token, """
            BEGIN;
            DECLARE confirm_c CURSOR FOR SELECT email FROM public.customers ORDER BY id;
            SAVEPOINT confirm_sp;
            DECLARE confirm_c CURSOR FOR SELECT country FROM analytics.events;
            ROLLBACK TO SAVEPOINT confirm_sp;
            FETCH 1 FROM confirm_c;
            ROLLBACK;
            """)
        #expect(out.stderr.contains("already exists"), "\(out.stderr)")
        #expect(out.stderr.contains("tollgate: denied"), "the FETCH read the real cursor unchecked: \(out.stdout) \(out.stderr)")
        #expect(!out.stdout.contains("@"), "\(out.stdout)")
        #expect(gate.stop() == 0)
        #expect(try divergences(gate).isEmpty)
    }

    /// A search_path set in a transaction that is rolled back is undone: the gate resolves
    /// unqualified names on the path the server uses.
    @Test func searchPathSetInARolledBackTransactionIsUndone() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: Self.policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let out = try psql(gate, token, """
            SET search_path TO analytics;
            BEGIN;
            SET search_path TO public;
            ROLLBACK;
            SELECT count(*) FROM events;
            """)
        // The server reads analytics.events (the SET to public was rolled back); so must the gate.
        #expect(out.stdout.contains("5000"), "\(out.stdout) \(out.stderr)")
        #expect(gate.stop() == 0)
        #expect(try divergences(gate).isEmpty)
    }

    /// Requests pipelined behind the PREPARE or Parse they use (psycopg's pipeline mode, as
    /// `pgbench -M prepared` does) are decided on it before the server confirms it, and run.
    @Test func executesPipelinedBehindTheirPrepareKeepWorking() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: Self.policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let r = try run("python3", ["-c", """
            import psycopg
            with psycopg.connect(autocommit=True) as c:
                out = []
                with c.pipeline():
                    curs = []
                    for i in range(3):
                        # prepare=True: a named Parse, then Bind/Execute of it, all before any answer.
                        cur = c.cursor(); cur.execute("SELECT count(*) FROM analytics.events WHERE id > %s", (i,), prepare=True); curs.append(cur)
                    p = c.cursor(); p.execute("PREPARE confirm_pp AS SELECT count(*) FROM analytics.events")
                    e = c.cursor(); e.execute("EXECUTE confirm_pp"); curs.append(e)
                print([cur.fetchone()[0] for cur in curs])
            """], environment: gate.libpqEnvironment("demo", token: token), timeout: .seconds(60))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[5000, 4999, 4998, 5000]", "\(r.stdout) \(r.stderr)")
        #expect(gate.stop() == 0)
        #expect(try divergences(gate).isEmpty)
    }

    /// Issue 18: a named Parse the gate refused, parsed again with an allowed statement, is what
    /// the Execute runs and what the gate records and decides.
    @Test func aRefusedNamedParseParsedAgainRunsTheNewStatement() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: Self.policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/raw_protocol.py").path
        let r = try run("python3", [script, "confirm-refused-parse-reparsed"], environment: gate.libpqEnvironment("demo", token: token),
                        timeout: .seconds(30))
        #expect(r.status == 0, "\(r.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(((out["rows"] as? [[Any]]) ?? []).first?.first as? String == "5000", "\(out)")
        #expect(gate.stop() == 0)
        let texts = try gate.captures().flatMap { try allEvents($0) }.compactMap { e -> String? in
            if case .request(.postgres(let p)) = e.payload { return p.text } else { return nil }
        }
        #expect(texts.last == "SELECT count(*) FROM analytics.events", "\(texts)")
    }

    /// A bypass the gate cannot see (a function turns standard_conforming_strings off; the next
    /// Query, pipelined, is read by the server as a SELECT and a DELETE): the command tags give it
    /// away, and the gate records the divergence, logs it and ends the session.
    /// A named portal is the gate's only once the server confirms its Bind: a refused Bind does
    /// not hold the name, a second Bind of a name still unconfirmed is refused, and portals end
    /// with their transaction (here a COMMIT inside a Query that opens the next one).
    @Test func aNamedPortalIsKnownOnlyOnceTheServerConfirmsIt() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: Self.policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/raw_protocol.py").path
        let r = try run("python3", [script, "confirm-portal-decoy"], environment: gate.libpqEnvironment("demo", token: token), timeout: .seconds(30))
        #expect(r.status == 0, "\(r.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let rows = (out["rows"] as? [[Any]]) ?? []
        // No email (what the server would run) reached the client: only the two counts.
        #expect(rows.count == 2 && !rows.contains { $0.contains { "\($0)".contains("@") } }, "\(out)")
        let messages = ((out["errors"] as? [[String: Any]]) ?? []).compactMap { $0["message"] as? String }
        #expect(messages.count == 2 && messages.contains { $0.contains("bind message supplies 0 parameters") }
                && messages.contains { $0.contains("portal \"confirm_p\" exists or has a Bind the server has not confirmed yet") }, "\(messages)")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }

    /// SQL PREPARE behind a protocol Parse of the same name, Parse behind PREPARE, and Parse
    /// behind DEALLOCATE ALL, each pipelined: the gate refuses the second (which statement the
    /// name would hold depends on an answer still to come), and an EXECUTE of a name the
    /// protocol holds is not decided on a PREPARE the server refused.
    @Test func prepareAndParseOfOneNameFollowTheServer() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: Self.policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/raw_protocol.py").path
        let r = try run("python3", [script, "confirm-prepare-and-parse"], environment: gate.libpqEnvironment("demo", token: token), timeout: .seconds(30))
        #expect(r.status == 0, "\(r.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let rows = ((out["rows"] as? [[Any]]) ?? []).map { $0.map { "\($0)" } }
        let messages = ((out["errors"] as? [[String: Any]]) ?? []).compactMap { $0["message"] as? String }
        // The PREPARE behind the Parse, the Parse behind the PREPARE, the Parse behind DEALLOCATE ALL.
        #expect(messages.filter { $0.contains("has a change the server has not confirmed yet") }.count == 3, "\(messages)")
        // EXECUTE of the protocol's statement: not the refused PREPARE's (an email), refused as unknown.
        #expect(messages.contains { $0.contains("no rule allows execute") }, "\(messages)")
        #expect(!rows.contains { $0.contains { $0.contains("@") } }, "\(rows)")
        // EXECUTE confirm_m runs the PREPAREd count, the one statement the server holds under the name.
        #expect(rows == [["5000"]], "\(rows) \(messages)")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }

    /// A lexing setting turned off by an allowed function, with a request pipelined behind it
    /// that the server then reads as a SELECT and a DELETE: the session ends for the lexing
    /// change, but only after the pipelined request is answered, so its DELETE tag is checked and
    /// the divergence is on the record in every run. The same with client_encoding (SJIS), and
    /// with an extended batch pipelined without its Sync (the gate syncs it itself).
    @Test(arguments: ["confirm-divergence", "confirm-divergence-sjis", "confirm-divergence-unsynced"])
    func aHiddenWriteIsCaughtByItsCommandTag(scenario: String) throws {
        let database = try DatabaseEnvironment.load()
        let setup = try database.psql(["-c", """
            CREATE TABLE IF NOT EXISTS public.confirm_table (id int);
            INSERT INTO public.confirm_table VALUES (1);
            CREATE OR REPLACE FUNCTION public.confirm_scs_off() RETURNS text LANGUAGE sql
              AS $$ SELECT set_config('standard_conforming_strings', 'off', false) $$;
            CREATE OR REPLACE FUNCTION public.confirm_enc_sjis() RETURNS text LANGUAGE sql
              AS $$ SELECT set_config('client_encoding', 'SJIS', false) $$;
            """])
        try #require(setup.status == 0, "\(setup.stderr)")
        let policy = """
            policies:
              - name: confirm
                who: {groups: [ai-assistants]}
                target: demo
                rules:
                  - {name: selects, when: {statement: [select], functions: [confirm_scs_off, confirm_enc_sjis]}, then: allow}

            """
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/raw_protocol.py").path
        let r = try run("python3", [script, scenario], environment: gate.libpqEnvironment("demo", token: token), timeout: .seconds(30))
        #expect(r.status == 0, "\(r.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        // Closed by the gate, not by the client's patience (5 s): nothing was left waiting for a Sync.
        #expect(out["closed"] as? Bool == true, "\(out)")
        let errors = (out["errors"] as? [[String: Any]]) ?? []
        let messages = errors.compactMap { $0["message"] as? String }
        let setting = scenario == "confirm-divergence-sjis" ? "client_encoding = SJIS" : "standard_conforming_strings = off"
        #expect(messages.contains { $0.contains("ran something other than what the gate decided on") || $0.contains(setting) }, "\(out)")
        #expect(gate.stop() == 0)
        // Whichever check ends the session, the DELETE's tag was read and is on the record.
        let found = try divergences(gate)
        #expect(found.count == 1 && found.first?.actual.hasPrefix("DELETE") == true, "\(found)")
        #expect(gate.logText.contains("divergence"), "\(gate.logText.suffix(500))")
        let ends = try gate.captures().flatMap { try allEvents($0) }.compactMap { if case .sessionEnd(let e) = $0.payload { e.reason } else { nil } }
        #expect(ends.contains("lexing-settings-changed") || ends.contains("divergence"), "\(ends)")
        if ends.contains("lexing-settings-changed") {
            #expect(gate.logText.contains("reads statements differently"), "\(gate.logText.suffix(500))")
        }
        try gate.expectNoSecrets([token])
    }
}
