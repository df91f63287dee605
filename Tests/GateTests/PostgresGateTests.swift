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
            // An assistant names the prompt it works on; a comment cannot claim another application.
            "-c", "SET application_name = 'copilot-prompt-42'",
            "-c", "/*prompt_id='prm-8',application_name='forged'*/ SELECT 2",
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
        #expect(responses.count == 5)
        #expect(responses[0].rows.count == 3)
        #expect(responses[0].rows[0] == [Array("1".utf8), Array("grace1@example.com".utf8)])
        #expect(responses[0].commandTag == "SELECT 3")
        #expect(responses[0].columns.map(\.name) == ["id", "email"])
        #expect(responses[4].error?.sqlState == "22012")
        // Timings are the gate's own measure: from the request to its result, non-zero, and
        // the pg_sleep-free statements here take well under a minute.
        #expect(responses.allSatisfy { $0.durationMicros > 0 && $0.durationMicros < 60_000_000 }, "\(responses.map(\.durationMicros))")
        let annotations = events.compactMap { e -> (UInt64, Annotation)? in if case .annotation(let a) = e.payload { return (e.exchangeID, a) } else { return nil } }
        #expect(annotations.count == 3, "\(annotations)")
        if annotations.count == 3 {
            #expect(annotations[0].1.promptID == "prm-7")
            #expect(annotations[0].1.traceID == "0af7651916cd43dd8448eb211c80319c")
            #expect(annotations[0].1.applicationName == "psql")
            // The change of application_name, on the record as it happened (no exchange of its own).
            #expect(annotations[1].0 == 0 && annotations[1].1.applicationName == "copilot-prompt-42" && annotations[1].1.promptID.isEmpty)
            #expect(annotations[2].1.promptID == "prm-8")
            #expect(annotations[2].1.attributes.filter { $0.key == "application_name" } == [KeyValue("application_name", "copilot-prompt-42")])
        }
        guard case .sessionEnd(let end) = events.last?.payload else { Issue.record("no session end"); return }
        #expect(end.reason == "client-terminate")
        // The session's totals, as they passed the gate: 5 statements, one failed; 3 + 1 + 1 rows.
        let counts = try #require(end.counts)
        #expect(counts.requests == 5 && counts.refused == 0 && counts.errors == 1 && counts.rows == 5, "\(counts)")
        #expect(counts.bytesFromClient > 200 && counts.bytesToClient > 200, "\(counts)")

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
        let unknownKey = [b64(#"{"alg":"RS256","kid":"a-key-this-issuer-never-published","typ":"JWT"}"#), parts[1], parts[2]].joined(separator: ".")
        for (name, token) in [("garbage", "not-a-token"), ("wrong audience", otherAudience), ("tampered payload", tampered),
                              ("alg none", algNone), ("HS256", hs256), ("unknown key", unknownKey)] {
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
        let probe = try ProbeTable(gate.database)
        defer { probe.drop() }
        // A startup packet whose length says 3: invalid before anything else.
        let short = try rawExchange(port: gate.port("demo"), bytes: [0, 0, 0, 3, 0, 0, 0, 0])
        #expect(short.first == UInt8(ascii: "E") && short.contains(bytes: "C08P01"), "\(String(decoding: short, as: UTF8.self))")
        // A truncated startup packet, then the client goes away: nothing to answer, nothing kept.
        _ = try rawExchange(port: gate.port("demo"), bytes: [0, 0, 0, 40, 0, 3, 0, 0, 0x75])
        // An oversized statement that would write: clear error, connection closed, nothing ran.
        let big = try gate.psql("demo", token: token, ["-v", "VERBOSITY=verbose", "-c",
                                                       "INSERT INTO \(probe.name) VALUES (1) -- " + String(repeating: "x", count: 120_000)])
        #expect(big.status != 0)
        #expect(big.stderr.contains("08P01") && big.stderr.contains("exceeds"), "\(big.stderr)")
        // After login, through a client that speaks the protocol by hand: a Query without its
        // terminating NUL, one longer than the limit, and one cut off by the client going away.
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/raw_protocol.py").path
        var env = gate.libpqEnvironment("demo", token: token)
        env["PROBE_TABLE"] = probe.name
        for name in ["unterminated-query", "oversized-query", "truncated-query"] {
            let r = try run("python3", [script, name], environment: env, timeout: .seconds(30))
            #expect(r.status == 0, "\(name): \(r.stderr)")
            let out = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
            #expect(out["closed"] as? Bool == true, "\(name): the gate kept the connection: \(out)")
            // The SELECT 1 each scenario sends first was answered; the malformed message got 08P01
            // (a client that went away gets no answer).
            #expect((out["rows"] as? [[Any]])?.count == 1, "\(name): \(out)")
            let codes = ((out["errors"] as? [[String: Any]]) ?? []).compactMap { $0["code"] as? String }
            #expect(codes == (name == "truncated-query" ? [] : ["08P01"]), "\(name): \(out)")
        }
        #expect(try probe.count() == 0, "a malformed message reached the database")
        // The gate still serves everyone else, and the probe does see what does get through.
        let ok = try gate.psql("demo", token: token, ["-c", "INSERT INTO \(probe.name) VALUES (42)", "-c", "SELECT 42"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("42"))
        #expect(try probe.count() == 1)
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        // What the refused sessions recorded: the statement before the bad message, never the bad one.
        let captures = try gate.captures()
        #expect(captures.count == 5)
        var ends: [String] = []
        for c in captures {
            #expect(c.verify().isValid)
            let events = try allEvents(c)
            let texts = events.compactMap { e -> String? in if case .request(.postgres(let p)) = e.payload { return p.text } else { return nil } }
            if case .sessionEnd(let end)? = events.last?.payload { ends.append(end.reason) }
            if texts.contains("INSERT INTO \(probe.name) VALUES (42)") { continue }
            #expect(!texts.contains { $0.contains("INSERT") }, "a malformed statement was recorded as a request: \(texts)")
        }
        // The oversized psql statement, and the three by hand (the cut-off one ends when the client goes away mid-message).
        #expect(ends.filter { $0 == "protocol-error" }.count == 4, "\(ends)")
    }

    /// A token the gate refuses never makes it open a connection to the database: the target's
    /// upstream here is a listener that only counts the connections made to it.
    @Test func refusedTokensNeverReachTheDatabase() throws {
        let listener = try CountingListener()
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], upstreamPorts: ["demo": listener.port])
        let good = try provider.token("mallory@example.com")
        let forged = good.split(separator: ".").prefix(2).joined(separator: ".") + ".c2lnbmF0dXJlLWZyb20tc29tZW9uZS1lbHNl"
        for token in ["not-a-token", forged] {
            let r = try gate.psql("demo", token: token, ["-c", "SELECT 1"])
            #expect(r.status != 0 && r.stderr.contains("authentication failed"), "\(r.stderr)")
        }
        #expect(listener.connections() == 0, "a refused login opened a connection upstream")
        // The control: an accepted token does make the gate connect; the listener, which is not
        // a database, closes the connection, and the gate fails the login.
        let (client, _, _) = try gate.startPsql("demo", token: good, "SELECT 1")
        #expect(listener.connections(waitingUpTo: .seconds(10)) == 1)
        client.waitUntilExit()
        #expect(client.terminationStatus != 0)
        gate.stop()
        try gate.expectNoSecrets([good])
    }

    /// A secret in the startup packet (`options`, application_name) is masked in the record as
    /// one in a statement is; the database still gets the settings as sent.
    @Test func secretsInStartupParametersAreMaskedOnTheRecord() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("carol@example.com")
        let github = "ghp_" + String(repeating: "a1B2c3D4e5", count: 4).prefix(36)
        var env = gate.libpqEnvironment("demo", token: token)
        env["PGOPTIONS"] = "-c tollgate.note=\(github)"
        env["PGAPPNAME"] = "agent \(github)"
        let r = try run("psql", ["-X", "-At", "-c", "SHOW tollgate.note"], environment: env)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains(github), "the setting must reach the database as sent")
        // A comment inside a password literal is not read as an annotation: the text is withheld.
        let password = try gate.psql("demo", token: token, ["-c", "ALTER ROLE no_such_role_7f3a PASSWORD '/*prompt_id=''leak-7f3a''*/'"])
        #expect(password.status != 0 && password.stderr.contains("does not exist"), "\(password.stderr)")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token, github, "leak-7f3a"])
        // The two sessions' starts; the first one's carries the settings.
        let starts = try gate.captures().compactMap { c -> SessionStart? in
            if case .sessionStart(let s) = try allEvents(c).first?.payload { return s } else { return nil }
        }
        #expect(starts.count == 2)
        guard let start = starts.first(where: { $0.parameters.contains { $0.key == "options" } }) else { Issue.record("no session with the options"); return }
        #expect(start.applicationName.hasPrefix("agent ") && !start.applicationName.contains(github), "\(start.applicationName)")
        #expect(start.parameters.contains { $0.key == "options" && $0.value.hasPrefix("-c tollgate.note=") }, "\(start.parameters)")
    }

    /// The sample configuration, as shipped, runs a gate: only its ports, issuer and directories
    /// are changed, to this test's.
    @Test func theSampleConfigurationRunsAGate() throws {
        let db = try DatabaseEnvironment.load()
        let port = try freePort()
        let sample = try String(contentsOf: repositoryRoot.appendingPathComponent("samples/tollgate.yaml"), encoding: .utf8)
        var yaml = sample
        for (from, to) in [("127.0.0.1:6432", "127.0.0.1:\(port)"), ("127.0.0.1:55432", "127.0.0.1:\(db.port)"),
                           ("http://127.0.0.1:9400", provider.issuer), ("../demo/captures", "captures"), ("../demo/signing.key", "signing.key")] {
            #expect(yaml.contains(from), "samples/tollgate.yaml no longer has \(from)")
            yaml = yaml.replacingOccurrences(of: from, with: to)
        }
        let gate = try GateProcess(config: yaml, ports: ["demo": port],
                                   environment: ["TOLLGATE_DEMO_PAGE_SECRET": "demo-page-secret", "TOLLGATE_DEMO_DB_PASSWORD": db["TOLLGATE_PG_SCRAM_PASSWORD"]])
        // The sample's policy is for group analysts (the demo's assistant).
        let token = try provider.token("copilot", groups: ["analysts"])
        let clear = try db.psql(["-At", "-c", "SELECT email, ssn, card_number, phone FROM customers WHERE card_number IS NOT NULL ORDER BY id LIMIT 1"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|").map(String.init)
        #expect(clear.count == 4)
        let r = try gate.psql("demo", token: token, ["-c", "SELECT email, ssn, card_number, phone FROM customers WHERE card_number IS NOT NULL ORDER BY id LIMIT 1"])
        #expect(r.status == 0, "\(r.stderr)")
        let masked = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|").map(String.init)
        #expect(masked.count == 4 && zip(masked, clear).allSatisfy { $0 != $1 && ($0.contains("*") || $0.contains("REDACTED")) }, "\(masked)")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        let capture = try #require(try gate.captures().first)
        #expect(capture.verify().isValid)
        let written = String(decoding: try secretScanBytes(capture), as: UTF8.self)
        #expect(!clear.contains { written.contains($0) }, "a clear value reached the capture")
    }
}

/// A table of the test database that only one test writes, to see whether a statement ran.
struct ProbeTable {
    let db: DatabaseEnvironment
    let name: String

    /// `prefix`: the name's start, so that a table left behind says which task's tests made it.
    init(_ db: DatabaseEnvironment, prefix: String = "probe") throws {
        self.db = db
        name = prefix + "_" + UUID().uuidString.prefix(8).lowercased()
        let r = try sql("CREATE TABLE \(name) (v int)")
        guard r.status == 0 else { throw HarnessError(description: "cannot create \(name): \(r.stderr)") }
    }

    func sql(_ statement: String) throws -> Output {
        try db.psql(["-At", "-c", statement])
    }

    func count() throws -> Int {
        let r = try sql("SELECT count(*) FROM \(name)")
        guard r.status == 0, let n = Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw HarnessError(description: "cannot count \(name): \(r.stderr)")
        }
        return n
    }

    func drop() { _ = try? sql("DROP TABLE IF EXISTS \(name)") }
}

/// A loopback listener that accepts connections, counts them and closes them: where a gate
/// must not connect at all, it shows whether it did. (Not a database: nothing is spoken to it.)
final class CountingListener {
    let fd: Int32
    let port: Int
    var accepted = 0

    init() throws {
        (fd, port) = try boundLoopbackSocket()
        guard listen(fd, 16) == 0 else { close(fd); throw HarnessError(description: "cannot listen on loopback") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    /// The connections made so far (waiting up to `timeout` for the first).
    func connections(waitingUpTo timeout: Duration = .zero) -> Int {
        let deadline = ContinuousClock.now + timeout
        repeat {
            while case let c = accept(fd, nil, nil), c >= 0 {
                accepted += 1
                close(c)
            }
            if accepted > 0 { break }
            usleep(50_000)
        } while ContinuousClock.now < deadline
        return accepted
    }

    deinit { close(fd) }
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
