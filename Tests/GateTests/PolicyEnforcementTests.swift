import CaptureFormat
import Foundation
import TestSupport
import Testing

/// The design's example policy, enforced by the gate between real clients and PostgreSQL.
@Suite("policy enforcement through the gate", .serialized)
struct PolicyEnforcementTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    static let policy = """
        policies:
          - name: copilot-analytics
            who: {groups: [ai-assistants]}
            target: demo
            rules:
              - name: read-analytics
                when: {statement: [select], schemas: [analytics], writes: false}
                then: allow
              - name: writes-need-review
                when: {statement: [insert, update]}
                then: review
                approvers: [dba]
                timeout: 1s               # held, and no approver answers here: not approved in time
              - name: no-destruction
                when: {statement: [delete, truncate, drop]}
                then: deny
                message: AI assistants may not delete or drop

        """

    @Test func readOnlyAnalyticsForAssistants() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: Self.policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let allowed = try gate.psql("demo", token: token, ["-c", "SELECT count(*) FROM analytics.events"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(allowed.stdout.contains("5000"))
        for (sql, expected) in [
            ("SELECT email FROM public.customers LIMIT 1", "default-deny"),
            ("UPDATE analytics.events SET country = 'DE' WHERE id = 1", "was not approved in time"),
            ("WITH d AS (DELETE FROM analytics.events RETURNING *) SELECT count(*) FROM d", "default-deny"),
            ("SELECT 1; DROP TABLE analytics.events", "may not delete or drop"),
            ("SELEC broken", "cannot be parsed"),
        ] {
            let r = try gate.psql("demo", token: token, ["-c", sql])
            #expect(r.status != 0, "\(sql) was let through")
            #expect(r.stderr.contains("42501") || r.stderr.contains("tollgate"), "\(sql): \(r.stderr)")
            #expect(r.stderr.contains(expected), "\(sql): \(r.stderr)")
        }
        // The table is still there: nothing destructive reached the database.
        let still = try gate.psql("demo", token: token, ["-c", "SELECT count(*) FROM analytics.events"])
        #expect(still.stdout.contains("5000"))

        // The extended protocol is decided at Parse: psycopg's parameterized query on a denied table.
        let script = "import psycopg\ntry:\n  psycopg.connect('', autocommit=True).execute('SELECT email FROM public.customers WHERE id = %s', (1,))\n  print('allowed')\nexcept psycopg.errors.InsufficientPrivilege as e:\n  print('denied', e.sqlstate)\n"
        let py = try run("python3", ["-c", script], environment: gate.libpqEnvironment("demo", token: token))
        #expect(py.stdout.contains("denied 42501"), "\(py.stdout)\(py.stderr)")

        // Someone outside the policy's groups gets nothing.
        let outsider = try provider.token("intern@example.com", groups: ["interns"])
        let r = try gate.psql("demo", token: outsider, ["-c", "SELECT count(*) FROM analytics.events"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("no policy applies"), "\(r.stderr)")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token, outsider])

        // Every decision is recorded with its policy and rule, and inspected facts ride along.
        var decisions: [Decision] = []
        var requests: [PostgresRequest] = []
        var refusedPerSession: [UInt64] = []
        for c in try gate.captures() {
            for e in try allEvents(c) {
                if case .decision(let d) = e.payload { decisions.append(d) }
                if case .request(.postgres(let p)) = e.payload { requests.append(p) }
                if case .sessionEnd(let end) = e.payload, let counts = end.counts {
                    #expect(counts.refused <= counts.errors && counts.refused <= counts.requests, "\(counts)")
                    refusedPerSession.append(counts.refused)
                }
            }
        }
        // Five refused psql sessions, psycopg's, and the outsider's: one refusal each; the two counts, none.
        #expect(refusedPerSession.sorted() == [0, 0] + [UInt64](repeating: 1, count: 7), "\(refusedPerSession)")
        #expect(decisions.contains { $0.action == .allow && $0.rule == "read-analytics" })
        #expect(decisions.contains { $0.action == .review && $0.rule == "writes-need-review" })
        #expect(decisions.contains { $0.action == .deny && $0.rule == "no-destruction" })
        #expect(decisions.contains { $0.action == .deny && $0.rule == "unparseable" })
        let cte = requests.first { $0.text.hasPrefix("WITH d AS") }
        #expect(cte?.resources.contains { $0.qualifiedName == "analytics.events" && $0.access == .write } == true)
        #expect(cte?.fingerprint.isEmpty == false)
    }

    @Test func sighupReloadsPoliciesWithoutDroppingSessions() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: Self.policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let query = ["-c", "SELECT count(*) FROM public.orders"]
        #expect(try gate.psql("demo", token: token, query).status != 0)
        // A session open across the reload keeps running.
        let (open, _, _) = try gate.startPsql("demo", token: token, "SELECT pg_sleep(1.5), count(*) FROM analytics.events")
        let allowPublic = "      - {name: read-orders, when: {statement: [select], tables: [public.orders], writes: false}, then: allow}\n"
        try gate.reload({ $0.replacingOccurrences(of: "    rules:\n", with: "    rules:\n" + allowPublic) }, expectLog: "policies reloaded")
        let after = try gate.psql("demo", token: token, query)
        #expect(after.status == 0, "\(after.stderr)")
        #expect(after.stdout.contains("2000"))
        // A broken file keeps the running policies, and says why.
        try gate.reload({ $0 + "\n  - name: [broken\n" }, expectLog: "reload failed")
        #expect(gate.logText.contains("reload failed; keeping the running policies"))
        #expect(try gate.psql("demo", token: token, query).status == 0)
        open.waitUntilExit()
        #expect(open.terminationStatus == 0)
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }

    /// SQL-level PREPARE/EXECUTE resolved per session, and unqualified names resolved on the
    /// session's search path (from the startup packet and from SET).
    @Test func preparedStatementsAndTheSearchPathAreFollowed() throws {
        let sessionRules = "      - {name: session-settings, when: {statement: [set, reset, deallocate]}, then: allow}\n"
        let policy = Self.policy.replacingOccurrences(of: "    rules:\n", with: "    rules:\n" + sessionRules)
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        // EXECUTE of a prepared read of analytics is that read; of an unknown name it is unknown, so a write.
        let prepared = try gate.psql("demo", token: token, ["-c", "PREPARE n AS SELECT count(*) FROM analytics.events; EXECUTE n"])
        #expect(prepared.status == 0, "\(prepared.stderr)")
        #expect(prepared.stdout.contains("5000"))
        let unknown = try gate.psql("demo", token: token, ["-c", "EXECUTE nothing_prepared"])
        #expect(unknown.status != 0 && unknown.stderr.contains("tollgate: denied"), "\(unknown.stderr)")
        let deallocated = try gate.psql("demo", token: token, ["-c", "PREPARE n AS SELECT 1 FROM analytics.events", "-c", "DEALLOCATE n", "-c", "EXECUTE n"])
        #expect(deallocated.stderr.contains("tollgate: denied"), "after DEALLOCATE the name is unknown again: \(deallocated.stderr)")
        // A write prepared under a read rule's name is refused at PREPARE.
        let write = try gate.psql("demo", token: token, ["-c", "PREPARE d AS DELETE FROM analytics.events"])
        #expect(write.status != 0 && write.stderr.contains("tollgate: denied"), "\(write.stderr)")

        // Unqualified `events` is public.events (no such table, so default-deny) until the path says analytics.
        let unqualified = ["-c", "SELECT count(*) FROM events"]
        let before = try gate.psql("demo", token: token, unqualified)
        #expect(before.status != 0 && before.stderr.contains("default-deny"), "\(before.stderr)")
        let set = try gate.psql("demo", token: token, ["-c", "SET search_path = analytics, public", "-c", "SELECT count(*) FROM events"])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("5000"))
        var env = gate.libpqEnvironment("demo", token: token)
        env["PGOPTIONS"] = "-c search_path=analytics"
        let startup = try run("psql", ["-X", "-At", "-c", "SELECT count(*) FROM events"], environment: env)
        #expect(startup.status == 0, "\(startup.stderr)")
        #expect(startup.stdout.contains("5000"))
        #expect(gate.stop() == 0)
        let resources = try gate.captures().flatMap { try allEvents($0) }.compactMap { e -> PostgresRequest? in
            if case .request(.postgres(let p)) = e.payload, p.text == "SELECT count(*) FROM events" { return p } else { return nil }
        }.map { $0.resources.map(\.qualifiedName) }
        // No schema on the path has `events`: the name resolves to nothing (no schema rule allows it).
        #expect(resources.contains(["events"]) && resources.contains(["analytics.events"]), "\(resources)")
    }

    /// The read-only corpus: each statement decided the same through psql (simple protocol) and
    /// psycopg (extended protocol, decided at Parse), with the rule that decides it.
    static let corpus: [(sql: String, rule: String)] = [
        ("SELECT count(*) FROM analytics.events", "read-analytics"),
        ("SELECT event_type, count(*) FROM analytics.events GROUP BY 1 /* ; DROP TABLE analytics.events */", "read-analytics"),
        ("SELECT $$it's; DROP TABLE analytics.events$$ AS s FROM analytics.events LIMIT 1", "read-analytics"),
        (#"SELECT U&"d\0061y" FROM analytics.daily_revenue LIMIT 1"#, "read-analytics"),
        (#"SELECT count(*) FROM "analytics"."events""#, "read-analytics"),
        ("EXPLAIN SELECT * FROM analytics.events", "read-analytics"),
        ("WITH d AS (DELETE FROM analytics.events WHERE id < 0 RETURNING *) SELECT count(*) FROM d", "default-deny"),
        ("SELECT * INTO analytics.events_copy FROM analytics.events", "default-deny"),
        ("EXPLAIN ANALYZE DELETE FROM analytics.events WHERE id < 0", "no-destruction"),
        ("DO $$ BEGIN PERFORM 1; END $$", "default-deny"),
        ("CALL analytics.refresh()", "default-deny"),
        ("PREPARE wipe AS DELETE FROM analytics.events", "no-destruction"),
        ("SELECT set_config('role', 'postgres', false) FROM analytics.events LIMIT 1", "default-deny"),
        ("SET ROLE postgres", "default-deny"),
        ("SET search_path = analytics, public", "default-deny"),
        ("COPY analytics.events TO PROGRAM 'cat > /tmp/tollgate-leak'", "default-deny"),
        ("SELECT * FROM analytics.events FOR UPDATE", "default-deny"),
        ("SELECT 1 FROM analytics.events LIMIT 1; DELETE FROM analytics.events WHERE id < 0", "no-destruction"),
        ("SELECT count(*) FROM public.customers", "default-deny"),
        ("SELECT count(*) FROM customers", "default-deny"),
        (#"SELECT count(*) FROM "ANALYTICS".events"#, "default-deny"),
        ("SELECT pg_terminate_backend(pg_backend_pid()) FROM analytics.events LIMIT 1", "default-deny"),
        ("SELECT analytics.risky(id) FROM analytics.events LIMIT 1", "default-deny"),
        ("INSERT INTO analytics.events VALUES (9999999, 'x', 'DE', now())", "writes-need-review"),
    ]

    @Test func corpusIsDecidedTheSameThroughPsqlAndPsycopg() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: Self.policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        func denial(_ rule: String) -> String {
            rule == "writes-need-review" ? "was not approved in time"
                : "denied by policy \"copilot-analytics\" rule \"\(rule)\""
        }
        for (sql, rule) in Self.corpus {
            let r = try gate.psql("demo", token: token, ["-c", sql])
            if rule == "read-analytics" {
                #expect(r.status == 0, "psql: \(sql): \(r.stderr)")
            } else {
                #expect(r.status != 0 && r.stderr.contains(denial(rule)), "psql: \(sql): \(r.stderr)")
            }
        }
        let statements = String(decoding: try JSONSerialization.data(withJSONObject: Self.corpus.map(\.sql)), as: UTF8.self)
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/psycopg_corpus.py").path
        let py = try run("python3", [script], environment: gate.libpqEnvironment("demo", token: token), stdin: statements, timeout: .seconds(60))
        #expect(py.status == 0, "\(py.stderr)")
        let results = try #require(try JSONSerialization.jsonObject(with: Data(py.stdout.utf8)) as? [[String: Any]])
        #expect(results.count == Self.corpus.count)
        for (result, (sql, rule)) in zip(results, Self.corpus) {
            if rule == "read-analytics" {
                #expect(result["ok"] as? Bool == true, "psycopg: \(sql): \(result)")
            } else {
                #expect(result["sqlstate"] as? String == "42501", "psycopg: \(sql): \(result)")
                #expect((result["message"] as? String)?.contains(denial(rule)) == true, "psycopg: \(sql): \(result)")
            }
        }
        // Nothing destructive reached the database, and the capture names each rule.
        let still = try gate.psql("demo", token: token, ["-c", "SELECT count(*) FROM analytics.events"])
        #expect(still.stdout.contains("5000"))
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        let rules = Set(try gate.captures().flatMap { try allEvents($0) }.compactMap { e -> String? in
            if case .decision(let d) = e.payload { return d.rule } else { return nil }
        })
        #expect(rules.isSuperset(of: Set(Self.corpus.map(\.rule))), "\(rules)")
    }
}
