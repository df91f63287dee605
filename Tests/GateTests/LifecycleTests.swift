import CaptureFormat
import Foundation
import TestSupport
import Testing

@Suite("gate lifecycle, back-pressure and token lifetimes", .serialized)
struct LifecycleTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    @Test func sigtermLetsRunningSessionsFinishAndSealsEveryCapture() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("ops@example.com")
        // A statement that outlives the SIGTERM but not the 5 s grace period.
        let (client, out, _) = try gate.startPsql("demo", token: token, "SELECT pg_sleep(3), 'finished'")
        // The session is under way once its capture exists (created when the client is let in).
        try waitUntil("the session to start", timeout: .seconds(20)) { (try? gate.captures().isEmpty) == false }
        kill(gate.process.processIdentifier, SIGTERM)
        // Shutdown has begun and the session still runs: new connections are refused already.
        try waitUntil("the listener to close", timeout: .seconds(2)) { (try? waitForPort(gate.port("demo"), timeout: .milliseconds(100))) == nil }
        #expect(gate.process.isRunning && client.isRunning, "the session ended before the check: it says nothing")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        client.waitUntilExit()
        #expect(client.terminationStatus == 0)
        #expect(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("finished"))
        let captures = try gate.captures()
        #expect(captures.count == 1)
        #expect(captures.allSatisfy { $0.state == .sealed(.cleanClose) && $0.verify().isValid })
    }

    @Test func sessionsBeyondTheGracePeriodAreClosedCleanly() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("ops@example.com")
        let (client, _, err) = try gate.startPsql("demo", token: token, "SELECT pg_sleep(30)")
        try waitUntil("the session to start", timeout: .seconds(20)) { (try? gate.captures().isEmpty) == false }
        usleep(300_000)  // and its statement to reach the database
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        client.waitUntilExit()
        #expect(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("shutting down"))
        let capture = try #require(try gate.captures().first)
        #expect(capture.state == .sealed(.cleanClose))
        guard case .sessionEnd(let end) = try allEvents(capture).last?.payload else { Issue.record("no session end"); return }
        #expect(end.reason == "shutdown")
    }

    @Test func expiredTokensAndForeignIssuersAreRefused() throws {
        let shortLived = try OIDCProvider(tokenMaxAge: 1)
        let gate = try GateProcess(provider: shortLived, targets: ["demo": scramTarget], extraIdentity: "  clock_skew: 0s")
        let token = try shortLived.token("late@example.com")
        sleep(2)
        let expired = try gate.psql("demo", token: token, ["-c", "SELECT 1"])
        #expect(expired.status != 0)
        #expect(expired.stderr.contains("expired"), "\(expired.stderr)")
        // A token from another issuer (another provider, its own keys) is not this gate's.
        let foreign = try provider.token("late@example.com")
        let r = try gate.psql("demo", token: foreign, ["-c", "SELECT 1"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("authentication failed"), "\(r.stderr)")
        gate.stop()
        try gate.expectNoSecrets([token, foreign])
        #expect(try gate.captures().isEmpty)
    }

    /// A client that stops reading must not make the gate hold a large result in memory:
    /// the gate stops reading from PostgreSQL until the client catches up.
    @Test func slowClientDoesNotMakeTheGateBufferTheResult() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget + "\nrecording:\n  max_rows: 10"])
        let token = try provider.token("slow@example.com")
        let client = try RawPostgresClient(port: gate.port("demo"), database: gate.database.database, token: token)
        let before = try residentKiB(gate.process.processIdentifier)
        // About 200 MB of rows.
        try client.send(query: "SELECT repeat('x', 1000) FROM generate_series(1, 200000)")
        sleep(3)
        let stalled = try residentKiB(gate.process.processIdentifier)
        let (rows, tag) = try client.readResult()
        #expect(rows == 200_000)
        #expect(tag == "SELECT 200000")
        #expect(stalled - before < 64 * 1024, "the gate grew by \(stalled - before) KiB while the client was not reading")
        client.close()
        gate.stop()
        try gate.expectNoSecrets([token])
        let response = try allEvents(try #require(try gate.captures().first)).compactMap { e -> PostgresResponse? in
            if case .response(.postgres(let p)) = e.payload { return p } else { return nil }
        }.first
        #expect(response?.rows.count == 10)
        #expect(response?.cut?.rows == 199_990)
        #expect(response?.rowCount == 200_000)
    }
}

func residentKiB(_ pid: Int32) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else {
        throw HarnessError(description: "no VmRSS for \(pid)")
    }
    return kib
}

/// A minimal PostgreSQL client on a raw socket, so a test controls exactly when it reads.
final class RawPostgresClient {
    let fd: Int32

    init(port: Int, database: String, token: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { throw HarnessError(description: "cannot connect") }
        // A small receive buffer, so the kernel does not absorb the result either.
        var size: Int32 = 64 * 1024
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var body: [UInt8] = []
        func int32(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
        body += int32(196_608)
        for (k, v) in [("user", "slow"), ("database", database)] { body += Array(k.utf8) + [0] + Array(v.utf8) + [0] }
        body += [0]
        try write(int32(Int32(body.count + 4)) + body)
        guard try readMessage().type == UInt8(ascii: "R") else { throw HarnessError(description: "no auth request") }
        let password = Array(token.utf8) + [0]
        try write([UInt8(ascii: "p")] + int32(Int32(password.count + 4)) + password)
        while true {
            let m = try readMessage()
            if m.type == UInt8(ascii: "Z") { break }
            if m.type == UInt8(ascii: "E") { throw HarnessError(description: "login failed") }
        }
    }

    func write(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + done, bytes.count - done) }
            guard n > 0 else { throw HarnessError(description: "write failed") }
            done += n
        }
    }

    func read(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress! + done, count - done) }
            guard n > 0 else { throw HarnessError(description: "connection closed") }
            done += n
        }
        return out
    }

    func readMessage() throws -> (type: UInt8, body: [UInt8]) {
        let header = try read(5)
        let length = Int(UInt32(header[1]) << 24 | UInt32(header[2]) << 16 | UInt32(header[3]) << 8 | UInt32(header[4]))
        return (header[0], try read(length - 4))
    }

    func send(query: String) throws {
        let body = Array(query.utf8) + [0]
        try write([UInt8(ascii: "Q")] + withUnsafeBytes(of: Int32(body.count + 4).bigEndian) { Array($0) } + body)
    }

    /// Reads to ReadyForQuery: the number of DataRows and the command tag.
    func readResult() throws -> (Int, String) {
        var rows = 0, tag = ""
        while true {
            let m = try readMessage()
            switch m.type {
            case UInt8(ascii: "D"): rows += 1
            case UInt8(ascii: "C"): tag = String(decoding: m.body.dropLast(), as: UTF8.self)
            case UInt8(ascii: "E"): throw HarnessError(description: "query failed")
            case UInt8(ascii: "Z"): return (rows, tag)
            default: break
            }
        }
    }

    func close() {
        _ = try? write([UInt8(ascii: "X"), 0, 0, 0, 4])
        Foundation.close(fd)
    }
}
