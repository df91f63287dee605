import CaptureFormat
import Foundation
import TestSupport
import Testing

/// `sessdiff` on two captures the real gate recorded: the same workload against two databases,
/// where one row and one column's type differ, and B ran one request more.
@Suite("sessdiff through the gate", .serialized)
struct SessDiffThroughGateTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    static let table = "format14diff21_items"

    /// The table in `database`: five rows; `changed` alters row 3's name and makes qty a bigint.
    static func prepare(_ env: DatabaseEnvironment, database: String, changed: Bool) throws {
        let sql = """
            DROP TABLE IF EXISTS \(table);
            CREATE TABLE \(table) (id int PRIMARY KEY, name text, qty \(changed ? "bigint" : "int"), email text);
            INSERT INTO \(table) VALUES (1, 'bolt', 10, 'alice@example.com'), (2, 'nut', 20, 'bob@example.com'),
              (3, '\(changed ? "washer-b" : "washer")', 30, 'carol@example.com'), (4, 'screw', 40, 'dave@example.com'),
              (5, 'pin', 50, '\(changed ? "erin.other" : "erin")@example.com');
            """
        let r = try run("psql", ["-X", "-v", "ON_ERROR_STOP=1", "-q",
                                 "host=127.0.0.1 port=\(env.port) dbname=\(database) user=\(env["TOLLGATE_PG_SCRAM_USER"])", "-c", sql],
                        environment: ["PGPASSWORD": env["TOLLGATE_PG_SCRAM_PASSWORD"]])
        #expect(r.status == 0, "\(database): \(r.stderr)")
    }

    @Test func reportsExactlyTheChangedRowTheChangedTypeAndTheExtraRequest() throws {
        let env = try DatabaseEnvironment.load()
        let dbA = env["TOLLGATE_PG_DATABASE"], dbB = env["TOLLGATE_PG_DEMO_DATABASE"]
        try Self.prepare(env, database: dbA, changed: false)
        try Self.prepare(env, database: dbB, changed: true)
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget + "\nmasks: [email]"])
        let token = try provider.token("differ@example.com", groups: ["analysts"])
        let workload = [
            "SELECT id, name, qty, email FROM \(Self.table) ORDER BY id",
            "SELECT name FROM \(Self.table) WHERE id < 3",
            "SELECT count(*) FROM \(Self.table)",
        ]
        func session(_ database: String, _ statements: [String]) throws {
            let args = ["-X", "-v", "ON_ERROR_STOP=1", "-At", "host=127.0.0.1 port=\(gate.port("db")) dbname=\(database) user=agent sslmode=disable"]
                + statements.flatMap { ["-c", $0] }
            let r = try run("psql", args, environment: ["PGPASSWORD": token, "PGCONNECT_TIMEOUT": "10"])
            #expect(r.status == 0, "\(database): \(r.stderr)")
        }
        try session(dbA, workload)
        // B runs one request more, in the middle.
        try session(dbB, [workload[0], "SELECT 'extra' AS only_in_b", workload[1], workload[2]])
        gate.stop()
        let captures = try gate.captures()
        try #require(captures.count == 2)
        // Which capture is which: the one holding the extra request is B.
        func hasExtra(_ c: CaptureFile) throws -> Bool {
            try allEvents(c).contains { if case .request(.postgres(let p)) = $0.payload { p.text.contains("only_in_b") } else { false } }
        }
        let (a, b) = try hasExtra(captures[0]) ? (captures[1], captures[0]) : (captures[0], captures[1])

        let r = try run(tool("sessdiff").path, ["--json", a.path, b.path])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let differences = lines.filter { $0["kind"] != nil }
        let kinds = differences.compactMap { $0["kind"] as? String }.sorted()
        #expect(kinds == ["columns", "only-in-b", "values"], "\(r.stdout)")
        let values = differences.first { $0["kind"] as? String == "values" }
        #expect((values?["removed"] as? [String])?.first?.contains("name='washer'") == true, "\(String(describing: values))")
        #expect((values?["added"] as? [String])?.first?.contains("name='washer-b'") == true, "\(String(describing: values))")
        let columns = differences.first { $0["kind"] as? String == "columns" }
        #expect((columns?["detail"] as? String)?.contains("-qty int4") == true, "\(String(describing: columns))")
        #expect((columns?["detail"] as? String)?.contains("+qty int8") == true, "\(String(describing: columns))")
        let extra = differences.first { $0["kind"] as? String == "only-in-b" }
        #expect((extra?["b"] as? [String: Any])?["index"] as? Int == 2, "\(String(describing: extra))")
        #expect((extra?["statement"] as? String)?.contains("only_in_b") == true)
        // The e-mails differ in the clear (erin / erin.other) but are masked alike: not compared, not a difference.
        let summary = try #require(lines.last?["summary"] as? [String: Any])
        #expect(summary["paired"] as? Int == 3)
        #expect((summary["not_compared_values"] as? Int ?? 0) >= 5, "\(summary)")
        #expect(summary["same"] as? Bool == false)

        // The unified output, as the README shows it.
        let unified = try run(tool("sessdiff").path, [a.path, b.path])
        #expect(unified.status == 1)
        for line in [" columns differ: -qty int4, +qty int8", " 1 row differs (in order: ORDER BY)",
                     "-row 3: id='3' name='washer' qty='30' email='c****@example.com'(not compared)",
                     "+row 3: id='3' name='washer-b' qty='30' email='c****@example.com'(not compared)",
                     "+request: SELECT 'extra' AS only_in_b",
                     "10 masked, withheld or cut values compared by recorded form only (not compared)"] {
            #expect(unified.stdout.contains(line + "\n"), "\(line) not in:\n\(unified.stdout)")
        }

        // The same capture against itself: exit 0, nothing reported.
        let same = try run(tool("sessdiff").path, [a.path, a.path])
        #expect(same.status == 0, "\(same.stdout)\(same.stderr)")
        #expect(!same.stdout.contains("@@"))
        // Ignoring the changed columns leaves only the extra request.
        let ignoring = try run(tool("sessdiff").path, ["--summary", "--ignore", "qty", "--ignore", "na?e", a.path, b.path])
        #expect(ignoring.status == 1)
        #expect(ignoring.stdout.contains("only-in-b"), "\(ignoring.stdout)")
        let counted = ignoring.stdout.split(separator: "\n").filter { $0.hasPrefix("  ") }.map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(counted == ["only-in-b"], "\(ignoring.stdout)")
    }
}
