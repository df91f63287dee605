import CaptureFormat
import Foundation
import TestSupport
import Testing

/// Sessions end as PostgreSQL ends them: after Terminate the connection is closed (asyncpg's
/// `close()` waits for that), and when the server, the idle timeout or a shutdown ends a
/// session the client gets one FATAL, PostgreSQL's, then the close; the end is recorded at once.
@Suite("sessions end as PostgreSQL ends them", .serialized)
struct SessionEndTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    /// Everything the gate sends until it closes the connection (bounded: a gate that never
    /// closes fails the test instead of hanging it).
    func messagesUntilClose(_ client: RawPostgresClient) -> (messages: [(type: UInt8, body: [UInt8])], closed: Bool) {
        var limit = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(client.fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var messages: [(type: UInt8, body: [UInt8])] = []
        while true {
            guard let m = try? client.readMessage() else { break }
            messages.append(m)
        }
        // EOF, not the receive time limit: a read now returns 0 at once.
        var byte: UInt8 = 0
        let n = Foundation.read(client.fd, &byte, 1)
        return (messages, n == 0)
    }

    func errorCodes(_ messages: [(type: UInt8, body: [UInt8])]) -> [String] {
        messages.filter { $0.type == UInt8(ascii: "E") }.map { m in
            // Fields: a code byte, a NUL-terminated value; 'C' is the SQLSTATE.
            var i = 0
            while i < m.body.count, m.body[i] != 0 {
                let code = m.body[i]
                let end = m.body[(i + 1)...].firstIndex(of: 0) ?? m.body.count
                if code == UInt8(ascii: "C") { return String(decoding: m.body[(i + 1)..<end], as: UTF8.self) }
                i = end + 1
            }
            return "?"
        }
    }

    func sessionEnd(_ capture: CaptureFile) throws -> SessionEnd? {
        guard case .sessionEnd(let end) = try allEvents(capture).last?.payload else { return nil }
        return end
    }

    /// asyncpg's close() sends Terminate and waits for the server to close the connection.
    @Test func asyncpgCloseReturnsAndTheEndIsRecordedAtOnce() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("asyncpg@example.com")
        let script = """
            import asyncio, os, asyncpg
            async def main():
                c = await asyncpg.connect(host="127.0.0.1", port=int(os.environ["PGPORT"]), user="agent",
                                          password=os.environ["PGPASSWORD"], database=os.environ["PGDATABASE"], ssl=False)
                print("value", await c.fetchval("SELECT 41 + 1"), flush=True)
                try:
                    await asyncio.wait_for(c.close(), 20)
                    print("closed", flush=True)
                except asyncio.TimeoutError:
                    print("close did not return", flush=True)
            asyncio.run(main())
            """
        let r = try run("python3", ["-c", script], environment: gate.libpqEnvironment("demo", token: token), timeout: .seconds(60))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("value 42"), "\(r.stdout)")
        #expect(r.stdout.contains("closed\n"), "\(r.stdout)")
        // Sealed while the gate still runs: the end is recorded when the session ends, not at shutdown.
        try waitUntil("the capture to be sealed", timeout: .seconds(20)) {
            (try? gate.captures().first?.state) == .sealed(.cleanClose)
        }
        #expect(gate.process.isRunning)
        let capture = try #require(try gate.captures().first)
        #expect(try sessionEnd(capture)?.reason == "client-terminate")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }

    /// The server ends the session (pg_terminate_backend): the client reads its FATAL alone, then the close.
    @Test func anUpstreamFatalReachesTheClientAloneThenTheClose() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("fatal@example.com")
        let client = try RawPostgresClient(port: gate.port("demo"), database: gate.database.database, token: token)
        try client.send(query: "SELECT pg_terminate_backend(pg_backend_pid())")
        let (messages, closed) = messagesUntilClose(client)
        client.close()
        #expect(errorCodes(messages) == ["57P01"], "\(messages.map { String(decoding: $0.body, as: UTF8.self) })")
        #expect(closed)
        try waitUntil("the capture to be sealed", timeout: .seconds(20)) { (try? gate.captures().first?.state) == .sealed(.cleanClose) }
        #expect(try sessionEnd(try #require(try gate.captures().first))?.reason == "upstream-fatal")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }

    /// The idle timeout: 57P05, as PostgreSQL's idle_session_timeout, then the close.
    @Test func anIdleSessionGetsOneFatalThenTheClose() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget + "\nlimits:\n  idle_timeout: 1s"])
        let token = try provider.token("idle@example.com")
        let client = try RawPostgresClient(port: gate.port("demo"), database: gate.database.database, token: token)
        let (messages, closed) = messagesUntilClose(client)
        client.close()
        #expect(errorCodes(messages) == ["57P05"])
        #expect(closed)
        gate.stop()
        #expect(try sessionEnd(try #require(try gate.captures().first))?.reason == "idle-timeout")
    }

    /// The gate's shutdown: 57P01 admin_shutdown, as PostgreSQL's own shutdown, then the close;
    /// asyncpg sees its connection closed.
    @Test func shutdownSendsAdminShutdownThenCloses() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("shutdown@example.com")
        let client = try RawPostgresClient(port: gate.port("demo"), database: gate.database.database, token: token)
        let script = """
            import asyncio, os, sys, asyncpg
            async def main():
                c = await asyncpg.connect(host="127.0.0.1", port=int(os.environ["PGPORT"]), user="agent",
                                          password=os.environ["PGPASSWORD"], database=os.environ["PGDATABASE"], ssl=False)
                print("connected", flush=True)
                sys.stdin.readline()
                for _ in range(200):
                    if c.is_closed(): break
                    await asyncio.sleep(0.1)
                try:
                    await c.fetchval("SELECT 1")
                    print("still usable")
                except Exception as e:
                    print("closed:", type(e).__name__, getattr(e, "sqlstate", None))
            asyncio.run(main())
            """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script]
        python.environment = ProcessInfo.processInfo.environment.merging(gate.libpqEnvironment("demo", token: token)) { $1 }
        let input = Pipe(), output = Pipe()
        python.standardInput = input
        python.standardOutput = output
        try python.run()
        defer { if python.isRunning { python.terminate() } }
        let first = output.fileHandleForReading.availableData
        #expect(String(decoding: first, as: UTF8.self).contains("connected"))
        kill(gate.process.processIdentifier, SIGTERM)
        let (messages, closed) = messagesUntilClose(client)
        client.close()
        #expect(errorCodes(messages) == ["57P01"])
        #expect(closed)
        input.fileHandleForWriting.write(Data("go\n".utf8))
        python.waitUntilExit()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(said.contains("closed:") && !said.contains("still usable"), "\(said)")
        #expect(gate.stop() == 0)
        let ends = try gate.captures().compactMap { try sessionEnd($0)?.reason }
        #expect(ends == ["shutdown", "shutdown"], "\(ends)")
        try gate.expectNoSecrets([token])
    }
}
