import CaptureFormat
import Foundation
import TestSupport
import Testing

// The harness for gate tests: real PostgreSQL (scripts/pg-test-cluster), a real OIDC
// provider (oidc-provider-mock, started here), the built capture-proxy binary, and real clients.

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Settings written by scripts/pg-test-cluster.
struct DatabaseEnvironment {
    let values: [String: String]

    static func load() throws -> DatabaseEnvironment {
        let state = ProcessInfo.processInfo.environment["TOLLGATE_STATE"] ?? "/tmp/tollgate-test"
        guard let text = try? String(contentsOfFile: "\(state)/pg.env", encoding: .utf8) else {
            throw HarnessError(description: "no test database: run scripts/pg-test-cluster start (scripts/test does)")
        }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { values[String(kv[0])] = String(kv[1]) }
        }
        return DatabaseEnvironment(values: values)
    }

    subscript(_ key: String) -> String { values[key] ?? "" }

    /// psql straight to the test database as the gate's own account (not through a gate), with
    /// `arguments` after the connection.
    func psql(_ arguments: [String]) throws -> Output {
        try run("psql", ["-X", "-v", "ON_ERROR_STOP=1", "host=127.0.0.1 port=\(port) dbname=\(database) user=\(self["TOLLGATE_PG_SCRAM_USER"])"] + arguments,
                environment: ["PGPASSWORD": self["TOLLGATE_PG_SCRAM_PASSWORD"]])
    }
    var port: String { self["TOLLGATE_PG_PORT"] }
    var database: String { self["TOLLGATE_PG_DATABASE"] }
}

/// A real OIDC provider (oidc-provider-mock) in a child process that exits with the tests:
/// its Python wrapper stops the provider when our end of its stdin closes (the provider is
/// released) or when the test process is gone (its parent changes). The wrapper first unblocks
/// signals: a child inherits the signal mask of the test thread that starts it, where SIGTERM
/// is blocked, and providers that could not be terminated were left running after every run.
final class OIDCProvider: Sendable {
    let process: Process
    let port: Int
    var issuer: String { "http://127.0.0.1:\(port)" }

    init(tokenMaxAge: Int? = nil) throws {
        port = try freePort()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var args = ["-m", "oidc_provider_mock", "--port", "\(port)"]
        if let tokenMaxAge { args += ["--token-max-age", "\(tokenMaxAge)"] }
        let script = """
            import os, signal, subprocess, sys, threading, time
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            parent = os.getppid()
            p = subprocess.Popen([sys.executable] + sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            threading.Thread(target=lambda: (sys.stdin.read(), p.terminate()), daemon=True).start()
            while os.getppid() == parent and p.poll() is None:
                time.sleep(0.2)
            p.terminate()
            """
        p.arguments = ["python3", "-c", script] + args
        p.standardInput = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        do {
            try waitForPort(port)
        } catch {
            p.terminate()
            throw HarnessError(description: "oidc-provider-mock did not start (is it installed? scripts/bootstrap installs it): \(error)")
        }
    }

    /// A real ID token for `subject`, through the provider's authorization-code flow.
    func token(_ subject: String, groups: [String] = [], audience: String = "tollgate") throws -> String {
        let r = try run("python3", [repositoryRoot.appendingPathComponent("scripts/oidc-token").path, issuer, subject,
                                    "--groups", groups.joined(separator: ","), "--client-id", audience])
        guard r.status == 0 else { throw HarnessError(description: "oidc-token failed: \(r.stderr)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    deinit {
        if let stdin = process.standardInput as? Pipe { try? stdin.fileHandleForWriting.close() }
    }
}

/// One provider for the whole test process (each test gets its own gate).
let sharedProvider: Result<OIDCProvider, any Error> = Result { try OIDCProvider() }

/// A running capture-proxy with its own config, ports and capture directory.
final class GateProcess {
    let directory: URL
    let process: Process
    let log: URL
    let ports: [String: Int]
    let database: DatabaseEnvironment
    let configPath: URL

    /// `targets` maps a target name to its YAML body (without listen/upstream, which the harness
    /// adds: listening on 127.0.0.1, or the host in `listenHosts`, in front of the test database,
    /// or of the loopback port in `upstreamPorts`).
    /// `admin`: the body of an `admin:` section (without `listen`, which the harness adds), whose
    /// port is then `adminPort`.
    /// `proxySettings`: lines added to the `proxy:` section (`threads: 1`).
    convenience init(provider: OIDCProvider, targets: [String: String], proxySettings: String = "", extraIdentity: String = "", policies: String = "",
                     environment: [String: String] = [:], listenHosts: [String: String] = [:], upstreamPorts: [String: Int] = [:],
                     admin: String? = nil) throws {
        let database = try DatabaseEnvironment.load()
        var ports: [String: Int] = [:]
        var yaml = """
            \(gateConfigHead(issuer: provider.issuer, proxySettings: proxySettings))
            \(extraIdentity)
            targets:

            """
        for (name, body) in targets.sorted(by: { $0.key < $1.key }) {
            let port = try freePort()
            ports[name] = port
            yaml += "  \(name):\n    protocol: postgres\n    listen: \(listenHosts[name] ?? "127.0.0.1"):\(port)\n"
            yaml += "    upstream: 127.0.0.1:\(upstreamPorts[name].map(String.init) ?? database.port)\n"
            yaml += body.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n") + "\n"
        }
        if let admin {
            let port = try freePort()
            ports[Self.adminListener] = port
            yaml += "admin:\n  listen: 127.0.0.1:\(port)\n" + admin.split(separator: "\n").map { "  \($0)" }.joined(separator: "\n") + "\n"
        }
        yaml += policies
        try self.init(config: yaml, ports: ports, environment: environment)
    }

    /// A gate run with the configuration `yaml` (relative paths in it are inside the gate's own
    /// directory); `ports` names the port each target listens on.
    init(config yaml: String, ports: [String: Int], environment: [String: String] = [:]) throws {
        database = try DatabaseEnvironment.load()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("gate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.ports = ports
        let config = directory.appendingPathComponent("gate.yaml")
        configPath = config
        try yaml.write(to: config, atomically: true, encoding: .utf8)
        log = directory.appendingPathComponent("gate.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let p = Process()
        p.executableURL = tool("capture-proxy")
        p.arguments = ["run", "--config", config.path, "--log-level", "debug"]
        var env = ProcessInfo.processInfo.environment
        env["TEST_DB_SCRAM_PASSWORD"] = database["TOLLGATE_PG_SCRAM_PASSWORD"]
        env["TEST_DB_MD5_PASSWORD"] = database["TOLLGATE_PG_MD5_PASSWORD"]
        env.merge(environment) { $1 }
        p.environment = env
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        process = p
        for port in ports.values {
            do { try waitForPort(port) } catch {
                p.terminate()
                throw HarnessError(description: "capture-proxy did not start: \(logText)")
            }
        }
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    func port(_ target: String) -> Int { ports[target]! }

    /// The key of the admin API's port in `ports` (not a valid target name).
    static let adminListener = "(admin)"
    var adminPort: Int? { ports[Self.adminListener] }

    /// psql through the gate with `token` as the password.
    func psql(_ target: String, token: String, _ arguments: [String], sslmode: String = "disable", stdin: String? = nil,
              user: String = "agent") throws -> Output {
        try run("psql", ["-X", "-v", "ON_ERROR_STOP=1", "-At", "host=127.0.0.1 port=\(port(target)) dbname=\(database.database) user=\(user) sslmode=\(sslmode)"] + arguments,
                environment: ["PGPASSWORD": token, "PGCONNECT_TIMEOUT": "10"], stdin: stdin)
    }

    /// psql through the gate in the background, for statements that outlive what the test does next.
    func startPsql(_ target: String, token: String, _ sql: String) throws -> (Process, Pipe, Pipe) {
        try startClient(target, token: token, ["psql", "-X", "-At", "-c", sql])
    }

    /// Any libpq client (psql with its own options, python3 with psycopg) through the gate in the
    /// background, with the gate's connection settings in its environment; its output in the pipes.
    func startClient(_ target: String, token: String, _ command: [String]) throws -> (Process, Pipe, Pipe) {
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = command
        client.environment = ProcessInfo.processInfo.environment.merging(libpqEnvironment(target, token: token)) { $1 }
        let out = Pipe(), err = Pipe()
        client.standardOutput = out
        client.standardError = err
        try client.run()
        return (client, out, err)
    }

    /// Connection settings for other clients (pgbench, psycopg) through the gate.
    func libpqEnvironment(_ target: String, token: String) -> [String: String] {
        ["PGHOST": "127.0.0.1", "PGPORT": "\(port(target))", "PGDATABASE": database.database, "PGUSER": "agent",
         "PGPASSWORD": token, "PGSSLMODE": "disable", "PGCONNECT_TIMEOUT": "10"]
    }

    /// Rewrites the configuration file with `transform` and sends SIGHUP; waits for the log to say what happened.
    func reload(_ transform: (String) -> String, expectLog marker: String) throws {
        let text = try String(contentsOf: configPath, encoding: .utf8)
        try transform(text).write(to: configPath, atomically: true, encoding: .utf8)
        let before = logText.components(separatedBy: marker).count
        kill(process.processIdentifier, SIGHUP)
        let deadline = ContinuousClock.now + .seconds(10)
        while logText.components(separatedBy: marker).count == before, ContinuousClock.now < deadline { usleep(50_000) }
    }

    /// Stops the gate with SIGTERM (graceful: every capture sealed) and returns its exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning {
            process.interrupt()
            kill(process.processIdentifier, SIGTERM)
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Every capture the gate wrote, opened.
    func captures() throws -> [CaptureFile] {
        let root = directory.appendingPathComponent("captures")
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return [] }
        return try walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".sesscap") }.sorted()
            .map { try CaptureFile(path: root.appendingPathComponent($0).path) }
    }

    /// Everything the gate wrote, as a secret would appear in it: the log, and every capture
    /// (see `secretScanBytes`).
    func everythingWritten() throws -> [UInt8] {
        var bytes = Array(logText.utf8)
        for c in try captures() { bytes += try secretScanBytes(c) }
        return bytes
    }

    /// Neither a client's token (nor its signature alone) nor a brokered password may be in a capture or the log.
    func expectNoSecrets(_ tokens: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let written = try everythingWritten()
        // Each test is computed first: an expectation on the expression would print all the bytes.
        for token in tokens {
            let found = written.contains(bytes: token)
            #expect(!found, "a token (\(token.prefix(12))…) reached a capture or the log", sourceLocation: sourceLocation)
            if let signature = token.split(separator: ".").last, signature.count > 16 {
                let signed = written.contains(bytes: String(signature))
                #expect(!signed, "a token signature reached a capture or the log", sourceLocation: sourceLocation)
            }
        }
        for key in ["TOLLGATE_PG_SCRAM_PASSWORD", "TOLLGATE_PG_MD5_PASSWORD"] {
            let found = written.contains(bytes: database[key])
            #expect(!found, "a brokered password reached a capture or the log", sourceLocation: sourceLocation)
        }
    }

    deinit {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: directory)
    }
}

extension Array where Element == UInt8 {
    func contains(bytes needle: String) -> Bool {
        Data(self).range(of: Data(needle.utf8)) != nil
    }
}

/// A capture as a secret would appear in it: the file's bytes (its header and footer are
/// stored as they are), every block's events decompressed (event blocks are always
/// compressed, so a token inside an event is not in the file's bytes), and every event as
/// `sessinfo --json` prints it.
func secretScanBytes(_ capture: CaptureFile) throws -> [UInt8] {
    var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: capture.path)))
    for block in capture.blocks { bytes += try capture.rawPayload(of: block) }
    try capture.forEachEvent { bytes += Array($0.jsonLine().utf8); return true }
    return bytes
}

func allEvents(_ capture: CaptureFile) throws -> [Event] {
    var events: [Event] = []
    try capture.forEachEvent { events.append($0); return true }
    return events
}

/// The standard target body: the gate logs in with SCRAM.
let scramTarget = """
    credentials:
      user: tollgate_gate
      password_env: TEST_DB_SCRAM_PASSWORD
    """

/// A CA named `caName` made in `directory`, and a server certificate it signed for localhost and
/// 127.0.0.1 (PEM files, valid two days): for TLS listeners under test.
func makeTestCertificates(in directory: URL, caName: String) throws -> (ca: String, cert: String, key: String) {
    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    let (ca, caKey, csr, ext, cert, key) = (path("ca.crt"), path("ca.key"), path("s.csr"), path("ext"), path("s.crt"), path("s.key"))
    try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: ext, atomically: true, encoding: .utf8)
    for args in [["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=\(caName)", "-keyout", caKey, "-out", ca],
                 ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", key, "-out", csr],
                 ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert]] {
        let r = try run("openssl", args)
        guard r.status == 0 else { throw HarnessError(description: "openssl \(args[0]): \(r.stderr)") }
    }
    return (ca, cert, key)
}
