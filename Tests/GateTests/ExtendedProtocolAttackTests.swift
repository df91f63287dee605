import CaptureFormat
import Foundation
import TestSupport
import Testing

/// The third review (docs/review-2026-12.md, 2026-12-05): message sequences that made the gate mask
/// and record one statement while PostgreSQL ran another, each sent by hand
/// (Fixtures/attack_sequences.py) through a gate with column rules (`customers.phone`). The real
/// statement reads `reverse(phone)`, a computed value only the column rule masks (the phone
/// detector does not recognise it reversed); none of it may reach the client in clear.
@Suite("extended protocol and savepoints, tried as an attacker", .serialized)
struct ExtendedProtocolAttackTests {
    let provider: OIDCProvider
    init() throws { provider = try sharedProvider.get() }

    func attack(_ scenario: String) throws -> (out: [String: Any], clear: [String], gate: GateProcess, token: String) {
        let gate = try GateProcess(provider: provider, targets: ["demo": MaskingThroughGateTests.maskedTarget])
        let direct = try gate.database.psql(["-At", "-c", "SELECT reverse(phone) FROM customers ORDER BY id LIMIT 3"])
        try #require(direct.status == 0, "\(direct.stderr)")
        let clear = direct.stdout.split(separator: "\n").map(String.init)
        try #require(clear.count == 3)
        let token = try provider.token("analyst@example.com", groups: ["analysts"])
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/attack_sequences.py").path
        let r = try run("python3", [script, scenario], environment: gate.libpqEnvironment("demo", token: token), timeout: .seconds(60))
        try #require(r.status == 0, "\(r.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        return (out, clear, gate, token)
    }

    func rows(_ out: [String: Any]) -> [String] { ((out["rows"] as? [[Any]]) ?? []).flatMap { $0.map { "\($0)" } } }
    func messages(_ out: [String: Any]) -> [String] { ((out["errors"] as? [[String: Any]]) ?? []).compactMap { $0["message"] as? String } }

    /// A Query inside an extended batch whose Execute fails: PostgreSQL skips it unanswered up to
    /// the Sync. The gate counted it as answered by a ReadyForQuery of its own, fell one batch
    /// behind, and from then on masked and recorded every result against the request before it
    /// (the result of `reverse(phone)` went out in clear). Now the Query is refused.
    @Test func aQueryInsideAFailedBatchIsRefused() throws {
        let (out, clear, gate, token) = try attack("query-in-failed-batch")
        let values = rows(out)
        #expect(!values.contains { clear.contains($0) }, "clear values reached the client: \(values)")
        #expect(values.contains("after") && values.filter { $0.hasPrefix("****") }.count == 3, "\(out)")
        // One error, the server's: the gate's refusal of the Query is part of the failed batch.
        #expect(messages(out) == ["division by zero"], "\(out)")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        // Each result is on the record under its own request.
        var texts: [UInt64: String] = [:], recorded: [UInt64: [String]] = [:]
        for event in try gate.captures().flatMap({ try allEvents($0) }) {
            switch event.payload {
            case .request(.postgres(let p)): texts[event.exchangeID] = p.text
            case .response(.postgres(let p)):
                recorded[event.exchangeID, default: []] += p.rows.flatMap { $0 }.compactMap { $0.map { String(decoding: $0, as: UTF8.self) } }
            default: break
            }
        }
        #expect(!texts.values.contains("SELECT 'decoy'::text AS v"), "the Query inside the batch was forwarded: \(texts)")
        let after = try #require(texts.first { $0.value == "SELECT 'after'::text AS v" }?.key)
        #expect(recorded[after] == ["after"], "\(texts) \(recorded)")
        #expect(!recorded.values.joined().contains { clear.contains($0) }, "\(recorded)")
    }

    /// A cursor declared inside a savepoint is closed by ROLLBACK TO (also after an error), so its
    /// name is free for a new DECLARE; the gate kept the first cursor and masked the FETCH as its
    /// constant. The same with the ROLLBACK TO, DECLARE and FETCH pipelined before any answer.
    @Test(arguments: ["savepoint-cursor", "savepoint-cursor-pipelined", "error-then-rollback-to"])
    func aCursorRolledBackToASavepointIsForgotten(scenario: String) throws {
        let (out, clear, gate, token) = try attack(scenario)
        let values = rows(out)
        #expect(!values.contains { clear.contains($0) }, "clear values reached the client: \(values)")
        // The FETCH ran (the statements are allowed): its values are there, masked.
        #expect(values.filter { $0.hasPrefix("****") }.count == 3, "\(out)")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }

    /// SQL cursors and protocol portals are one namespace on the server. SQL CLOSE (or CLOSE ALL)
    /// of a portal, then DECLARE of its name: an Execute of the name runs the cursor, and the gate
    /// masked it as the portal. A protocol Close of a cursor, then DECLARE: the gate kept the closed
    /// cursor. Now the gate forgets the portal at the CLOSE and refuses the Close.
    @Test(arguments: ["sql-close-of-portal", "close-all-of-portal", "protocol-close-of-cursor", "bind-over-cursor"])
    func cursorsAndPortalsShareOneNamespace(scenario: String) throws {
        let (out, clear, gate, token) = try attack(scenario)
        let values = rows(out)
        #expect(!values.contains { clear.contains($0) }, "clear values reached the client: \(values)")
        if scenario == "protocol-close-of-cursor" {
            #expect(messages(out).contains { $0.contains("is a cursor DECLAREd in SQL") }, "\(out)")
        } else if scenario == "bind-over-cursor" {
            #expect(messages(out).contains { $0.contains("is a cursor DECLAREd in SQL") }, "\(out)")
            #expect(values.filter { $0.hasPrefix("****") }.count == 3, "\(out)")
        } else {
            #expect(values.filter { $0.hasPrefix("****") }.count == 3, "\(out)")
        }
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }

    /// A FETCH of a cursor the gate does not know (here one ROLLBACK TO closed) runs a query no one
    /// decided on: under a policy that allows whatever does not write, it is refused as a write.
    @Test func aFetchOfAnUnknownCursorIsNotReadOnly() throws {
        let policy = """
            policies:
              - name: read-only
                who: {groups: [ai-assistants]}
                target: demo
                rules:
                  - {name: reads, when: {writes: false}, then: allow}

            """
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let r = try run("psql", ["-X", "-At", "host=127.0.0.1 port=\(gate.port("demo")) dbname=\(gate.database.database) user=agent sslmode=disable"],
                        environment: ["PGPASSWORD": token, "PGCONNECT_TIMEOUT": "10"], stdin: """
            BEGIN;
            SAVEPOINT s;
            DECLARE c CURSOR FOR SELECT count(*) FROM analytics.events;
            FETCH 1 FROM c;
            ROLLBACK TO s;
            FETCH 1 FROM c;
            ROLLBACK;
            """)
        // The first FETCH is of a cursor the gate saw declared: a read, answered.
        #expect(r.stdout.contains("5000"), "\(r.stdout) \(r.stderr)")
        // The second is refused by the gate, not left to the server (which would answer 34000).
        #expect(r.stderr.contains("tollgate: denied") && !r.stderr.contains("does not exist"), "\(r.stderr)")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }
}
