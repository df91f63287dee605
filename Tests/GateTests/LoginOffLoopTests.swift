import Foundation
import TestSupport
import Testing

/// Login's disk work (capture directory, file, header, fsync) is off the event loop: with one
/// event loop, a login whose capture creation stalls (a test hook makes it wait on a FIFO)
/// does not stop another session on that loop from logging in and running statements.
@Suite("login I/O off the event loop", .serialized)
struct LoginOffLoopTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    @Test func aStalledCaptureCreationStallsOnlyItsOwnLogin() throws {
        let scratch = try ScratchDirectory("defects18-login")
        defer { scratch.remove() }
        let fifo = scratch.path("disk")
        try #require(mkfifo(fifo, 0o600) == 0)
        let port = try freePort()
        let yaml = """
            proxy:
              id: test-gate
              captures: captures
              signing_key: signing.key
              shutdown_grace: 5s
              threads: 1
            identity:
              issuer: \(provider.issuer)
              audiences: [tollgate]
            targets:
              demo:
                protocol: postgres
                listen: 127.0.0.1:\(port)
                upstream: 127.0.0.1:\(try DatabaseEnvironment.load().port)
            \(scramTarget.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            """
        let gate = try GateProcess(config: yaml, ports: ["demo": port], environment: ["TOLLGATE_TEST_CAPTURE_GATE": fifo])
        let token = try provider.token("disk@example.com")
        // The first login: its capture creation waits on the FIFO.
        let (stalled, stalledOut, _) = try gate.startPsql("demo", token: token, "SELECT 'stalled session ran'")
        defer { if stalled.isRunning { stalled.terminate() } }
        try waitUntil("the first login to reach the capture", timeout: .seconds(20)) {
            FileManager.default.fileExists(atPath: fifo + ".waiting")
        }
        // Meanwhile, on the same (only) event loop, another session logs in and runs.
        let other = try gate.psql("demo", token: token, ["-c", "SELECT 'other session ran'"])
        #expect(other.status == 0, "\(other.stderr)")
        #expect(other.stdout.contains("other session ran"))
        #expect(stalled.isRunning, "the first login did not wait: the check says nothing")
        // The disk comes back: the first login completes.
        let writer = open(fifo, O_WRONLY)
        if writer >= 0 { close(writer) }
        stalled.waitUntilExit()
        #expect(stalled.terminationStatus == 0)
        #expect(String(decoding: stalledOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("stalled session ran"))
        #expect(gate.stop() == 0)
        #expect(try gate.captures().count == 2)
        try gate.expectNoSecrets([token])
    }
}
