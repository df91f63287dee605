import CaptureFormat
import Foundation
import TestSupport
import Testing

/// Issue 21's end-to-end test: a psql session recorded through the real gate against database A
/// (a row lookup, an aggregate, an index lookup on a big table, a read of a column whose type B
/// changes), replayed with `sessreplay` onto B, a copy of A with one row changed, one column's
/// type changed and one index dropped. `sessdiff ORIGINAL REPLAY` reports exactly the changed row
/// and the changed type; the dropped index shows only under `--latency`.
@Suite("sessreplay then sessdiff, end to end", .serialized)
struct ReplayDiffEndToEndTests {
    let provider: OIDCProvider
    static let source = "replay21b_a", target = "replay21b_b"
    /// Rows in the indexed table: enough that a sequential scan takes tens of milliseconds where
    /// the index lookup takes well under one.
    static let bigRows = 1_500_000

    init() throws {
        provider = try sharedProvider.get()
    }

    func admin(_ database: String, _ sql: String) throws -> Output {
        try run("runuser", ["-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "/var/run/postgresql",
                            "-p", try DatabaseEnvironment.load().port, "-d", database, "-Atc", sql])
    }

    func direct(_ database: String, _ sql: String) throws -> Output {
        let env = try DatabaseEnvironment.load()
        return try run("psql", ["-X", "-At", "-q", "-v", "ON_ERROR_STOP=1", "host=127.0.0.1 port=\(env.port) dbname=\(database) user=\(env["TOLLGATE_PG_SCRAM_USER"])", "-c", sql],
                       environment: ["PGPASSWORD": env["TOLLGATE_PG_SCRAM_PASSWORD"]])
    }

    /// A with its tables (made once: the big table is reused when it is already whole), then B
    /// made afresh from A as a template and changed four ways (one of them a masked value).
    func makeDatabases() throws {
        if try admin("postgres", "SELECT 1 FROM pg_database WHERE datname = '\(Self.source)'").stdout.isEmpty {
            let made = try admin("postgres", "CREATE DATABASE \(Self.source) OWNER tollgate_gate")
            try #require(made.status == 0 || made.stderr.contains("already exists"), "\(made.stderr)")
        }
        let complete = try direct(Self.source, "SELECT count(*) FROM replay21b_events").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        if complete != "\(Self.bigRows)" {
            let tables = try direct(Self.source, """
                DROP TABLE IF EXISTS replay21b_items, replay21b_orders, replay21b_events;
                CREATE TABLE replay21b_items (id int PRIMARY KEY, name text, qty int);
                INSERT INTO replay21b_items SELECT i, 'item-' || i, i * 10 FROM generate_series(1, 20) i;
                CREATE TABLE replay21b_orders (id int PRIMARY KEY, item int, amount int);
                INSERT INTO replay21b_orders SELECT i, 1 + i % 20, 100 + i FROM generate_series(1, 8) i;
                CREATE TABLE replay21b_events (id bigint, k int, payload text);
                INSERT INTO replay21b_events SELECT i, i, md5(i::text) FROM generate_series(1, \(Self.bigRows)) i;
                CREATE INDEX replay21b_events_k ON replay21b_events (k);
                ANALYZE replay21b_events;
                """)
            try #require(tables.status == 0, "\(tables.stderr)")
        }
        // The table COPY FROM STDIN fills: empty on both sides before each recording.
        let copyTable = try direct(Self.source, """
            CREATE TABLE IF NOT EXISTS replay21b_copy (id int, name text); TRUNCATE replay21b_copy;
            DROP TABLE IF EXISTS replay21b_people; CREATE TABLE replay21b_people (id int, email text);
            INSERT INTO replay21b_people VALUES (1, 'ann@example.com');
            """)
        try #require(copyTable.status == 0, "\(copyTable.stderr)")
        _ = try admin("postgres", "DROP DATABASE IF EXISTS \(Self.target) WITH (FORCE)")
        // An autovacuum worker on A makes the template copy fail for a moment: tried again.
        var copied = try admin("postgres", "CREATE DATABASE \(Self.target) TEMPLATE \(Self.source) OWNER tollgate_gate STRATEGY FILE_COPY")
        for _ in 0..<10 where copied.status != 0 && copied.stderr.contains("being accessed by other users") {
            Thread.sleep(forTimeInterval: 1)
            copied = try admin("postgres", "CREATE DATABASE \(Self.target) TEMPLATE \(Self.source) OWNER tollgate_gate STRATEGY FILE_COPY")
        }
        try #require(copied.status == 0, "\(copied.stderr)")
        let changed = try direct(Self.target, """
            UPDATE replay21b_items SET name = 'item-7-renamed' WHERE id = 7;
            UPDATE replay21b_people SET email = 'ann.b@example.com' WHERE id = 1;
            ALTER TABLE replay21b_orders ALTER COLUMN amount TYPE bigint;
            DROP INDEX replay21b_events_k;
            """)
        try #require(changed.status == 0, "\(changed.stderr)")
    }

    static let workload = [
        // A row lookup (row 7 differs on B).
        "SELECT id, name, qty FROM replay21b_items WHERE id = 7",
        // An aggregate over rows B does not change.
        "SELECT count(*) AS n, sum(qty) AS total, max(name) AS last FROM replay21b_items WHERE id <> 7",
        // An index lookup on A; a sequential scan of the big table on B.
        "SELECT id, k, payload FROM replay21b_events WHERE k = 1234567",
        // A column whose type B changed (int to bigint): the same values, another type.
        "SELECT id, item, amount FROM replay21b_orders ORDER BY id",
        // A result the gate masks: the replay keeps only its rows' count and digest, not comparable
        // with masked values, so not a difference.
        "SELECT id, email FROM replay21b_people WHERE id = 1",
    ]

    static func differences(_ output: String) -> (differences: [[String: Any]], summary: [String: Any]?) {
        let lines = output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        return (lines.filter { $0["kind"] != nil }, lines.last?["summary"] as? [String: Any])
    }

    @Test func replayOntoAChangedCopyReportsExactlyTheChanges() throws {
        try makeDatabases()
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget + "\nmasks: [email]"])
        let token = try provider.token("replay21b@example.com", groups: ["analysts"])
        let session = try run("psql", ["-X", "-v", "ON_ERROR_STOP=1", "-At", "host=127.0.0.1 port=\(gate.port("db")) dbname=\(Self.source) user=agent sslmode=disable"]
                                + Self.workload.flatMap { ["-c", $0] }, environment: ["PGPASSWORD": token, "PGCONNECT_TIMEOUT": "10"])
        #expect(session.status == 0, "\(session.stderr)")
        #expect(session.stdout.contains("7|item-7|70") && session.stdout.contains("@example.com") && !session.stdout.contains("ann@example.com"), "\(session.stdout)")
        #expect(gate.stop() == 0)
        let original = try #require(try gate.captures().first).path

        let key = gate.directory.appendingPathComponent("replay.key").path
        try #require(try run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key]).status == 0)
        let out = gate.directory.appendingPathComponent("replays").path
        let env = try DatabaseEnvironment.load()
        let replay = try run(tool("sessreplay").path, ["--fast", "--json", "--signing-key", key, "--out", out,
                                                       "--target", "postgres://\(env["TOLLGATE_PG_SCRAM_USER"])@127.0.0.1:\(env.port)/\(Self.target)?sslmode=disable", original],
                             environment: ["PGPASSWORD": env["TOLLGATE_PG_SCRAM_PASSWORD"], "PGPASSFILE": "/nonexistent"])
        #expect(replay.status == 0, "\(replay.stdout)\(replay.stderr)")
        #expect(try ReplayThroughGateTests.json(replay.stdout)["replayed"] as? Int == Self.workload.count, "\(replay.stdout)")
        let replayed = try #require(try FileManager.default.contentsOfDirectory(atPath: out).first { $0.hasSuffix(".sesscap") })
        let replayPath = "\(out)/\(replayed)"

        // Exactly the changed row and the changed type, and nothing else.
        let diff = try run(tool("sessdiff").path, ["--json", original, replayPath])
        #expect(diff.status == 1, "\(diff.stdout)\(diff.stderr)")
        let (differences, summary) = Self.differences(diff.stdout)
        #expect(differences.compactMap { $0["kind"] as? String }.sorted() == ["columns", "values"], "\(diff.stdout)")
        let values = differences.first { $0["kind"] as? String == "values" }
        #expect((values?["statement"] as? String)?.contains("replay21b_items WHERE id = 7") == true, "\(String(describing: values))")
        #expect(values?["removed"] as? [String] == ["row: id='7' name='item-7' qty='70'"], "\(String(describing: values))")
        #expect(values?["added"] as? [String] == ["row: id='7' name='item-7-renamed' qty='70'"], "\(String(describing: values))")
        let columns = differences.first { $0["kind"] as? String == "columns" }
        #expect(columns?["detail"] as? String == "columns differ: -amount int4, +amount int8", "\(String(describing: columns))")
        #expect(summary?["paired"] as? Int == Self.workload.count, "\(String(describing: summary))")

        // The dropped index: the lookup became a sequential scan of the big table, seen only under
        // --latency, as the one latency difference on that statement (the others may vary with the
        // machine's load; none of them scans the big table).
        let latency = try run(tool("sessdiff").path, ["--json", "--latency", "300", original, replayPath])
        #expect(latency.status == 1, "\(latency.stdout)\(latency.stderr)")
        let timed = Self.differences(latency.stdout).differences
        let slower = timed.filter { $0["kind"] as? String == "latency" && ($0["statement"] as? String)?.contains("replay21b_events") == true }
        #expect(slower.count == 1, "\(latency.stdout)")
        #expect(timed.filter { $0["kind"] as? String != "latency" }.compactMap { $0["kind"] as? String }.sorted() == ["columns", "values"], "\(latency.stdout)")

        try followsTheLink(original: original, replay: replayPath, scratch: gate.directory.path)
    }

    /// The pt-upgrade workflow (README): one recorded session replayed onto A and onto B, the two
    /// replays diffed, neither of them the original. Both replays hold the same skipped write (a
    /// sessreplay deny decision) and headers that differ (ids, target, time): not a difference.
    /// B's changed row, changed type and changed masked value (kept by each replay as a count and
    /// digest) are. Two replays onto A differ in nothing.
    @Test func twoReplaysOfOneCaptureDiffOnlyByTheirTargets() throws {
        try makeDatabases()
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget + "\nmasks: [email]"])
        let token = try provider.token("replay21b@example.com", groups: ["analysts"])
        let statements = Self.workload + ["INSERT INTO replay21b_copy VALUES (21, 'twenty-one')"]
        let session = try run("psql", ["-X", "-v", "ON_ERROR_STOP=1", "-At", "host=127.0.0.1 port=\(gate.port("db")) dbname=\(Self.source) user=agent sslmode=disable"]
                                + statements.flatMap { ["-c", $0] }, environment: ["PGPASSWORD": token, "PGCONNECT_TIMEOUT": "10"])
        #expect(session.status == 0, "\(session.stderr)")
        #expect(gate.stop() == 0)
        let original = try #require(try gate.captures().first).path

        let key = gate.directory.appendingPathComponent("replay.key").path
        try #require(try run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key]).status == 0)
        let db = try DatabaseEnvironment.load()
        func replay(_ name: String, onto database: String) throws -> String {
            let out = gate.directory.appendingPathComponent(name).path
            let r = try run(tool("sessreplay").path, ["--fast", "--json", "--signing-key", key, "--out", out,
                                                      "--target", "postgres://\(db["TOLLGATE_PG_SCRAM_USER"])@127.0.0.1:\(db.port)/\(database)?sslmode=disable", original],
                            environment: ["PGPASSWORD": db["TOLLGATE_PG_SCRAM_PASSWORD"], "PGPASSFILE": "/nonexistent"])
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            let summary = try ReplayThroughGateTests.json(r.stdout)
            #expect(summary["replayed"] as? Int == Self.workload.count && summary["skipped"] as? [String: Int] == ["write": 1], "\(r.stdout)")
            return "\(out)/\(try #require(try FileManager.default.contentsOfDirectory(atPath: out).first { $0.hasSuffix(".sesscap") }))"
        }
        let before = try replay("before", onto: Self.source), after = try replay("after", onto: Self.target)
        let again = try replay("again", onto: Self.source)

        // Before against after: exactly B's changed row, changed type and changed masked value
        // (which the replays kept only as count and digest, so by digest, never shown).
        let diff = try run(tool("sessdiff").path, ["--json", before, after])
        #expect(diff.status == 1 && diff.stderr.isEmpty, "\(diff.stdout)\(diff.stderr)")
        let (differences, summary) = Self.differences(diff.stdout)
        #expect(differences.compactMap { $0["kind"] as? String }.sorted() == ["columns", "values", "values"], "\(diff.stdout)")
        #expect(!diff.stdout.contains("ann"), "\(diff.stdout)")
        let masked = differences.first { ($0["statement"] as? String)?.contains("replay21b_people") == true }
        #expect(masked?["kind"] as? String == "values"
                && masked?["detail"] as? String == "rows kept only as count and digest (the original's were masked) differ (1 → 1 rows, by digest)",
                "\(String(describing: masked))")
        let values = differences.first { ($0["statement"] as? String)?.contains("replay21b_items") == true }
        #expect((values?["statement"] as? String)?.contains("replay21b_items WHERE id = 7") == true, "\(String(describing: values))")
        #expect(values?["removed"] as? [String] == ["row: id='7' name='item-7' qty='70'"], "\(String(describing: values))")
        #expect(values?["added"] as? [String] == ["row: id='7' name='item-7-renamed' qty='70'"], "\(String(describing: values))")
        let columns = differences.first { $0["kind"] as? String == "columns" }
        #expect(columns?["detail"] as? String == "columns differ: -amount int4, +amount int8", "\(String(describing: columns))")
        #expect(summary?["paired"] as? Int == statements.count && summary?["a"] as? String == before && summary?["b"] as? String == after,
                "\(String(describing: summary))")

        // Two replays onto the same database: nothing.
        let same = try run(tool("sessdiff").path, ["--json", before, again])
        #expect(same.status == 0, "\(same.stdout)\(same.stderr)")
        let sameSummary = Self.differences(same.stdout)
        #expect(sameSummary.differences.isEmpty && sameSummary.summary?["same"] as? Bool == true
                && sameSummary.summary?["paired"] as? Int == statements.count, "\(same.stdout)")
    }

    /// A named prepared statement (psycopg's prepare=True: one Parse, then Bind/Execute by name)
    /// is parsed once per replay connection and re-bound on each execution; an unnamed one is
    /// parsed with each execution, as recorded.
    @Test func aNamedStatementIsParsedOncePerReplay() throws {
        try makeDatabases()
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget])
        let token = try provider.token("replay21b@example.com", groups: ["analysts"])
        var env = gate.libpqEnvironment("db", token: token)
        env["PGDATABASE"] = Self.source
        let script = """
            import psycopg
            c = psycopg.connect('', autocommit=True)
            for i in range(1, 11):
                print(c.execute('SELECT id, name FROM replay21b_items WHERE id = %s', (i,), prepare=True).fetchall())
            for i in range(2):
                print(c.execute('SELECT count(*) AS n FROM replay21b_items WHERE qty > %s', (i * 100,), prepare=False).fetchall())
            """
        let py = try run("python3", ["-c", script], environment: env)
        #expect(py.status == 0 && py.stdout.contains("[(7, 'item-7')]"), "\(py.stdout)\(py.stderr)")
        #expect(gate.stop() == 0)
        let original = try #require(try gate.captures().first)
        let named = try allEvents(original).compactMap { e -> PostgresRequest? in
            if case .request(.postgres(let p)) = e.payload, !p.statementName.isEmpty { p } else { nil }
        }
        try #require(named.count == 10 && Set(named.map(\.statementName)).count == 1, "\(named.map(\.statementName))")

        let key = gate.directory.appendingPathComponent("replay.key").path
        try #require(try run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key]).status == 0)
        let out = gate.directory.appendingPathComponent("replays").path
        let db = try DatabaseEnvironment.load()
        let replay = try run(tool("sessreplay").path, ["--fast", "--json", "--signing-key", key, "--out", out,
                                                       "--target", "postgres://\(db["TOLLGATE_PG_SCRAM_USER"])@127.0.0.1:\(db.port)/\(Self.target)?sslmode=disable", original.path],
                             environment: ["PGPASSWORD": db["TOLLGATE_PG_SCRAM_PASSWORD"], "PGPASSFILE": "/nonexistent"])
        #expect(replay.status == 0, "\(replay.stdout)\(replay.stderr)")
        let summary = try ReplayThroughGateTests.json(replay.stdout)
        #expect(summary["replayed"] as? Int == 12, "\(replay.stdout)")
        #expect((summary["sessions"] as? [[String: Any]])?.first?["prepared_statement_parses"] as? Int == 1, "\(replay.stdout)")
        let replayPath = try #require(try FileManager.default.contentsOfDirectory(atPath: out).first { $0.hasSuffix(".sesscap") }).description
        let events = try allEvents(try CaptureFile(path: "\(out)/\(replayPath)"))
        // One Parse, at the statement's first execution; ten executions bound by its name.
        let parsedAt = events.compactMap { e -> UInt64? in
            if case .annotation(let a) = e.payload, a.attributes.contains(where: { $0.key == "replay.parsed" && $0.value == named[0].statementName }) { e.exchangeID } else { nil }
        }
        #expect(parsedAt.count == 1, "\(parsedAt)")
        let firstNamed = events.first { if case .request(.postgres(let p)) = $0.payload { !p.statementName.isEmpty } else { false } }
        #expect(parsedAt.first == firstNamed?.exchangeID)
        // And the answers are the recorded ones but for the row B changed.
        let diff = try run(tool("sessdiff").path, ["--json", "\(out)/\(replayPath)"])
        #expect(diff.status == 1, "\(diff.stdout)\(diff.stderr)")
        let differences = Self.differences(diff.stdout).differences
        #expect(differences.count == 1 && (differences.first?["added"] as? [String])?.first?.contains("item-7-renamed") == true, "\(diff.stdout)")

        // --fast pipelines each session's requests: waiting for each answer (--pipeline 1) gives the
        // same answers, request for request, and the same single Parse.
        let serialOut = gate.directory.appendingPathComponent("serial").path
        let serial = try run(tool("sessreplay").path, ["--fast", "--pipeline", "1", "--json", "--signing-key", key, "--out", serialOut,
                                                       "--target", "postgres://\(db["TOLLGATE_PG_SCRAM_USER"])@127.0.0.1:\(db.port)/\(Self.target)?sslmode=disable", original.path],
                             environment: ["PGPASSWORD": db["TOLLGATE_PG_SCRAM_PASSWORD"], "PGPASSFILE": "/nonexistent"])
        #expect(serial.status == 0, "\(serial.stdout)\(serial.stderr)")
        #expect((try ReplayThroughGateTests.json(serial.stdout)["sessions"] as? [[String: Any]])?.first?["prepared_statement_parses"] as? Int == 1, "\(serial.stdout)")
        let serialPath = try #require(try FileManager.default.contentsOfDirectory(atPath: serialOut).first { $0.hasSuffix(".sesscap") })
        let same = try run(tool("sessdiff").path, ["\(out)/\(replayPath)", "\(serialOut)/\(serialPath)"])
        #expect(same.status == 0, "\(same.stdout)\(same.stderr)")
    }

    /// psql's \\copy both ways through the gate: COPY FROM STDIN is replayed with the recorded
    /// data, COPY TO STDOUT's rows are recorded and compared as rows.
    @Test func copyIsReplayedWithItsData() throws {
        try makeDatabases()
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget])
        let token = try provider.token("replay21b@example.com", groups: ["analysts"])
        let script = """
            \\copy replay21b_copy (id, name) FROM STDIN
            1\tone
            2\ttwo
            3\tthree
            \\.
            \\copy (SELECT id, name, qty FROM replay21b_items WHERE id BETWEEN 5 AND 8 ORDER BY id) TO STDOUT

            """
        let session = try run("psql", ["-X", "-v", "ON_ERROR_STOP=1", "-At", "-f", "-", "host=127.0.0.1 port=\(gate.port("db")) dbname=\(Self.source) user=agent sslmode=disable"],
                              environment: ["PGPASSWORD": token, "PGCONNECT_TIMEOUT": "10"], stdin: script)
        #expect(session.status == 0 && session.stdout.contains("7\titem-7\t70"), "\(session.stdout)\(session.stderr)")
        #expect(gate.stop() == 0)
        let original = try #require(try gate.captures().first).path

        let key = gate.directory.appendingPathComponent("replay.key").path
        try #require(try run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key]).status == 0)
        let out = gate.directory.appendingPathComponent("replays").path
        let db = try DatabaseEnvironment.load()
        let replay = try run(tool("sessreplay").path, ["--fast", "--json", "--allow-writes", "--signing-key", key, "--out", out,
                                                       "--target", "postgres://\(db["TOLLGATE_PG_SCRAM_USER"])@127.0.0.1:\(db.port)/\(Self.target)?sslmode=disable", original],
                             environment: ["PGPASSWORD": db["TOLLGATE_PG_SCRAM_PASSWORD"], "PGPASSFILE": "/nonexistent"])
        #expect(replay.status == 0, "\(replay.stdout)\(replay.stderr)")
        let summary = try ReplayThroughGateTests.json(replay.stdout)
        #expect(summary["replayed"] as? Int == 2 && (summary["skipped"] as? [String: Int])?.isEmpty == true, "\(replay.stdout)")
        // The recorded rows reached B.
        #expect(try direct(Self.target, "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM replay21b_copy").stdout == "1:one,2:two,3:three\n")
        // COPY TO STDOUT compared as rows: only B's changed row 7.
        let replayPath = try #require(try FileManager.default.contentsOfDirectory(atPath: out).first { $0.hasSuffix(".sesscap") })
        let diff = try run(tool("sessdiff").path, ["--json", "\(out)/\(replayPath)"])
        #expect(diff.status == 1, "\(diff.stdout)\(diff.stderr)")
        let differences = Self.differences(diff.stdout).differences
        #expect(differences.count == 1 && differences.first?["detail"] as? String == "1 COPY row differs (in order: ORDER BY)", "\(diff.stdout)")
        #expect(differences.first?["removed"] as? [String] == ["copy row 3: 7\titem-7\t70"], "\(diff.stdout)")
        #expect(differences.first?["added"] as? [String] == ["copy row 3: 7\titem-7-renamed\t70"], "\(diff.stdout)")

        // Without --allow-writes the COPY FROM STDIN is a write, refused; COPY TO STDOUT still replays.
        let readOnly = try run(tool("sessreplay").path, ["--dry-run", "--json", "--target", "postgres://u@127.0.0.1:1/x?sslmode=disable", original])
        #expect(readOnly.stdout.contains("\"write\"") && readOnly.status == 0, "\(readOnly.stdout)\(readOnly.stderr)")
    }

    /// --fast sends a lone session's requests in batches: answers, errors and skipped requests
    /// stay matched to their requests, in order, as when each waits for the one before.
    @Test func batchedFastReplayKeepsEveryAnswerInPlace() throws {
        try makeDatabases()
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget])
        let token = try provider.token("replay21b@example.com", groups: ["analysts"])
        let statements = (1...40).map { "SELECT \($0) AS n, name FROM replay21b_items WHERE id = \($0 % 20 + 1)" }
            + ["INSERT INTO replay21b_copy VALUES (9, 'nine')", "SELECT 1 / 0 AS boom"]
            + (41...80).map { "SELECT \($0) AS n, count(*) FROM replay21b_items WHERE qty > \($0)" }
        let session = try run("psql", ["-X", "-At", "host=127.0.0.1 port=\(gate.port("db")) dbname=\(Self.source) user=agent sslmode=disable"]
                                + statements.flatMap { ["-c", $0] }, environment: ["PGPASSWORD": token, "PGCONNECT_TIMEOUT": "10"])
        #expect(session.stderr.contains("division by zero"), "\(session.stderr)")
        #expect(gate.stop() == 0)
        let original = try #require(try gate.captures().first).path
        let key = gate.directory.appendingPathComponent("replay.key").path
        try #require(try run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key]).status == 0)
        let db = try DatabaseEnvironment.load()
        func replay(_ name: String, _ extra: [String]) throws -> String {
            let out = gate.directory.appendingPathComponent(name).path
            let r = try run(tool("sessreplay").path, ["--fast", "--json", "--signing-key", key, "--out", out] + extra
                            + ["--target", "postgres://\(db["TOLLGATE_PG_SCRAM_USER"])@127.0.0.1:\(db.port)/\(Self.target)?sslmode=disable", original],
                            environment: ["PGPASSWORD": db["TOLLGATE_PG_SCRAM_PASSWORD"], "PGPASSFILE": "/nonexistent"])
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            let summary = try ReplayThroughGateTests.json(r.stdout)
            #expect(summary["replayed"] as? Int == 81 && summary["errors"] as? Int == 1 && summary["skipped"] as? [String: Int] == ["write": 1], "\(r.stdout)")
            return "\(out)/\(try #require(try FileManager.default.contentsOfDirectory(atPath: out).first { $0.hasSuffix(".sesscap") }))"
        }
        let batched = try replay("batched", ["--pipeline", "8"]), serial = try replay("serial", ["--pipeline", "1"])
        // Every request once, in the recorded order, the skipped write in its place.
        let ids = try allEvents(try CaptureFile(path: batched)).compactMap { e -> UInt64? in if case .request = e.payload { e.exchangeID } else { nil } }
        #expect(ids.count == 82 && ids == ids.sorted(), "\(ids)")
        let same = try run(tool("sessdiff").path, [batched, serial])
        #expect(same.status == 0, "\(same.stdout)\(same.stderr)")
        // And against the original: the skipped write (refused by the replay: its decision, and its
        // result only in A) and B's changed row 7, read twice (statements 6 and 26); nothing else.
        let diff = try run(tool("sessdiff").path, ["--json", batched])
        let found = Self.differences(diff.stdout).differences
        #expect(found.compactMap { $0["kind"] as? String }.sorted() == ["command-tag", "decision", "values", "values"], "\(diff.stdout)")
        #expect(found.filter { $0["kind"] as? String == "values" }.compactMap { ($0["a"] as? [String: Any])?["exchange"] as? Int } == [6, 26], "\(diff.stdout)")
    }

    /// `sessdiff REPLAY`: the original is found by the replay's header link and checked to be the
    /// replayed session before it is diffed.
    func followsTheLink(original: String, replay: String, scratch: String) throws {
        let linked = try run(tool("sessdiff").path, ["--json", replay])
        #expect(linked.status == 1, "\(linked.stdout)\(linked.stderr)")
        let (differences, summary) = Self.differences(linked.stdout)
        #expect(differences.compactMap { $0["kind"] as? String }.sorted() == ["columns", "values"], "\(linked.stdout)")
        #expect(summary?["a"] as? String == original && summary?["b"] as? String == replay, "\(String(describing: summary))")

        // Moved away from where the replay read it: not found, unless searched for under --original-dir.
        let moved = "\(scratch)/archive/2026/\((original as NSString).lastPathComponent)"
        try FileManager.default.createDirectory(atPath: (moved as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: original, toPath: moved)
        defer { try? FileManager.default.moveItem(atPath: moved, toPath: original) }
        let lost = try run(tool("sessdiff").path, ["--json", replay], environment: ["TOLLGATE_CAPTURES": ""])
        #expect(lost.status == 2 && lost.stderr.contains("was not found") && lost.stderr.contains(original), "\(lost.stderr)")
        let searched = try run(tool("sessdiff").path, ["--json", "--original-dir", "\(scratch)/archive", replay])
        #expect(searched.status == 1, "\(searched.stdout)\(searched.stderr)")
        #expect(Self.differences(searched.stdout).summary?["a"] as? String == moved, "\(searched.stdout)")

        // The same session, but not the capture the replay read (cut short: its chain is not the recorded one).
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: moved)))
        bytes.removeLast(10)
        let other = "\(scratch)/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: "\(other)/copy.sesscap"))
        let wrong = try run(tool("sessdiff").path, ["--original-dir", other, replay])
        #expect(wrong.status == 2 && wrong.stderr.contains("not sealed"), "\(wrong.stderr)")

        // A capture that is not a replay has no link to follow.
        let notReplay = try run(tool("sessdiff").path, [moved])
        #expect(notReplay.status == 2 && notReplay.stderr.contains("is not a replay"), "\(notReplay.stderr)")
    }
}
