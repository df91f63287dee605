import CaptureFormat
import Foundation
import TestSupport
import Testing

/// Popular drivers beyond libpq: a JDBC session (pgJDBC) sees through the gate what it sees
/// talking to PostgreSQL directly, and its close ends the session on the record at once.
@Suite("drivers through the gate", .serialized)
struct DriverTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    static let jar = "/usr/share/java/postgresql.jar"
    static let program = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/JDBCSession.java").path

    func jdbc(_ environment: [String: String]) throws -> Output {
        try run("java", ["-cp", Self.jar, Self.program], environment: environment, timeout: .seconds(120))
    }

    @Test func aJDBCSessionReadsWhatItReadsDirectly() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let db = gate.database
        let direct = try jdbc(["PGPORT": db.port, "PGDATABASE": db.database, "PGUSER": db["TOLLGATE_PG_SCRAM_USER"],
                               "PGPASSWORD": db["TOLLGATE_PG_SCRAM_PASSWORD"]])
        #expect(direct.status == 0, "\(direct.stderr)")
        let token = try provider.token("jdbc@example.com")
        var env = gate.libpqEnvironment("demo", token: token)
        env["PGUSER"] = "agent"
        let through = try jdbc(env)
        #expect(through.status == 0, "\(through.stderr)")
        #expect(through.stdout == direct.stdout)
        #expect(through.stdout.contains("sum 44") && through.stdout.contains("error 22012") && through.stdout.contains("closed true"),
                "\(through.stdout)")
        // Closed by the client's Terminate: sealed while the gate still runs, with that reason.
        try waitUntil("the capture to be sealed", timeout: .seconds(20)) {
            (try? gate.captures().first?.state) == .sealed(.cleanClose)
        }
        let events = try allEvents(try #require(try gate.captures().first))
        guard case .sessionEnd(let end) = events.last?.payload else { Issue.record("no session end"); return }
        #expect(end.reason == "client-terminate")
        #expect(end.counts?.errors == 1)
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }
}
