import Foundation
import TestSupport
import Testing

/// The gate's TLS towards the database, as libpq's sslmode: verify-ca and verify-full against
/// the test cluster's CA (scripts/pg-test-cluster signs the server's certificate for localhost
/// and 127.0.0.1), a wrong CA or name refused before anything is sent, and a context that
/// cannot be made refused at start instead of falling back to plaintext.
@Suite("upstream TLS", .serialized)
struct UpstreamTLSTests {
    let provider: OIDCProvider
    let database: DatabaseEnvironment
    let work: URL

    /// The proxy and identity sections every configuration here starts with, up to `targets:`.
    var gateHeader: String {
        """
        proxy:
          id: test-gate
          captures: captures
          signing_key: signing.key
        identity:
          issuer: \(provider.issuer)
          audiences: [tollgate]
        targets:

        """
    }

    init() throws {
        provider = try sharedProvider.get()
        database = try DatabaseEnvironment.load()
        work = FileManager.default.temporaryDirectory.appendingPathComponent("defects18-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    }

    /// The CA that signed the test cluster's certificate (scripts/pg-test-cluster puts it in its state directory).
    var caFile: String {
        let named = database["TOLLGATE_PG_CA_FILE"]
        if !named.isEmpty { return named }
        return (ProcessInfo.processInfo.environment["TOLLGATE_STATE"] ?? "/tmp/tollgate-test") + "/upstream-ca.crt"
    }

    /// A CA the database's certificate does not chain to, and a server certificate it signed (for 127.0.0.1).
    func otherCA() throws -> (ca: String, cert: String, key: String) {
        try makeTestCertificates(in: work, caName: "Not the test CA")
    }

    func sslOf(_ gate: GateProcess, _ target: String, token: String) throws -> Output {
        try gate.psql(target, token: token, ["-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"])
    }

    @Test func verifyFullAndVerifyCALogInWithTheRightCA() throws {
        try #require(FileManager.default.fileExists(atPath: caFile), "no test CA: run scripts/pg-test-cluster start")
        let gate = try GateProcess(provider: provider, targets: [
            "full": scramTarget + "\nupstream_tls: verify-full\nupstream_ca_file: \(caFile)",
            "named": scramTarget + "\nupstream_tls: verify-full\nupstream_ca_file: \(caFile)\nupstream_server_name: localhost",
            "ca": scramTarget + "\nupstream_tls: verify-ca\nupstream_ca_file: \(caFile)",
        ])
        let token = try provider.token("tls@example.com")
        for target in ["full", "named", "ca"] {
            let r = try sslOf(gate, target, token: token)
            #expect(r.status == 0, "\(target): \(r.stderr)")
            #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "t", "\(target)")
        }
        #expect(gate.stop() == 0)
        // Loopback upstream: no warning about an unverified server.
        #expect(!gate.logText.contains("does not verify"), "\(gate.logText)")
        try gate.expectNoSecrets([token])
    }

    @Test func aWrongCAOrAWrongNameIsRefused() throws {
        let other = try otherCA()
        let gate = try GateProcess(provider: provider, targets: [
            "wrongca": scramTarget + "\nupstream_tls: verify-ca\nupstream_ca_file: \(other.ca)",
            "wrongname": scramTarget + "\nupstream_tls: verify-full\nupstream_ca_file: \(caFile)\nupstream_server_name: db.elsewhere.example",
        ])
        let token = try provider.token("tls@example.com")
        for target in ["wrongca", "wrongname"] {
            let r = try sslOf(gate, target, token: token)
            #expect(r.status != 0, "\(target): logged in: \(r.stdout)")
            #expect(r.stderr.contains("FATAL") && r.stderr.contains("could not log in to the database"), "\(target): \(r.stderr)")
        }
        #expect(gate.stop() == 0)
        let log = gate.logText
        #expect(log.components(separatedBy: "upstream_tls: verify").count - 1 >= 2, "\(log)")
        #expect(log.contains("CERTIFICATE_VERIFY_FAILED") || log.contains("certificate verify failed"), "\(log)")
        try gate.expectNoSecrets([token])
    }

    /// The database's side of a refused handshake: a server whose certificate the gate's CA did
    /// not sign receives nothing past the SSLRequest, so neither the startup message nor a password.
    @Test func nothingIsSentToAServerThatDoesNotVerify() throws {
        let other = try otherCA()
        let port = try freePort()
        let script = """
            import socket, ssl, sys
            srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind(("127.0.0.1", \(port))); srv.listen(1)
            print("listening", flush=True)
            while True:  # the test's own probe of the port connects and closes first
                conn, _ = srv.accept()
                conn.settimeout(20)
                if len(conn.recv(8)) == 8: break
            conn.sendall(b"S")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1], sys.argv[2])
            try:
                tls = ctx.wrap_socket(conn, server_side=True)
            except Exception as e:
                print("handshake refused, received 0", flush=True); sys.exit(0)
            n = 0
            try:
                while True:
                    d = tls.recv(65536)
                    if not d: break
                    n += len(d)
            except Exception:
                pass
            print(f"handshake done, received {n}", flush=True)
            """
        let fake = Process()
        fake.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        fake.arguments = ["python3", "-c", script, other.cert, other.key]
        let out = Pipe()
        fake.standardOutput = out
        try fake.run()
        defer { if fake.isRunning { fake.terminate() } }
        try waitForPort(port)
        let gate = try GateProcess(provider: provider, targets: ["fake": scramTarget + "\nupstream_tls: verify-full\nupstream_ca_file: \(caFile)"],
                                   upstreamPorts: ["fake": port])
        let token = try provider.token("tls@example.com")
        let r = try sslOf(gate, "fake", token: token)
        #expect(r.status != 0)
        fake.waitUntilExit()
        let said = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(said.contains("handshake refused, received 0"), "\(said)")
        gate.stop()
    }

    /// A context that cannot be made stops the start, naming the target and the cause.
    @Test func anUnmakeableContextIsAStartupError() throws {
        let notPEM = work.appendingPathComponent("not-a-ca.pem").path
        try "this is not a certificate\n".write(toFile: notPEM, atomically: true, encoding: .utf8)
        let dbPort = database.port
        let listen = try freePort()
        let yaml = gateHeader + """
              broken:
                protocol: postgres
                listen: 127.0.0.1:\(listen)
                upstream: 127.0.0.1:\(dbPort)
                upstream_tls: verify-ca
                upstream_ca_file: \(notPEM)
                credentials:
                  user: tollgate_gate
                  password_env: TEST_DB_SCRAM_PASSWORD
            """
        let config = work.appendingPathComponent("gate.yaml").path
        try yaml.write(toFile: config, atomically: true, encoding: .utf8)
        let r = try run(tool("capture-proxy").path, ["run", "--config", config],
                        environment: ["TEST_DB_SCRAM_PASSWORD": database["TOLLGATE_PG_SCRAM_PASSWORD"]], timeout: .seconds(30))
        #expect(r.status != 0)
        #expect(r.stderr.contains("target broken: upstream TLS (verify-ca) cannot be set up"), "\(r.stderr)")
    }

    /// A verify mode without its CA file, or a CA file where nothing verifies, is refused with its line.
    @Test func verificationSettingsAreChecked() throws {
        let base = ConfigTests.valid.replacingOccurrences(of: "upstream: 127.0.0.1:5432", with: "upstream: db.internal.example:5432") + "\n"
        let config = work.appendingPathComponent("check.yaml").path
        for (extra, message) in [("upstream_tls: verify-full", "needs 'upstream_ca_file'"),
                                 ("upstream_tls: require\n    upstream_ca_file: \(caFile)", "only used with upstream_tls: verify-ca or verify-full"),
                                 ("upstream_tls: verify-ca\n    upstream_ca_file: /nonexistent/ca.pem", "file not found: /nonexistent/ca.pem"),
                                 ("upstream_tls: verify-ca\n    upstream_ca_file: \(caFile)\n    upstream_server_name: x", "only used with upstream_tls: verify-full")] {
            try (base + "    " + extra + "\n").write(toFile: config, atomically: true, encoding: .utf8)
            let r = try run(tool("capture-proxy").path, ["check", "--config", config], environment: ["GATE_PW": "x"])
            #expect(r.status == 2, "\(extra)")
            #expect(r.stderr.contains("check.yaml:") && r.stderr.contains(message), "\(extra): \(r.stderr)")
        }
    }
    /// Beyond loopback, a mode that does not verify is started with a warning that names the target.
    @Test func unverifiedUpstreamBeyondLoopbackIsWarnedAbout() throws {
        let ports = ["remote": try freePort(), "checked": try freePort()]
        let yaml = gateHeader + """
              remote:
                protocol: postgres
                listen: 127.0.0.1:\(ports["remote"]!)
                upstream: 192.0.2.10:5432
                upstream_tls: require
                credentials: {user: tollgate_gate, password_env: TEST_DB_SCRAM_PASSWORD}
              checked:
                protocol: postgres
                listen: 127.0.0.1:\(ports["checked"]!)
                upstream: 192.0.2.11:5432
                upstream_tls: verify-full
                upstream_ca_file: \(caFile)
                credentials: {user: tollgate_gate, password_env: TEST_DB_SCRAM_PASSWORD}
            """
        let gate = try GateProcess(config: yaml, ports: ports)
        #expect(gate.stop() == 0)
        let warnings = gate.logText.split(separator: "\n").filter { $0.contains("does not verify the database's certificate") }
        #expect(warnings.count == 1, "\(gate.logText)")
        #expect(warnings.first?.contains("target=remote") == true, "\(warnings)")
    }
}
