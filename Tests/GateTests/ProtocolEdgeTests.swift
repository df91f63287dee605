import CaptureFormat
import Foundation
import TestSupport
import Testing

@Suite("protocol edges through the gate", .serialized)
struct ProtocolEdgeTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    @Test func encryptionRequestsAreAnsweredAsConfigured() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        // GSSENCRequest is always declined; SSLRequest is declined by a target without TLS.
        let gss = try rawExchange(port: gate.port("demo"), bytes: [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x30])
        #expect(gss.first == UInt8(ascii: "N"))
        let ssl = try rawExchange(port: gate.port("demo"), bytes: [0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F])
        #expect(ssl.first == UInt8(ascii: "N"))
        // psql's default sslmode=prefer falls back to plaintext on loopback.
        let token = try provider.token("edge@example.com")
        let r = try gate.psql("demo", token: token, ["-c", "SELECT 'plain'"], sslmode: "prefer")
        #expect(r.status == 0, "\(r.stderr)")
        gate.stop()
        try gate.expectNoSecrets([token])
    }

    @Test func errorInTheMiddleOfAResultIsRecordedWithItsRows() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("edge@example.com")
        let r = try gate.psql("demo", token: token, ["-c", "SELECT i, 10 / (5 - i) FROM generate_series(1, 10) AS i"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("division by zero"))
        gate.stop()
        try gate.expectNoSecrets([token])
        let responses = try allEvents(try #require(try gate.captures().first)).compactMap { e -> PostgresResponse? in
            if case .response(.postgres(let p)) = e.payload { return p } else { return nil }
        }
        #expect(responses.count == 1)
        #expect(responses.first?.error?.sqlState == "22012")
        #expect(responses.first?.columns.count == 2)
        #expect(responses.first?.rows.count == 4, "the rows sent before the error are recorded too")
    }

    /// Flush gets the answers so far without a Sync; Close of a portal and of a statement
    /// reaches the server (a Bind of the closed statement then fails there), and the gate
    /// forgets them too: the second Execute is recorded against nothing the gate still holds.
    @Test func flushAndCloseReachTheServer() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("edge@example.com")
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/raw_protocol.py").path
        let r = try run("python3", [script, "flush-and-close"], environment: gate.libpqEnvironment("demo", token: token), timeout: .seconds(30))
        #expect(r.status == 0, "\(r.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        // ParseComplete, BindComplete (flushed); the row, CommandComplete, CloseComplete ×2, ReadyForQuery;
        // then the Bind of the closed statement: an error and ReadyForQuery.
        #expect(out["types"] as? String == "12DC33ZEZ", "\(out)")
        #expect((out["rows"] as? [[Any]])?.first?.first as? String == "42", "\(out)")
        #expect((out["errors"] as? [[String: Any]])?.first?["code"] as? String == "26000", "\(out)")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        let events = try allEvents(try #require(try gate.captures().first))
        let requests = events.compactMap { e -> PostgresRequest? in if case .request(.postgres(let p)) = e.payload { return p } else { return nil } }
        #expect(requests.map(\.text) == ["SELECT 41 + 1 AS v", "EXECUTE \"s1\""], "\(requests.map(\.text))")
    }

    @Test func idleSessionsAreClosedWithAClearError() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget + "\nlimits:\n  idle_timeout: 1s"])
        let token = try provider.token("idle@example.com")
        let client = try RawPostgresClient(port: gate.port("demo"), database: gate.database.database, token: token)
        sleep(2)
        let message = try client.readMessage()
        #expect(message.type == UInt8(ascii: "E"))
        #expect(String(decoding: message.body, as: UTF8.self).contains("57P05"))
        client.close()
        gate.stop()
        try gate.expectNoSecrets([token])
        guard case .sessionEnd(let end) = try allEvents(try #require(try gate.captures().first)).last?.payload else {
            Issue.record("no session end"); return
        }
        #expect(end.reason == "idle-timeout")
    }

    @Test func notificationsAndNoticesPassThrough() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("edge@example.com")
        let r = try gate.psql("demo", token: token, [
            "-c", "LISTEN tollgate_test",
            "-c", "NOTIFY tollgate_test, 'hello'",
            "-c", "DO $$ BEGIN RAISE NOTICE 'a notice from %', 'plpgsql'; END $$",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("hello") || r.stderr.contains("hello"), "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("a notice from plpgsql"))
        gate.stop()
        try gate.expectNoSecrets([token])
        let responses = try allEvents(try #require(try gate.captures().first)).compactMap { e -> PostgresResponse? in
            if case .response(.postgres(let p)) = e.payload { return p } else { return nil }
        }
        #expect(responses.contains { $0.notices.contains { $0.message == "a notice from plpgsql" } })
    }
}
