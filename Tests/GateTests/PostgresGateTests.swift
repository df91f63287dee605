import CaptureFormat
import Foundation
import TestSupport
import Testing

@Suite("capture-proxy for PostgreSQL", .serialized)
struct PostgresGateTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    @Test func psqlSessionIsRecordedWithoutSecrets() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("alice@example.com", groups: ["ai-assistants", "analysts"])
        let r = try gate.psql("demo", token: token, [
            "-c", "SELECT id, email FROM public.customers WHERE id <= 3 ORDER BY id",
            "-c", "/*traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',prompt_id='prm-7'*/ SELECT count(*) FROM analytics.events",
            "-c", "SELECT 1/0",
        ])
        #expect(r.status != 0)  // the division by zero, after the first two succeeded
        #expect(r.stdout.contains("1|grace1@example.com"))
        #expect(r.stdout.contains("5000"))
        #expect(r.stderr.contains("division by zero"))
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])

        let captures = try gate.captures()
        #expect(captures.count == 1)
        let capture = try #require(captures.first)
        #expect(capture.state == .sealed(.cleanClose))
        #expect(capture.header.subject == "alice@example.com")
        #expect(capture.header.groups == ["ai-assistants", "analysts"])
        #expect(capture.header.target == "demo")
        #expect(capture.verify().isValid)
        let events = try allEvents(capture)
        guard case .sessionStart(let start) = events.first?.payload else { Issue.record("no session start"); return }
        #expect(start.applicationName == "psql")
        #expect(start.clientAddress.hasPrefix("127.0.0.1:"))
        let requests = events.compactMap { e -> PostgresRequest? in
            if case .request(.postgres(let p)) = e.payload { return p } else { return nil }
        }
        #expect(requests.map(\.text).first == "SELECT id, email FROM public.customers WHERE id <= 3 ORDER BY id")
        #expect(requests.allSatisfy { $0.path == .simple })
        let responses = events.compactMap { e -> PostgresResponse? in
            if case .response(.postgres(let p)) = e.payload { return p } else { return nil }
        }
        #expect(responses.count == 3)
        #expect(responses[0].rows.count == 3)
        #expect(responses[0].rows[0] == [Array("1".utf8), Array("grace1@example.com".utf8)])
        #expect(responses[0].commandTag == "SELECT 3")
        #expect(responses[0].columns.map(\.name) == ["id", "email"])
        #expect(responses[2].error?.sqlState == "22012")
        let annotation = events.compactMap { e -> Annotation? in if case .annotation(let a) = e.payload { return a } else { return nil } }.first
        #expect(annotation?.promptID == "prm-7")
        #expect(annotation?.traceID == "0af7651916cd43dd8448eb211c80319c")
        guard case .sessionEnd(let end) = events.last?.payload else { Issue.record("no session end"); return }
        #expect(end.reason == "client-terminate")

        // Neither the client's token nor the brokered password is anywhere on disk or in the log.
        let written = try gate.everythingWritten()
        #expect(!written.contains(bytes: token))
        #expect(!written.contains(bytes: String(token.split(separator: ".")[2])))
        #expect(!written.contains(bytes: gate.database["TOLLGATE_PG_SCRAM_PASSWORD"]))
    }

    @Test func badTokensAreRefusedBeforeAnythingGoesUpstream() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let good = try provider.token("mallory@example.com", groups: ["ai-assistants"])
        let parts = good.split(separator: ".").map(String.init)
        let otherAudience = try provider.token("mallory@example.com", audience: "some-other-app")
        func b64(_ s: String) -> String {
            Data(s.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let payload = String(decoding: Data(base64Encoded: parts[1].padding(toLength: (parts[1].count + 3) / 4 * 4, withPad: "=", startingAt: 0)
            .replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")) ?? Data(), as: UTF8.self)
        let tampered = [parts[0], b64(payload.replacingOccurrences(of: "mallory", with: "admin00")), parts[2]].joined(separator: ".")
        let algNone = [b64(#"{"alg":"none","typ":"JWT"}"#), parts[1], ""].joined(separator: ".")
        let hs256 = [b64(#"{"alg":"HS256","typ":"JWT"}"#), parts[1], b64("not-a-real-mac")].joined(separator: ".")
        for (name, token) in [("garbage", "not-a-token"), ("wrong audience", otherAudience), ("tampered payload", tampered),
                              ("alg none", algNone), ("HS256", hs256)] {
            let r = try gate.psql("demo", token: token, ["-c", "SELECT 1"])
            #expect(r.status != 0, "\(name) was accepted")
            #expect(r.stderr.contains("authentication failed"), "\(name): \(r.stderr)")
            #expect(!r.stderr.contains(token.prefix(40)), "\(name): the error echoes the token")
        }
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([good, otherAudience])
        #expect(try gate.captures().isEmpty, "a refused login must not open a session")
        #expect(gate.logText.contains("authentication failed"))
        let written = try gate.everythingWritten()
        #expect(!written.contains(bytes: parts[2]))
    }

    @Test func brokersEveryUpstreamAuthenticationMethod() throws {
        let gate = try GateProcess(provider: provider, targets: [
            "scram": scramTarget,
            "md5": "credentials:\n  user: tollgate_md5\n  password_env: TEST_DB_MD5_PASSWORD",
            "trust": "credentials:\n  user: tollgate_trust",
        ])
        let token = try provider.token("bob@example.com", groups: ["dba"])
        for (target, role) in [("scram", "tollgate_gate"), ("md5", "tollgate_md5"), ("trust", "tollgate_trust")] {
            let r = try gate.psql(target, token: token, ["-c", "SELECT current_user"])
            #expect(r.status == 0, "\(target): \(r.stderr)")
            #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == role, "\(target)")
        }
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        #expect(try gate.captures().count == 3)
    }

    @Test func upstreamTLSIsUsedWhenConfigured() throws {
        let gate = try GateProcess(provider: provider, targets: [
            "tls": scramTarget + "\nupstream_tls: require",
            "plain": scramTarget + "\nupstream_tls: disable",
        ])
        let token = try provider.token("bob@example.com")
        let query = ["-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"]
        let tls = try gate.psql("tls", token: token, query)
        #expect(tls.status == 0, "\(tls.stderr)")
        #expect(tls.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "t")
        let plain = try gate.psql("plain", token: token, query)
        #expect(plain.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "f")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }

    @Test func wrongBrokeredPasswordIsAGateErrorNotALeak() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": "credentials:\n  user: tollgate_gate\n  password_env: WRONG_PW"],
                                   environment: ["WRONG_PW": "definitely-not-the-password"])
        let token = try provider.token("carol@example.com")
        let r = try gate.psql("demo", token: token, ["-c", "SELECT 1"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("could not log in to the database"))
        #expect(!r.stderr.contains("tollgate_gate"), "the client must not learn the brokered account")
        gate.stop()
        try gate.expectNoSecrets([token])
    }

    @Test func pgbenchRunsThroughTheGateInEveryQueryMode() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("bench@example.com", groups: ["dba"])
        var env = gate.libpqEnvironment("demo", token: token)
        env["PGDATABASE"] = gate.database["TOLLGATE_PG_PGBENCH_DATABASE"]
        // pgbench -i loads its tables with COPY FROM STDIN: the gate relays COPY both ways.
        let initialize = try run("pgbench", ["-i", "-s", "1", "-q", "--no-vacuum"], environment: env)
        #expect(initialize.status == 0, "\(initialize.stderr)")
        for mode in ["simple", "extended", "prepared"] {
            let r = try run("pgbench", ["-M", mode, "-c", "2", "-j", "1", "-t", "25", "-n"], environment: env)
            #expect(r.status == 0, "\(mode): \(r.stderr)")
            #expect(r.stdout.contains("number of transactions actually processed: 50/50"), "\(mode): \(r.stdout)")
        }
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        let captures = try gate.captures()
        // One session for -i, then per run pgbench's own setup connection and its two clients.
        #expect(captures.count == 1 + 3 * (1 + 2))
        var paths = Set<PostgresRequest.Path>()
        var withParameters = 0
        for c in captures {
            #expect(c.verify().isValid)
            for e in try allEvents(c) {
                if case .request(.postgres(let p)) = e.payload {
                    paths.insert(p.path)
                    if !p.parameters.isEmpty && p.text.contains("$1") { withParameters += 1 }
                }
            }
        }
        #expect(paths == [.simple, .extended])
        #expect(withParameters > 100)
    }

    @Test func psqlCopyBothWays() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("dave@example.com")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("copy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("customers.csv").path
        let r = try gate.psql("demo", token: token, [
            "-c", "\\copy (SELECT id, email FROM public.customers ORDER BY id LIMIT 50) TO '\(out)' CSV",
            "-c", "CREATE TEMP TABLE t (id int, email text)",
            "-c", "\\copy t FROM '\(out)' CSV",
            "-c", "SELECT count(*), min(email) FROM t",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("50|ada10@example.com"))
        #expect(try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").count == 50)
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        let events = try allEvents(try #require(try gate.captures().first))
        let chunks = events.compactMap { e -> StreamChunk? in if case .streamChunk(let c) = e.payload { return c } else { return nil } }
        #expect(chunks.contains { $0.stream == .stdout })
        #expect(chunks.contains { $0.stream == .stdin })
        let tags = events.compactMap { e -> String? in if case .response(.postgres(let p)) = e.payload { return p.commandTag } else { return nil } }
        #expect(tags.filter { $0 == "COPY 50" }.count == 2)
    }

    @Test func malformedMessagesCloseOnlyTheirOwnConnection() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget + "\nlimits:\n  max_message_bytes: 4KiB"])
        let token = try provider.token("erin@example.com")
        // A startup packet whose length says 3: invalid before anything else.
        #expect(try rawExchange(port: gate.port("demo"), bytes: [0, 0, 0, 3, 0, 0, 0, 0]).isEmpty == false)
        // A truncated startup packet, then the client goes away.
        _ = try rawExchange(port: gate.port("demo"), bytes: [0, 0, 0, 40, 0, 3, 0, 0, 0x75])
        // An oversized query: clear error, connection closed.
        let big = try gate.psql("demo", token: token, ["-c", "SELECT '" + String(repeating: "x", count: 8000) + "'"])
        #expect(big.status != 0)
        #expect(big.stderr.contains("08P01") || big.stderr.contains("invalid message") || big.stderr.contains("too large"), "\(big.stderr)")
        // The gate still serves everyone else.
        let ok = try gate.psql("demo", token: token, ["-c", "SELECT 42"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("42"))
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }
}

/// Sends raw bytes to the gate and returns what it answers before closing.
func rawExchange(port: Int, bytes: [UInt8]) throws -> [UInt8] {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard ok == 0 else { throw HarnessError(description: "cannot connect to the gate") }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    shutdown(fd, Int32(SHUT_WR))
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var answer: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        answer += buffer[0..<n]
    }
    return answer
}
