import CaptureFormat
import Foundation
import TestSupport
import Testing

/// Issue 17: the gate reads every statement with libpg_query, which lexes with
/// standard_conforming_strings on and UTF-8; a session where PostgreSQL reads otherwise could
/// hide a DELETE in what the gate takes for a string. Every way to change how the server reads
/// statements is refused, through a real gate in front of real PostgreSQL.
@Suite("lexing settings through the gate", .serialized)
struct LexingSettingsGateTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    static let policy = """
        policies:
          - name: read-only
            who: {groups: [ai-assistants]}
            targets: [demo, lexing]
            rules:
              - {name: reads, when: {writes: false}, then: allow}
          - name: dba
            who: {groups: [dba]}
            target: demo
            rules:
              - {name: anything, then: allow}

        """

    /// A role whose login default is standard_conforming_strings = off: made here, idempotently,
    /// by the cluster's superuser (the test cluster's other roles are left as they are).
    static let lexingRolePassword = "lexing-test-password"
    static func makeLexingRole(_ db: DatabaseEnvironment) throws {
        let sql = """
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lexing_role') THEN CREATE ROLE lexing_role LOGIN; END IF;
            END $$;
            ALTER ROLE lexing_role PASSWORD '\(lexingRolePassword)';
            ALTER ROLE lexing_role SET standard_conforming_strings = off;
            """
        let r = try run("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "host=127.0.0.1 port=\(db.port) dbname=postgres user=tollgate_bench", "-c", sql],
                        environment: ["PGPASSWORD": db["TOLLGATE_PG_SCRAM_PASSWORD"]])
        guard r.status == 0 else { throw HarnessError(description: "cannot make lexing_role: \(r.stderr)") }
    }

    func gate() throws -> GateProcess {
        let db = try DatabaseEnvironment.load()
        try Self.makeLexingRole(db)
        let lexingTarget = "credentials:\n  user: lexing_role\n  password_env: LEXING_ROLE_PASSWORD"
        return try GateProcess(provider: provider, targets: ["demo": scramTarget, "lexing": lexingTarget], policies: Self.policy,
                               environment: ["LEXING_ROLE_PASSWORD": Self.lexingRolePassword])
    }

    /// Each capture's end reason.
    func endReasons(_ gate: GateProcess) throws -> [String] {
        try gate.captures().flatMap { try allEvents($0) }.compactMap { e in
            if case .sessionEnd(let end) = e.payload { return end.reason }
            return nil
        }
    }

    @Test func startupOptionsThatTurnStandardConformingStringsOffAreRefusedAtLogin() throws {
        let gate = try gate()
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        var environment = gate.libpqEnvironment("demo", token: token)
        for options in ["-c standard_conforming_strings=off", "--standard-conforming-strings=off", "-c client_encoding=SJIS"] {
            environment["PGOPTIONS"] = options
            let r = try run("psql", ["-X", "-At", "-c", "SELECT 1"], environment: environment)
            #expect(r.status != 0, "\(options) was accepted")
            #expect(r.stderr.contains("the gate reads statements only with"), "\(options): \(r.stderr)")
        }
        // The same gate, without them: the login works.
        environment["PGOPTIONS"] = "-c standard_conforming_strings=on"
        let ok = try run("psql", ["-X", "-At", "-c", "SELECT 1"], environment: environment)
        #expect(ok.status == 0 && ok.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "\(ok.stderr)")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }

    /// A write hidden in a request pipelined behind the login (in the same write as the password),
    /// where the login sets standard_conforming_strings off: by the startup packet's options (the
    /// gate refuses them before it asks for a password) or by the role's default (the server
    /// reports it at login, and the gate forwards nothing before that login is checked). The
    /// request never reaches the server: the row stays.
    @Test(arguments: [("demo", "-c standard_conforming_strings=off"), ("lexing", "")])
    func aRequestPipelinedBehindALoginThatChangesLexingNeverRuns(target: String, options: String) throws {
        let gate = try gate()
        let probe = try ProbeTable(gate.database, prefix: "lexing")
        defer { probe.drop() }
        #expect(try probe.sql("INSERT INTO \(probe.name) VALUES (1)").status == 0)
        #expect(try probe.sql("GRANT ALL ON \(probe.name) TO lexing_role").status == 0)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let script = """
            import os, socket, struct
            s = socket.create_connection((os.environ["PGHOST"], int(os.environ["PGPORT"])))
            params = {"user": "agent", "database": os.environ["PGDATABASE"]}
            if os.environ["OPTIONS"]: params["options"] = os.environ["OPTIONS"]
            body = struct.pack("!i", 196608) + b"".join(k.encode() + b"\\0" + v.encode() + b"\\0" for k, v in params.items()) + b"\\0"
            s.sendall(struct.pack("!i", len(body) + 4) + body)
            s.settimeout(10)
            data = s.recv(65536)
            if data[:1] == b"R":
                msg = lambda t, b: t + struct.pack("!i", len(b) + 4) + b
                q = b"SELECT 'a\\\\' , ' ; DELETE FROM public.\(probe.name); -- '"
                s.sendall(msg(b"p", os.environ["PGPASSWORD"].encode() + b"\\0") + msg(b"Q", q + b"\\0"))
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
            print(repr(data))
            """
        var environment = gate.libpqEnvironment(target, token: token)
        environment["OPTIONS"] = options
        let r = try run("python3", ["-c", script], environment: environment)
        #expect(r.status == 0, "\(r.stderr)")
        // The connection ends with a FATAL error, never a ReadyForQuery for the client.
        #expect(r.stdout.contains("SFATAL") && !r.stdout.contains("Z\\x00\\x00\\x00\\x05"), "\(r.stdout)")
        #expect(try probe.count() == 1, "the hidden DELETE ran")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }

    @Test func changesInSessionAreRefusedWhateverThePolicyAllows() throws {
        let gate = try gate()
        let assistant = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        for token in [assistant, dba] {
            for sql in ["SET standard_conforming_strings = off", "SELECT set_config('standard_conforming_strings', 'off', false)",
                        "SET client_encoding = 'SJIS'", "SET NAMES 'SJIS'", "SET backslash_quote = on"] {
                // Then the setting as the session sees it: still the gate's (the refused statement never ran).
                let r = try gate.psql("demo", token: token, ["-c", sql, "-c", "SHOW standard_conforming_strings", "-c", "SHOW client_encoding"])
                #expect(r.status != 0, "\(sql) was let through")
                #expect(r.stderr.contains("tollgate: denied by policy \"tollgate\" rule \"parser-settings\"") && r.stderr.contains("the gate reads statements only with"),
                        "\(sql): \(r.stderr)")
            }
            // The gate's own values and RESET are followed.
            let same = try gate.psql("demo", token: token, ["-c", "SET standard_conforming_strings = on", "-c", "SET client_encoding = 'utf-8'",
                                                            "-c", "RESET standard_conforming_strings", "-c", "SHOW standard_conforming_strings"])
            #expect(same.status == 0 && same.stdout.hasSuffix("on\n"), "\(same.stdout) \(same.stderr)")
        }
        // The extended protocol (decided at Parse), with the value as a bound parameter: not a
        // constant, so the gate cannot know it and refuses.
        let script = """
            import psycopg
            c = psycopg.connect('', autocommit=True)
            try:
                c.execute("SELECT set_config('standard_conforming_strings', %s, false)", ("off",))
                print("allowed")
            except psycopg.errors.InsufficientPrivilege as e:
                print("denied", e.sqlstate, e)
            print(c.execute("SHOW standard_conforming_strings").fetchone()[0])
            """
        let py = try run("python3", ["-c", script], environment: gate.libpqEnvironment("demo", token: dba))
        #expect(py.stdout.hasPrefix("denied 42501") && py.stdout.contains("not a constant") && py.stdout.hasSuffix("on\n"), "\(py.stdout) \(py.stderr)")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([assistant, dba])
    }

    /// The review's SJIS example: 81 5C is one character to PostgreSQL in SJIS and `\` plus a quote
    /// to the gate. The DELETE hidden after it must not run.
    @Test func aDeleteHiddenBehindAnSJISCharacterDoesNotRun() throws {
        let gate = try gate()
        let probe = try ProbeTable(gate.database, prefix: "lexing")
        defer { probe.drop() }
        #expect(try probe.sql("INSERT INTO \(probe.name) VALUES (1), (2)").status == 0)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        // Raw bytes through libpq's simple query (PQexec): no driver rewrites or splits them.
        let script = """
            import psycopg, sys
            c = psycopg.connect('', autocommit=True)
            for q in [b"SET client_encoding = 'SJIS'",
                      b"SELECT E'\\xc3\\x81\\x5c' ; DELETE FROM public.\(probe.name); -- '",
                      b"SHOW client_encoding"]:
                r = c.pgconn.exec_(q)
                state = r.error_field(psycopg.pq.DiagnosticField.SQLSTATE)
                print(state.decode() if state else "ok", r.get_value(0, 0).decode('utf-8', 'replace') if r.ntuples else "")
            """
        let out = try run("python3", ["-c", script], environment: gate.libpqEnvironment("demo", token: token))
        #expect(out.status == 0, "\(out.stderr)")
        let lines = out.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3 && lines[0].hasPrefix("42501") && lines[2] == "ok UTF8", "\(lines) \(out.stderr)")
        #expect(try probe.count() == 2, "the hidden DELETE ran")
        #expect(gate.stop() == 0)
    }

    /// A role whose login default is standard_conforming_strings = off (ALTER ROLE … SET): the
    /// server reports it at login, and the gate refuses the session.
    @Test func aLoginWhereTheServerReportsStandardConformingStringsOffIsRefused() throws {
        let gate = try gate()
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let r = try gate.psql("lexing", token: token, ["-c", "SELECT 1"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("FATAL") && r.stderr.contains("the database reports standard_conforming_strings = off"), "\(r.stderr)")
        // The demo target of the same gate logs in as a role without that default.
        #expect(try gate.psql("demo", token: token, ["-c", "SELECT 1"]).status == 0)
        #expect(gate.stop() == 0)
        let reasons = try endReasons(gate)
        #expect(reasons.contains("lexing-settings-at-login"), "\(reasons)")
        #expect(gate.logText.contains("the database reads statements differently from the gate"))
        try gate.expectNoSecrets([token])
        #expect(!gate.logText.contains(Self.lexingRolePassword))
    }

    /// A change the text does not show (a DO block a policy allows): PostgreSQL reports it, and
    /// the gate ends the session before the next statement.
    @Test func aChangeReportedMidSessionEndsTheSession() throws {
        let gate = try gate()
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let r = try gate.psql("demo", token: dba, ["-c", "DO $$ BEGIN PERFORM set_config('standard_conforming_strings', 'off', false); END $$",
                                                   "-c", "SELECT 'still here'"])
        #expect(r.status != 0)
        #expect(!r.stdout.contains("still here"), "\(r.stdout)")
        #expect(r.stderr.contains("the database reports standard_conforming_strings = off") && r.stderr.contains("the session is ended"), "\(r.stderr)")
        #expect(gate.stop() == 0)
        let reasons = try endReasons(gate)
        #expect(reasons.contains("lexing-settings-changed"), "\(reasons)")
        try gate.expectNoSecrets([dba])
    }
}
