import CaptureFormat
import Foundation
import TestSupport
import Testing

/// The admin API of the built gate, through curl, with tokens from the real OIDC provider:
/// health and metrics, bearer authentication (RFC 6750 challenges), operator groups, live
/// sessions listed and ended, policy reload, TLS.
@Suite("admin API", .serialized)
struct AdminAPITests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: String
        var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] }
    }

    /// One request with curl; `token` as a bearer token; `extra` curl arguments (TLS).
    func request(_ gate: GateProcess, _ method: String, _ path: String, token: String? = nil, scheme: String = "http",
                 extra: [String] = [], authorization: String? = nil, body: String? = nil) throws -> Reply {
        let port = try #require(gate.adminPort)
        var args = ["-sS", "-i", "-X", method, "--max-time", "20"] + extra
        if let body { args += ["-H", "Content-Type: application/json", "--data-binary", body] }
        if let token { args += ["-H", "Authorization: Bearer \(token)"] }
        if let authorization { args += ["-H", "Authorization: \(authorization)"] }
        args.append("\(scheme)://127.0.0.1:\(port)\(path)")
        let r = try run("curl", args)
        try #require(r.status == 0, "curl: \(r.stderr)")
        let parts = r.stdout.components(separatedBy: "\r\n\r\n")
        let head = parts[0].components(separatedBy: "\r\n")
        let status = Int(head[0].split(separator: " ")[1]) ?? 0
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Reply(status: status, headers: headers, body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    static let admin = "groups: [tollgate-ops]"

    @Test func healthAndMetricsAnswerWithoutAToken() throws {
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget], admin: Self.admin)
        defer { gate.stop() }
        let token = try provider.token("metrics@example.com")
        #expect(try gate.psql("db", token: token, ["-c", "SELECT 1"]).status == 0)
        let health = try request(gate, "GET", "/health")
        #expect(health.status == 200)
        #expect(health.json?["status"] as? String == "ok")
        #expect(health.json?["gate"] as? String == "test-gate")
        let metrics = try request(gate, "GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        #expect(metrics.body.contains(#"tollgate_sessions_total{target="db"} 1"#), "\(metrics.body)")
        #expect(metrics.body.contains(#"tollgate_decisions_total{target="db",outcome="allow"} 1"#), "\(metrics.body)")
        #expect(metrics.body.contains(#"tollgate_exchanges_total{target="db"} 1"#))
        #expect(metrics.body.contains(#"tollgate_upstream_latency_seconds_count{target="db"} 1"#))
        #expect(metrics.body.contains(#"tollgate_gate_added_latency_seconds_count{target="db"} 1"#))
        #expect(!metrics.body.contains("metrics@example.com"))
        #expect(try request(gate, "GET", "/nothing-here").status == 404)
    }

    @Test func badTokensGetAChallengeAndChangeNothing() throws {
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget], admin: Self.admin)
        defer { gate.stop() }
        let missing = try request(gate, "GET", "/v1/sessions")
        #expect(missing.status == 401)
        #expect(missing.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        let basic = try request(gate, "GET", "/v1/sessions", authorization: "Basic YWxpY2U6c2VjcmV0")
        #expect(basic.status == 401)
        #expect(basic.headers["www-authenticate"]?.contains("invalid_request") == true)
        let garbage = try request(gate, "POST", "/v1/policy/reload", token: "not.a.token")
        #expect(garbage.status == 401)
        #expect(garbage.headers["www-authenticate"]?.contains("invalid_token") == true)
        let wrongAudience = try provider.token("ops@example.com", groups: ["tollgate-ops"], audience: "another-app")
        let refused = try request(gate, "POST", "/v1/policy/reload", token: wrongAudience)
        #expect(refused.status == 401)
        #expect((refused.json?["error"] as? String)?.contains("invalid token") == true)
        // A valid token outside the admin groups: authenticated, not allowed.
        let outsider = try provider.token("dev@example.com", groups: ["developers"])
        let forbidden = try request(gate, "POST", "/v1/policy/reload", token: outsider)
        #expect(forbidden.status == 403)
        #expect((forbidden.json?["error"] as? String)?.contains("dev@example.com is not in an admin group") == true)
        #expect(!gate.logText.contains("policies reloaded"))
        // No token reached the log.
        #expect(!gate.logText.contains(outsider) && !gate.logText.contains(wrongAudience))
    }

    @Test func anOperatorListsAndEndsALiveSession() throws {
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget], admin: Self.admin)
        defer { gate.stop() }
        let agentToken = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let (client, _, err) = try gate.startPsql("db", token: agentToken, "SELECT pg_sleep(60)")
        defer { if client.isRunning { client.terminate() } }
        let ops = try provider.token("ops@example.com", groups: ["tollgate-ops"])
        var listed: [[String: Any]] = []
        try waitUntil("the session to be listed", timeout: .seconds(30)) {
            listed = ((try? request(gate, "GET", "/v1/sessions", token: ops))?.json?["sessions"] as? [[String: Any]]) ?? []
            return !listed.isEmpty
        }
        let session = try #require(listed.first)
        #expect(session["subject"] as? String == "agent@example.com")
        #expect(session["target"] as? String == "db")
        #expect(session["groups"] as? [String] == ["ai-assistants"])
        #expect(session["started"] is String)
        let id = try #require(session["id"] as? String)

        #expect(try request(gate, "POST", "/v1/sessions/no-such-session/end", token: ops).status == 404)
        let ended = try request(gate, "POST", "/v1/sessions/\(id)/end", token: ops)
        #expect(ended.status == 200)
        #expect(ended.json?["ended"] as? String == id)
        client.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        // What PostgreSQL's pg_terminate_backend gives the client: 57P01, administrator command.
        #expect(stderr.contains("terminating connection due to administrator command"), "\(stderr)")
        #expect(stderr.contains("ended by ops@example.com"), "\(stderr)")
        try waitUntil("the session to leave the list", timeout: .seconds(30)) {
            ((try? request(gate, "GET", "/v1/sessions", token: ops))?.json?["sessions"] as? [Any])?.isEmpty == true
        }
        #expect(gate.stop() == 0)
        let capture = try #require(try gate.captures().first)
        guard case .sessionEnd(let end) = try allEvents(capture).last?.payload else {
            Issue.record("the capture has no session end")
            return
        }
        #expect(end.reason == "admin-end")
        #expect(gate.logText.contains("session ended through the admin API"))
        // And in the audit of the gate's state store, with who did it.
        let store = gate.directory.appendingPathComponent("captures/approvals.sqlite").path
        let audit = try run("sqlite3", [store, "SELECT actor, action, object, outcome FROM admin_audit"])
        #expect(audit.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ops@example.com|end-session|\(id)|ended", "\(audit.stdout)\(audit.stderr)")
    }

    @Test func reloadTakesTheFileOrKeepsTheRunningPolicies() throws {
        let policy = """
            policies:
              - name: readers
                who: {groups: [ai-assistants]}
                target: db
                rules:
                  - {name: reads, when: {statement: [select]}, then: allow}
            """
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget], policies: policy, admin: Self.admin)
        defer { gate.stop() }
        let ops = try provider.token("ops@example.com", groups: ["tollgate-ops"])
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        #expect(try gate.psql("db", token: agent, ["-c", "SELECT 1"]).status == 0)
        let before = try request(gate, "GET", "/health").json?["policy_generation"] as? Int

        // A broken file: 422 with the file's own error, and the running policies stay.
        let text = try String(contentsOf: gate.configPath, encoding: .utf8)
        try text.replacingOccurrences(of: "then: allow", with: "then: perhaps").write(to: gate.configPath, atomically: true, encoding: .utf8)
        let broken = try request(gate, "POST", "/v1/policy/reload", token: ops)
        #expect(broken.status == 422)
        #expect((broken.json?["error"] as? String)?.contains("gate.yaml:") == true, "\(broken.body)")
        #expect(try request(gate, "GET", "/health").json?["policy_generation"] as? Int == before)
        #expect(try gate.psql("db", token: agent, ["-c", "SELECT 1"]).status == 0)

        // A file that loads: the new policies apply to the next statement of a new session.
        try text.replacingOccurrences(of: "then: allow", with: "then: deny").write(to: gate.configPath, atomically: true, encoding: .utf8)
        let reloaded = try request(gate, "POST", "/v1/policy/reload", token: ops)
        #expect(reloaded.status == 200)
        #expect(reloaded.json?["policy_generation"] as? Int == (before ?? 0) + 1)
        let denied = try gate.psql("db", token: agent, ["-c", "SELECT 1"])
        #expect(denied.status != 0)
        #expect(denied.stderr.contains("42501") || denied.stderr.contains("denied"), "\(denied.stderr)")
        #expect(gate.logText.contains("policies reloaded through the admin API"))
        let store = gate.directory.appendingPathComponent("captures/approvals.sqlite").path
        let audit = try run("sqlite3", [store, "SELECT action, outcome FROM admin_audit ORDER BY id"])
        #expect(audit.stdout == "reload-policies|refused: the configuration does not load\nreload-policies|reloaded\n", "\(audit.stdout)\(audit.stderr)")
    }

    @Test func theAdminListenerServesTLS() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("admin-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let files = try makeTestCertificates(in: work, caName: "Admin test CA")
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget],
                                   admin: Self.admin + "\ntls: {certificate: \(files.cert), key: \(files.key)}")
        defer { gate.stop() }
        let health = try request(gate, "GET", "/health", scheme: "https", extra: ["--cacert", files.ca])
        #expect(health.status == 200)
        // Plain HTTP to the TLS listener gets nothing it could take for an answer.
        let port = try #require(gate.adminPort)
        let plain = try run("curl", ["-sS", "--max-time", "10", "http://127.0.0.1:\(port)/health"])
        #expect(plain.status != 0 || !plain.stdout.contains("\"ok\""))
    }

    /// docs/admin-api.openapi.yaml is a valid OpenAPI document, and every operation it describes
    /// is served (nothing answers with the catch-all "no such endpoint").
    @Test func theOpenAPIDescriptionIsValidAndServed() throws {
        let spec = repositoryRoot.appendingPathComponent("docs/admin-api.openapi.yaml").path
        let valid = try run("python3", ["-m", "openapi_spec_validator", spec])
        #expect(valid.status == 0, "\(valid.stdout)\(valid.stderr)")
        let listed = try run("python3", ["-c", """
            import sys, yaml
            for path, item in yaml.safe_load(open(sys.argv[1]))["paths"].items():
                for method in item:
                    print(method.upper(), path)
            """, spec])
        try #require(listed.status == 0, "\(listed.stderr)")
        let operations = listed.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(operations.count == 11)
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget], admin: Self.admin)
        defer { gate.stop() }
        let ops = try provider.token("ops@example.com", groups: ["tollgate-ops"])
        for operation in operations {
            let reply = try request(gate, operation[0], operation[1].replacingOccurrences(of: "{id}", with: "unknown"), token: ops,
                                    body: operation[0] == "POST" ? #"{"reason": "checking the API"}"# : nil)
            // (A 404 is right only for the unknown id, and says so.)
            let error = reply.json?["error"] as? String ?? ""
            #expect(reply.status != 404 || ["no open session", "no approval", "no grant"].contains { error.hasPrefix($0) },
                    "\(operation): \(reply.status) \(reply.body)")
            #expect(reply.status < 500, "\(operation): \(reply.status)")
        }
    }

    /// The approvers' endpoints, before anything is held: empty lists, unknown ids (404), bad
    /// bodies (400) and unknown states (400), each a clear JSON error that changes nothing.
    @Test func approvalEndpointsAnswerBadInputClearly() throws {
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget], admin: Self.admin)
        defer { gate.stop() }
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let pending = try request(gate, "GET", "/v1/approvals", token: dba)
        #expect(pending.status == 200 && (pending.json?["approvals"] as? [Any])?.isEmpty == true, "\(pending.body)")
        #expect(try request(gate, "GET", "/v1/approvals?state=maybe", token: dba).status == 400)
        let unknown = try request(gate, "POST", "/v1/approvals/no-such/approve", token: dba, body: #"{"reason": "looks fine"}"#)
        #expect(unknown.status == 404 && unknown.json?["error"] as? String == "no approval no-such", "\(unknown.body)")
        for bad in ["not json", #"{"why": "x"}"#, #"["reason"]"#, ""] {
            let r = try request(gate, "POST", "/v1/approvals/no-such/deny", token: dba, body: bad)
            #expect(r.status == 400, "\(bad): \(r.status) \(r.body)")
        }
        let grants = try request(gate, "GET", "/v1/grants?all=true", token: dba)
        #expect(grants.status == 200 && (grants.json?["grants"] as? [Any])?.isEmpty == true)
        #expect(try request(gate, "POST", "/v1/grants/no-such/revoke", token: dba, body: #"{"reason": "done"}"#).status == 404)
        #expect(try request(gate, "GET", "/v1/approvals").status == 401)
    }
}
