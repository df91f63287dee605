import Foundation
import TestSupport
import Testing

/// The target's catalog is refreshed once for all the sessions that need it at the same time.
/// The first refresh is held in flight (its catalog query waits on a view the test locks, in a
/// database of this test's own), so every session logs in while it runs: they wait for it
/// rather than each reading the catalog.
@Suite("catalog refresh shared per target", .serialized)
struct CatalogRefreshTests {
    let provider: OIDCProvider
    static let database = "defects18_catalog"

    init() throws {
        provider = try sharedProvider.get()
    }

    /// psql as the cluster's superuser over its socket (as scripts/pg-test-cluster does).
    func admin(_ database: String, _ sql: String) throws -> Output {
        try run("runuser", ["-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "/var/run/postgresql",
                            "-p", try DatabaseEnvironment.load().port, "-d", database, "-Atc", sql])
    }

    @Test func sessionsOpenedTogetherShareOneRefresh() throws {
        // This test's own database and view, made idempotently.
        if try admin("postgres", "SELECT 1 FROM pg_database WHERE datname = '\(Self.database)'").stdout.isEmpty {
            let made = try admin("postgres", "CREATE DATABASE \(Self.database)")
            try #require(made.status == 0 || made.stderr.contains("already exists"), "\(made.stderr)")
        }
        let view = try admin(Self.database, "CREATE OR REPLACE VIEW public.defects18_view AS SELECT 1 AS one")
        try #require(view.status == 0, "\(view.stderr)")

        let policy = """
            policies:
              - name: refresh
                who: {groups: [ai-assistants]}
                target: demo
                rules:
                  - {name: anything, when: {statement: [select]}, then: allow}

            """
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: policy)
        let token = try provider.token("catalog@example.com", groups: ["ai-assistants"])

        // Hold the view: pg_get_viewdef in the catalog query waits for this lock.
        let locker = Process()
        locker.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        locker.arguments = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-h", "/var/run/postgresql",
                            "-p", gate.database.port, "-d", Self.database]
        let lockIn = Pipe()
        locker.standardInput = lockIn
        locker.standardOutput = FileHandle.nullDevice
        try locker.run()
        defer { if locker.isRunning { locker.terminate() } }
        lockIn.fileHandleForWriting.write(Data("BEGIN; LOCK TABLE public.defects18_view IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n".utf8))
        try waitUntil("the view to be locked", timeout: .seconds(20)) {
            (try? admin(Self.database, "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'defects18_view' AND l.mode = 'AccessExclusiveLock' AND l.granted").stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)) == "1"
        }

        let sessions = 6
        var clients: [(Process, Pipe, Pipe)] = []
        for i in 0..<sessions {
            let client = Process()
            client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            client.arguments = ["psql", "-X", "-At", "host=127.0.0.1 port=\(gate.port("demo")) dbname=\(Self.database) user=agent sslmode=disable",
                                "-c", "SELECT 'session \(i) ran'"]
            client.environment = ProcessInfo.processInfo.environment.merging(["PGPASSWORD": token]) { $1 }
            let out = Pipe(), err = Pipe()
            client.standardOutput = out
            client.standardError = err
            try client.run()
            clients.append((client, out, err))
        }
        defer { for (c, _, _) in clients where c.isRunning { c.terminate() } }
        // Every session has reached the catalog: one reads it, the others wait for that read.
        func count(_ marker: String) -> Int { gate.logText.components(separatedBy: marker).count - 1 }
        try waitUntil("every session to reach the catalog", timeout: .seconds(30)) {
            count("reading the target's catalog") + count("waiting for the catalog refresh in flight") >= sessions
        }
        lockIn.fileHandleForWriting.write(Data("COMMIT;\n".utf8))
        try? lockIn.fileHandleForWriting.close()
        for (i, (client, out, err)) in clients.enumerated() {
            client.waitUntilExit()
            let said = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(client.terminationStatus == 0 && said.contains("session \(i) ran"),
                    "\(said)\(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
        }
        #expect(count("reading the target's catalog") == 1, "\(gate.logText)")
        #expect(count("waiting for the catalog refresh in flight") == sessions - 1)
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }
}
