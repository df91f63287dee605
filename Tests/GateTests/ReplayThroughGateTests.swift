import CaptureFormat
import Foundation
import TestSupport
import Testing

/// `sessreplay` on sessions recorded through the real gate (psycopg with binary parameters, psql),
/// replayed onto a second database of this test's own: the same results, denied requests never
/// replayed, writes refused without --allow-writes, --rollback leaving the target unchanged, and
/// bad input refused with exit 2.
@Suite("sessreplay on captures made through the gate", .serialized)
struct ReplayThroughGateTests {
    let provider: OIDCProvider
    static let source = "replay21_a", target = "replay21_b"

    init() throws {
        provider = try sharedProvider.get()
    }

    func admin(_ database: String, _ sql: String) throws -> Output {
        try run("runuser", ["-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "/var/run/postgresql",
                            "-p", try DatabaseEnvironment.load().port, "-d", database, "-Atc", sql])
    }

    /// psql straight to `database` as the gate's own account.
    func direct(_ database: String, _ sql: String) throws -> Output {
        let env = try DatabaseEnvironment.load()
        return try run("psql", ["-X", "-At", "-v", "ON_ERROR_STOP=1", "host=127.0.0.1 port=\(env.port) dbname=\(database) user=\(env["TOLLGATE_PG_SCRAM_USER"])", "-c", sql],
                       environment: ["PGPASSWORD": env["TOLLGATE_PG_SCRAM_PASSWORD"]])
    }

    /// Both databases, made idempotently, with the same table and rows.
    func makeDatabases() throws {
        for db in [Self.source, Self.target] {
            if try admin("postgres", "SELECT 1 FROM pg_database WHERE datname = '\(db)'").stdout.isEmpty {
                let made = try admin("postgres", "CREATE DATABASE \(db) OWNER tollgate_gate")
                try #require(made.status == 0 || made.stderr.contains("already exists"), "\(made.stderr)")
            }
            let table = try direct(db, """
                DROP TABLE IF EXISTS replay21_items; CREATE TABLE replay21_items (id int PRIMARY KEY, name text, qty int);
                INSERT INTO replay21_items VALUES (1, 'one', 10), (2, 'two', 20), (3, 'three', 30), (4, 'four', 40), (5, 'five', 50);
                """)
            try #require(table.status == 0, "\(table.stderr)")
        }
    }

    static let policy = """
        policies:
          - name: replay21
            who: {groups: [ai-assistants]}
            target: demo
            rules:
              - {name: reads, when: {statement: [select]}, then: allow}
              - {name: inserts, when: {statement: [insert]}, then: allow}
              - {name: no-delete, when: {statement: [delete]}, then: deny}

        """

    /// One psycopg session (extended protocol, binary parameters, a write, a denied delete) and one
    /// psql session (simple Query), recorded through the gate against the source database.
    func record() throws -> (GateProcess, URL) {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: Self.policy)
        let token = try provider.token("replay21@example.com", groups: ["ai-assistants"])
        var env = gate.libpqEnvironment("demo", token: token)
        env["PGDATABASE"] = Self.source
        let script = """
            import psycopg
            from psycopg.types.numeric import Int8
            c = psycopg.connect('', autocommit=True)
            print(c.execute('SELECT id, name, qty FROM replay21_items ORDER BY id').fetchall())
            print(c.execute('SELECT %b::int8 + 1 AS n, %b::text AS t, %b::bytea AS b', (Int8(41), 'zwölf', b'\\x00\\x01\\xff')).fetchall())
            c.execute('INSERT INTO replay21_items VALUES (6, %s, 60)', ('six',))
            c.execute('SELECT %s::text AS k', ('AKIAIOSFODNN7EXAMPLE',))
            try:
                c.execute('DELETE FROM replay21_items WHERE id = 1')
                print('delete ran')
            except psycopg.errors.InsufficientPrivilege:
                print('delete denied')
            print(c.execute('SELECT count(*), sum(qty) FROM replay21_items').fetchall())
            """
        let py = try run("python3", ["-c", script], environment: env)
        #expect(py.status == 0 && py.stdout.contains("delete denied"), "\(py.stdout)\(py.stderr)")
        #expect(py.stdout.contains("[(42, 'zwölf', b'\\x00\\x01\\xff')]"), "\(py.stdout)")
        let psql = try run("psql", ["-X", "-At", "host=127.0.0.1 port=\(gate.port("demo")) dbname=\(Self.source) user=agent sslmode=disable",
                                    "-c", "SELECT name FROM replay21_items WHERE id = 2"], environment: ["PGPASSWORD": token])
        #expect(psql.stdout.contains("two"), "\(psql.stderr)")
        #expect(gate.stop() == 0)
        return (gate, gate.directory.appendingPathComponent("captures"))
    }

    func replay(_ arguments: [String], password: String? = nil) throws -> Output {
        let env = try DatabaseEnvironment.load()
        return try run(tool("sessreplay").path, arguments, environment: ["PGPASSWORD": password ?? env["TOLLGATE_PG_SCRAM_PASSWORD"], "PGPASSFILE": "/nonexistent"])
    }

    func targetURL(port: String? = nil) throws -> String {
        let env = try DatabaseEnvironment.load()
        return "postgres://\(env["TOLLGATE_PG_SCRAM_USER"])@127.0.0.1:\(port ?? env.port)/\(Self.target)?sslmode=disable"
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    /// Every PostgreSQL exchange with a response, by exchange id: its results without durations
    /// and table OIDs (the same table has another OID in another database).
    static func results(_ path: String) throws -> [UInt64: [PostgresResponse]] {
        var a = [UInt64: [PostgresResponse]]()
        try CaptureFile(path: path).forEachEvent { e in
            if case .response(.postgres(var p)) = e.payload {
                p.durationMicros = 0
                p.columns = p.columns.map { var c = $0; c.tableOID = 0; return c }
                a[e.exchangeID, default: []].append(p)
            }
            return true
        }
        return a
    }

    func replayCaptures(_ dir: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".sesscap") }.sorted().map { "\(dir)/\($0)" }
    }

    @Test func replayOntoASecondDatabase() throws {
        try makeDatabases()
        let (gate, captures) = try record()
        let originals = try gate.captures()
        try #require(originals.count == 2)
        let key = gate.directory.appendingPathComponent("replay.key").path
        try #require(try run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key]).status == 0)
        let out = { (name: String) in gate.directory.appendingPathComponent(name).path }

        // Without --allow-writes: the INSERT is refused, the denied DELETE never replayed.
        let readOnly = try replay(["--fast", "--json", "--target", try targetURL(), "--signing-key", key, "--out", out("r1"), captures.path])
        #expect(readOnly.status == 0, "\(readOnly.stdout)\(readOnly.stderr)")
        let s1 = try Self.json(readOnly.stdout)
        // The parameter the secrets pass masked in the recording cannot be re-sent: skipped and named.
        #expect(s1["skipped"] as? [String: Int] == ["write": 1, "not-forwarded": 1, "withheld": 1], "\(readOnly.stdout)")
        let withheld = (s1["sessions"] as? [[String: Any]])?.flatMap { $0["withheld"] as? [String] ?? [] } ?? []
        #expect(withheld.count == 1 && withheld[0].contains("parameter $1"), "\(withheld)")
        #expect(s1["replayed"] as? Int == 4, "\(readOnly.stdout)")
        #expect(try direct(Self.target, "SELECT count(*) FROM replay21_items WHERE id IN (1, 6)").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1")

        // With --allow-writes --rollback: the same results as recorded, and the target unchanged after.
        let before = try direct(Self.target, "SELECT * FROM replay21_items ORDER BY id").stdout
        let rolled = try replay(["--fast", "--json", "--allow-writes", "--rollback", "--target", try targetURL(), "--signing-key", key, "--out", out("r2"), captures.path])
        #expect(rolled.status == 0, "\(rolled.stdout)\(rolled.stderr)")
        #expect(try Self.json(rolled.stdout)["skipped"] as? [String: Int] == ["not-forwarded": 1, "withheld": 1], "\(rolled.stdout)")
        #expect(try direct(Self.target, "SELECT * FROM replay21_items ORDER BY id").stdout == before)
        let psycopgSession = try #require(originals.max { $0.fileSize < $1.fileSize }).header.sessionID
        let replays = try replayCaptures(out("r2"))
        try #require(replays.count == 2)
        for path in replays {
            let capture = try CaptureFile(path: path)
            let attributes = Dictionary(capture.header.attributes.map { ($0.key, $0.value) }) { a, _ in a }
            let original = try #require(originals.first { $0.header.sessionID == attributes["replay.of_session"] }, "\(attributes)")
            #expect(attributes["replay.of_capture"] == original.path)
            #expect(attributes["replay.target"]?.contains("/\(Self.target)") == true)
            #expect(attributes["replay.rollback"] == "true")
            let verified = try run(tool("sessinfo").path, ["--verify", "--key", key, path])
            #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
            // The same results (columns, rows, tags, errors), exchange by exchange; the denied DELETE has none.
            var recorded = try Self.results(original.path)
            let deniedExchange = recorded.first { $0.value.first?.error?.sqlState == "42501" }?.key
            if let deniedExchange { recorded.removeValue(forKey: deniedExchange) }
            // The masked parameter's exchange is skipped (its recorded row holds the masked key).
            let maskedExchange = recorded.first { $0.value.first?.columns.map(\.name) == ["k"] }?.key
            if let maskedExchange { recorded.removeValue(forKey: maskedExchange) }
            #expect((maskedExchange != nil) == (original.header.sessionID == psycopgSession), "\(recorded.keys)")
            let got = try Self.results(path)
            #expect(got == recorded)
            #expect(!recorded.isEmpty)
            if let deniedExchange { #expect(got[deniedExchange] == nil) }
        }
        // The binary parameters were replayed with their formats: the answer is psycopg's (42, 'zwölf', \x0001ff).
        let binary = try replays.flatMap { try Self.results($0).values.flatMap { $0 } }.first { $0.columns.map(\.name) == ["n", "t", "b"] }
        #expect(binary?.rows == [[Array("42".utf8), Array("zwölf".utf8), Array("\\x0001ff".utf8)]], "\(String(describing: binary))")

        // With --allow-writes alone the INSERT reaches the target; the denied DELETE still does not.
        let writes = try replay(["--fast", "--allow-writes", "--target", try targetURL(), "--signing-key", key, "--out", out("r3"), captures.path])
        #expect(writes.status == 0, "\(writes.stdout)\(writes.stderr)")
        #expect(try direct(Self.target, "SELECT string_agg(id::text, ',' ORDER BY id) FROM replay21_items").stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1,2,3,4,5,6")
        // Replayed again, the INSERT fails (the row is there) where the recording succeeded: exit 1.
        let again = try replay(["--fast", "--allow-writes", "--target", try targetURL(), "--signing-key", key, "--out", out("r4"), captures.path])
        #expect(again.status == 1, "\(again.stdout)\(again.stderr)")
        #expect(again.stdout.contains("23505"), "\(again.stdout)")

        // --dry-run prints the plan and connects to nothing (the target port is closed).
        let plan = try replay(["--dry-run", "--target", try targetURL(port: "\(try freePort())"), captures.path])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("skip not-forwarded") && plan.stdout.contains("skip write"), "\(plan.stdout)")

        // Bad input: each a clear message and exit 2.
        let capture = originals[0].path
        let unreachable = try replay(["--fast", "--target", try targetURL(port: "\(try freePort())"), "--signing-key", key, "--out", out("bad"), capture])
        #expect(unreachable.status == 2 && unreachable.stderr.contains("cannot log in"), "\(unreachable.stderr)")
        let badPassword = try replay(["--fast", "--target", try targetURL(), "--signing-key", key, "--out", out("bad"), capture], password: "wrong")
        #expect(badPassword.status == 2 && badPassword.stderr.contains("password authentication failed"), "\(badPassword.stderr)")
        let inURL = try replay(["--target", "postgres://u:secret@127.0.0.1/db", "--dry-run", capture])
        #expect(inURL.status == 2 && inURL.stderr.contains("holds a password"), "\(inURL.stderr)")
        let http = try replay(["--target", "https://staging.example.com", "--dry-run", capture])
        // An http(s) target replays HTTP captures only.
        #expect(http.status == 2 && http.stderr.contains("a PostgreSQL session"), "\(http.stderr)")

        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: capture)))
        let newer = out("newer.sesscap")
        var newerBytes = bytes
        newerBytes[8] = 2  // major version 2
        try Data(newerBytes).write(to: URL(fileURLWithPath: newer))
        let future = try replay(["--fast", "--target", try targetURL(), "--signing-key", key, "--out", out("bad"), newer])
        #expect(future.status == 2 && future.stderr.contains("newer capture format"), "\(future.stderr)")

        // Cut off inside its trailer: every complete block is replayed, and where it was cut is said.
        let cut = out("cut.sesscap")
        bytes.removeLast(10)
        try Data(bytes).write(to: URL(fileURLWithPath: cut))
        let damaged = try replay(["--fast", "--json", "--target", try targetURL(), "--signing-key", key, "--out", out("cut"), cut])
        #expect(damaged.status == 2 && damaged.stderr.contains("cut off"), "\(damaged.stderr)")
        #expect((try? Self.json(damaged.stdout)["replayed"] as? Int).flatMap { $0 }.map { $0 > 0 } == true, "\(damaged.stdout)")
    }
}
