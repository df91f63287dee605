import CaptureFormat
import Foundation
import TestSupport
import Testing

/// What the gate decided against what the database did. A scratch database
/// (scripts/differential-db.sql) logs every write and DDL command by triggers and event
/// triggers the gate's account cannot touch; the corpus (`DifferentialCorpus`) runs through a
/// gate whose policy allows exactly what the gate calls read-only. Any write the database logs
/// is a statement the gate read differently from PostgreSQL.
@Suite("differential: the gate's reading against the database's", .serialized)
struct DifferentialTests {
    static let policy = """
        policies:
          - name: read-only
            who: {groups: [ai-assistants]}
            target: diff
            rules:
              - {name: reads, when: {writes: false}, then: allow}

        """

    struct Result: Decodable {
        var name: String
        var login_error: String?
        var errors: [String]
        var tags: [String]
        var writes: [String]
    }

    @Test func nothingTheGateCallsReadOnlyWrites() throws {
        let provider = try sharedProvider.get()
        let database = try DatabaseEnvironment.load()
        let diffDatabase = database["TOLLGATE_PG_DIFF_DATABASE"]
        try #require(!diffDatabase.isEmpty, "no differential database: run scripts/pg-test-cluster start")
        let directDSN = "host=127.0.0.1 port=\(database.port) dbname=\(diffDatabase) user=\(database["TOLLGATE_PG_SCRAM_USER"]) password=\(database["TOLLGATE_PG_SCRAM_PASSWORD"])"

        // The check can fail: a write made straight to the database is logged.
        let control = try run("python3", ["-c", """
            import psycopg, sys
            db = psycopg.connect(sys.argv[1], autocommit=True)
            before = db.execute('SELECT coalesce(max(id), 0) FROM audit.writes').fetchone()[0]
            db.execute('DELETE FROM diff.refunds WHERE id = 999')
            print(db.execute('SELECT count(*) FROM audit.writes WHERE id > %s', (before,)).fetchone()[0])
            """, directDSN])
        #expect(control.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "the scratch database does not log writes: \(control.stderr)")

        let gate = try GateProcess(provider: provider, targets: ["diff": scramTarget], policies: Self.policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let cases = DifferentialCorpus.build()
        let corpus = gate.directory.appendingPathComponent("corpus.json")
        try JSONEncoder().encode(cases).write(to: corpus)
        var environment = gate.libpqEnvironment("diff", token: token)
        environment["PGDATABASE"] = diffDatabase
        environment["DIRECT_DSN"] = directDSN
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/differential.py").path
        let out = try run("python3", [script, corpus.path], environment: environment, timeout: .seconds(600))
        #expect(out.status == 0, "\(out.stderr)")
        let results = try out.stdout.split(separator: "\n").map { try JSONDecoder().decode(Result.self, from: Data($0.utf8)) }
        #expect(results.count == cases.count, "\(results.count) of \(cases.count) cases ran: \(out.stderr)")
        #expect(gate.stop() == 0)

        // What the gate recorded of each case's session, to show beside what the database did.
        var decided: [String: [String]] = [:]
        for capture in try gate.captures() {
            var app = "", lines: [String] = []
            for event in try allEvents(capture) {
                switch event.payload {
                case .sessionStart(let s): app = s.applicationName ?? ""
                case .request(.postgres(let p)): lines.append("request \(p.statementKinds) \(p.text.prefix(80))")
                case .decision(let d): lines.append("decision \(d)")
                case .sessionEnd(let e): lines.append("end \(e.reason)")
                default: break
                }
            }
            decided[app, default: []] += lines
        }

        for r in results where !r.writes.isEmpty {
            Issue.record("\(r.name): the database saw \(r.writes) on a statement the gate let through as read-only; the gate recorded \(decided[r.name] ?? [])")
        }
        // The gate is not simply refusing everything: the reads ran, each to its command tag.
        for r in results where r.name.contains("-read") {
            #expect(r.login_error == nil && r.errors.isEmpty && !r.tags.isEmpty, "\(r.name): \(r.login_error ?? "") \(r.errors)")
        }
        // Every write was refused by the gate (42501) or never logged in, not merely failed in the database.
        for r in results where r.name.contains("-write") || r.name.contains("-cte") || r.name.contains("-copy") {
            #expect(r.login_error != nil || r.errors.contains { $0.hasPrefix("42501") }, "\(r.name): \(r.errors)")
        }
        try gate.expectNoSecrets([token])
    }
}
