import CaptureFormat
import Foundation
import TestSupport
import Testing

@Suite("real drivers and TLS through the gate", .serialized)
struct DriverTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    func psycopg(_ gate: GateProcess, _ mode: String, token: String) throws -> [String: Any] {
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/psycopg_client.py").path
        let r = try run("python3", [script, mode], environment: gate.libpqEnvironment("demo", token: token), timeout: .seconds(60))
        #expect(r.status == 0, "psycopg \(mode): \(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        return try #require(object as? [String: Any])
    }

    @Test func psycopgParametersBinaryAndPipeline() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let params = try psycopg(gate, "params", token: token)
        #expect((params["rows"] as? [[Any]])?.count == 2)
        let binary = try psycopg(gate, "binary", token: token)
        #expect((binary["row"] as? [Any])?.first as? Int == 42)
        let pipeline = try psycopg(gate, "pipeline", token: token)
        #expect(pipeline["results"] as? [Int] == (0..<10).map { $0 * 2 })
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])

        var extended: [PostgresRequest] = []
        var binaryColumns = 0
        for c in try gate.captures() {
            for e in try allEvents(c) {
                if case .request(.postgres(let p)) = e.payload, p.path == .extended { extended.append(p) }
                if case .response(.postgres(let p)) = e.payload { binaryColumns += p.columns.filter { $0.format == 1 }.count }
            }
        }
        #expect(extended.contains { $0.text.contains("ANY($1)") && $0.parameters.count == 2 })
        #expect(extended.filter { $0.text == "SELECT $1::int * 2" }.count == 10, "every pipelined execute is its own exchange")
        #expect(binaryColumns >= 4)
    }

    @Test func cancelReachesTheRightBackend() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("agent@example.com")
        let result = try psycopg(gate, "cancel", token: token)
        #expect(result["cancelled"] as? Bool == true)
        #expect(result["sqlstate"] as? String == "57014")
        #expect((result["seconds"] as? Double ?? 99) < 10)
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        let responses = try gate.captures().flatMap { try allEvents($0) }.compactMap { e -> PostgresResponse? in
            if case .response(.postgres(let p)) = e.payload { return p } else { return nil }
        }
        #expect(responses.contains { $0.error?.sqlState == "57014" })
    }

    @Test func tlsTerminationWithSSLModeRequire() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (cert, key) = try selfSignedCertificate(in: dir)
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget + "\ntls:\n  certificate: \(cert)\n  key: \(key)"])
        let token = try provider.token("tls@example.com")
        let r = try gate.psql("demo", token: token, ["-c", "SELECT 'over tls'"], sslmode: "require")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("over tls"))
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        let events = try allEvents(try #require(try gate.captures().first))
        guard case .sessionStart(let start) = events.first?.payload else { Issue.record("no session start"); return }
        #expect(start.tls?.version == "TLSv1.3")
    }

    /// On an address beyond loopback, a target with a certificate refuses a client that does
    /// not ask for TLS (its token would cross the network in clear); plaintext there takes
    /// `allow_plaintext: true`. The second target reads its brokered password from a file.
    @Test func aListenerBeyondLoopbackRefusesPlaintext() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (cert, key) = try selfSignedCertificate(in: dir)
        let db = try DatabaseEnvironment.load()
        let passwordFile = dir.appendingPathComponent("db-password").path
        try (db["TOLLGATE_PG_SCRAM_PASSWORD"] + "\n").write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let gate = try GateProcess(provider: provider, targets: [
            "tls": scramTarget + "\ntls:\n  certificate: \(cert)\n  key: \(key)",
            "open": "credentials:\n  user: tollgate_gate\n  password_file: \(passwordFile)\nallow_plaintext: true",
        ], listenHosts: ["tls": "0.0.0.0", "open": "0.0.0.0"])
        let token = try provider.token("remote@example.com")
        let plain = try gate.psql("tls", token: token, ["-c", "SELECT 1"], sslmode: "disable")
        #expect(plain.status != 0)
        #expect(plain.stderr.contains("requires TLS"), "\(plain.stderr)")
        let secure = try gate.psql("tls", token: token, ["-c", "SELECT 'over tls'"], sslmode: "require")
        #expect(secure.status == 0 && secure.stdout.contains("over tls"), "\(secure.stderr)")
        let open = try gate.psql("open", token: token, ["-c", "SELECT current_user"], sslmode: "disable")
        #expect(open.status == 0, "\(open.stderr)")
        #expect(open.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "tollgate_gate")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        // The refused client never got as far as a session.
        let captures = try gate.captures()
        #expect(captures.count == 2)
        #expect(Set(captures.map(\.header.target)) == ["tls", "open"])
    }
}

/// A certificate for 127.0.0.1 and its key, made by openssl in `dir`.
func selfSignedCertificate(in dir: URL) throws -> (certificate: String, key: String) {
    let cert = dir.appendingPathComponent("gate.crt").path, key = dir.appendingPathComponent("gate.key").path
    let made = try run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                   "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"])
    guard made.status == 0 else { throw HarnessError(description: "openssl could not make a certificate: \(made.stderr)") }
    return (cert, key)
}
