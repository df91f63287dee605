import Foundation
import TestSupport
import Testing

/// `capture-proxy check`: every configuration error names the file, line and column.
@Suite("gate configuration")
struct ConfigTests {
    func check(_ yaml: String, environment: [String: String] = [:]) throws -> Output {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("gate.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try run(tool("capture-proxy").path, ["check", "--config", path], environment: environment)
    }

    /// A configuration `check` accepts (other suites start from it too).
    static let valid = """
        proxy:
          id: g1
          captures: captures
          signing_key: signing.key
        identity:
          issuer: https://login.example.com
          audiences: [tollgate]
        targets:
          db:
            protocol: postgres
            listen: 127.0.0.1:6432
            upstream: 127.0.0.1:5432
            credentials:
              user: gate
              password_env: GATE_PW
        """

    /// The default follows the CPUs the process may use (here: one, by taskset), not the host's.
    @Test func eventLoopsFollowTheUsableCores() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("gate.yaml").path
        try Self.valid.write(toFile: path, atomically: true, encoding: .utf8)
        // The first CPU this test may use (a cpuset need not start at 0).
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let list = try #require(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
        let first = String(list.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces).prefix { $0.isNumber })
        let one = try run("taskset", ["-c", first, tool("capture-proxy").path, "check", "--config", path], environment: ["GATE_PW": "x"])
        #expect(one.status == 0, "\(one.stderr)")
        #expect(one.stdout.contains("1 event loop (one per usable core)"), "\(one.stdout)")
        let set = try check(Self.valid.replacingOccurrences(of: "  id: g1", with: "  id: g1\n  threads: 3"), environment: ["GATE_PW": "x"])
        #expect(set.stdout.contains("3 event loops\n"), "\(set.stdout)")
    }

    @Test func theAdminSectionIsCheckedWithItsLine() throws {
        let ok = try check(Self.valid + "\nadmin:\n  listen: 127.0.0.1:9440\n  groups: [tollgate-ops]\n", environment: ["GATE_PW": "x"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("admin API: 127.0.0.1:9440, plaintext (loopback), operators: tollgate-ops"), "\(ok.stdout)")
        for (section, message) in [
            ("admin:\n  listen: 0.0.0.0:9440\n  groups: [ops]\n", "gate.yaml:17:3: admin: listens on 0.0.0.0:9440, which is not loopback, without 'tls'"),
            ("admin:\n  listen: 127.0.0.1:9440\n", "gate.yaml:17:3: admin: missing 'groups'"),
            ("admin:\n  listen: 127.0.0.1:6432\n  groups: [ops]\n", "the admin API and target 'db' both listen on 127.0.0.1:6432"),
            ("admin:\n  listen: 127.0.0.1:9440\n  groups: [ops]\n  tls: {certificate: nope.crt, key: nope.key}\n", "file not found"),
            ("admin:\n  listen: 127.0.0.1:9440\n  groups: [ops]\n  port: 3\n", "unknown key 'port'"),
        ] {
            let r = try check(Self.valid + "\n" + section, environment: ["GATE_PW": "x"])
            #expect(r.status != 0)
            #expect(r.stderr.contains(message), "\(r.stderr)")
        }
    }

    @Test func webhooksAreCheckedWithTheirLineAndTheirSecretNeverShown() throws {
        let hook = "\nwebhooks:\n  dba-chat:\n    url: https://hooks.example.com/services/T000/B000/XXXX\n    format: slack\n    secret_env: HOOK_KEY\n    events: [approval.requested]\n"
        let ok = try check(Self.valid + hook, environment: ["GATE_PW": "x", "HOOK_KEY": "webhook-signing-key-5e1"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("webhook dba-chat: slack to https://hooks.example.com…, events: approval.requested, secret: env HOOK_KEY, 5 attempts"), "\(ok.stdout)")
        // Neither the secret nor the URL's path (a Slack URL is its own secret) is shown.
        #expect(!ok.stdout.contains("webhook-signing-key-5e1") && !ok.stdout.contains("XXXX"))
        for (section, message) in [
            ("webhooks:\n  r:\n    url: http://hooks.example.com/x\n    secret_env: HOOK_KEY\n", "gate.yaml:18:10: webhooks.r.url: the url must be https"),
            ("webhooks:\n  r:\n    url: https://hooks.example.com/x\n", "gate.yaml:18:5: webhooks.r: missing 'secret_env' or 'secret_file'"),
            ("webhooks:\n  r:\n    url: https://hooks.example.com/x\n    secret: inline\n", "inline secrets are not allowed"),
            ("webhooks:\n  r:\n    url: https://hooks.example.com/x\n    secret_env: UNSET_KEY\n", "environment variable UNSET_KEY is not set"),
            ("webhooks:\n  r:\n    url: https://hooks.example.com/x\n    secret_env: HOOK_KEY\n    events: [approval.maybe]\n", "unknown event 'approval.maybe'"),
        ] {
            let r = try check(Self.valid + "\n" + section, environment: ["GATE_PW": "x", "HOOK_KEY": "k"])
            #expect(r.status != 0)
            #expect(r.stderr.contains(message), "\(r.stderr)")
        }
    }

    @Test func validConfigurationIsSummarised() throws {
        let r = try check(Self.valid, environment: ["GATE_PW": "brokered-secret-7f3a"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("db: postgres 127.0.0.1:6432 -> 127.0.0.1:5432 as gate (password: env GATE_PW)"))
        #expect(!r.stdout.contains("brokered-secret-7f3a") && !r.stderr.contains("brokered-secret-7f3a"))
    }

    /// `recording.durability`: batched unless set; strict when set; anything else named with its line.
    @Test func recordingDurabilityIsReadAndChecked() throws {
        let batched = try check(Self.valid, environment: ["GATE_PW": "x"])
        #expect(batched.stdout.contains("recording batched"), "\(batched.stdout)")
        let strict = try check(Self.valid + "\n    recording:\n      durability: strict\n", environment: ["GATE_PW": "x"])
        #expect(strict.status == 0, "\(strict.stderr)")
        #expect(strict.stdout.contains("recording strict"), "\(strict.stdout)")
        let wrong = try check(Self.valid + "\n    recording:\n      durability: eventually\n", environment: ["GATE_PW": "x"])
        #expect(wrong.status == 2)
        #expect(wrong.stderr.contains("gate.yaml:17:"), "\(wrong.stderr)")
    }

    @Test(arguments: [
        ("proxy:\n  id: [unclosed", "gate.yaml:3:1:", "that starts at line 2, column 7"),
        ("proxy:\n  id: g1\n  captures: c\n  signing_key: k\n  colour: red\n", "gate.yaml:5:", "unknown key 'colour'"),
    ])
    func syntaxAndUnknownKeysNameTheLine(yaml: String, location: String, message: String) throws {
        let r = try check(yaml)
        #expect(r.status == 2)
        #expect(r.stderr.contains(location), "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    @Test func unsafeSettingsAreRefused() throws {
        let inline = Self.valid.replacingOccurrences(of: "password_env: GATE_PW", with: "password: hunter2")
        let r1 = try check(inline)
        #expect(r1.status == 2)
        #expect(r1.stderr.contains("gate.yaml:15:"), "\(r1.stderr)")
        #expect(r1.stderr.contains("inline passwords are not allowed"))
        #expect(!r1.stderr.contains("hunter2"))

        let r2 = try check(Self.valid)
        #expect(r2.status == 2)
        #expect(r2.stderr.contains("environment variable GATE_PW is not set"))

        let open = Self.valid.replacingOccurrences(of: "listen: 127.0.0.1:6432", with: "listen: 0.0.0.0:6432")
        let r3 = try check(open, environment: ["GATE_PW": "x"])
        #expect(r3.status == 2)
        #expect(r3.stderr.contains("without 'tls'"), "\(r3.stderr)")

        let reviewWithoutApprovers = Self.valid + "\npolicies:\n  - name: p\n    who: {groups: [g]}\n    rules:\n      - {when: {statement: [insert]}, then: review}\n"
        let r4 = try check(reviewWithoutApprovers, environment: ["GATE_PW": "x"])
        #expect(r4.status == 2)
        #expect(r4.stderr.contains("gate.yaml:20:"), "\(r4.stderr)")
        #expect(r4.stderr.contains("needs 'approvers'"), "\(r4.stderr)")
    }

    /// The sample configurations, as shipped, pass `capture-proxy check` (given the password
    /// variable they name), and say what is missing without it.
    @Test(arguments: ["samples/tollgate.yaml", "samples/policies/ai-readonly.yaml", "samples/policies/readonly-role.yaml"])
    func theSampleConfigurationsCheck(path: String) throws {
        let config = repositoryRoot.appendingPathComponent(path).path
        let text = try String(contentsOfFile: config, encoding: .utf8)
        // Every password or secret variable the sample names (a target's, its policies', the page's client secret).
        let variables = text.matches(of: /(?:password|secret)_env: *([A-Z_]+)/).map { String($0.1) }
        let variable = try #require(variables.first, "\(path) names no password variable")
        let all = Dictionary(variables.map { ($0, "x") }, uniquingKeysWith: { a, _ in a })
        let ok = try run(tool("capture-proxy").path, ["check", "--config", config], environment: all)
        #expect(ok.status == 0, "\(path): \(ok.stdout) \(ok.stderr)")
        // Empty counts as unset (a variable exported without a value must not log in as nobody).
        let missing = try run(tool("capture-proxy").path, ["check", "--config", config], environment: all.merging([variable: ""]) { $1 })
        let message = missing.stderr
        #expect(missing.status == 2, "\(path): \(message)")
        #expect(message.contains("\(variable) is not set"), "\(path): \(message)")
    }

    /// The sample policy, as a dry run: `capture-proxy explain --json` with no database.
    @Test(arguments: [
        ("SELECT event_type, count(*) FROM analytics.events GROUP BY 1", "allow", "read-analytics", 0),
        ("SELECT * FROM public.customers", "deny", "default-deny", 1),
        ("UPDATE analytics.events SET country = 'DE' WHERE id = 1", "review", "writes-need-review", 1),
        ("WITH d AS (DELETE FROM analytics.events RETURNING *) SELECT * FROM d", "deny", "default-deny", 1),
        ("SELECT 1; DROP TABLE analytics.events", "deny", "no-destruction", 1),
        ("SELEC broken", "deny", "unparseable", 1),
    ])
    func explainTheSamplePolicy(sql: String, decision: String, rule: String, status: Int32) throws {
        let config = repositoryRoot.appendingPathComponent("samples/policies/ai-readonly.yaml").path
        let r = try run(tool("capture-proxy").path, ["explain", "--config", config, "--subject", "alice@example.com",
                                                     "--groups", "ai-assistants", "--target", "demo", "--json", sql])
        #expect(r.status == status, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["decision"] as? String == decision)
        #expect(object["rule"] as? String == rule)
        #expect((object["statements"] as? [[String: Any]])?.isEmpty == false)
    }

    /// A policy's own upstream account: same shape as a target's, and two policies that name
    /// different accounts for the same group and target are refused at load.
    @Test func policyCredentialsAreValidatedWithTheirLine() throws {
        let env = ["GATE_PW": "x", "RO_PW": "y"]
        let readOnly = "\npolicies:\n  - name: ro\n    who: {groups: [g]}\n    target: db\n    credentials: {user: reader, password_env: RO_PW}\n    rules: [{when: {writes: false}, then: allow}]\n"
        let good = try check(Self.valid + readOnly, environment: env)
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.contains("logs in as reader (password: env RO_PW)"), "\(good.stdout)")
        let unset = try check(Self.valid + readOnly, environment: ["GATE_PW": "x"])
        #expect(unset.status == 2 && unset.stderr.contains("gate.yaml:20:") && unset.stderr.contains("RO_PW is not set"), "\(unset.stderr)")
        let conflict = try check(Self.valid + readOnly + "  - name: other\n    who: {groups: [h, g]}\n    credentials: {user: writer, password_env: GATE_PW}\n    rules: [{then: allow}]\n",
                                 environment: env)
        #expect(conflict.status == 2)
        #expect(conflict.stderr.contains("gate.yaml:24:") && conflict.stderr.contains("policy 'other' names database account writer, but policy 'ro' names reader"),
                "\(conflict.stderr)")
        // Other groups: a session is refused only if someone is in both (decided when they log in).
        let disjoint = try check(Self.valid + readOnly + "  - name: other\n    who: {groups: [h]}\n    credentials: {user: writer, password_env: GATE_PW}\n    rules: [{then: allow}]\n",
                                 environment: env)
        #expect(disjoint.status == 0, "\(disjoint.stderr)")
        let inline = try check(Self.valid + "\npolicies:\n  - name: ro\n    who: {groups: [g]}\n    credentials: {user: reader, password: secret}\n    rules: [{then: allow}]\n", environment: env)
        #expect(inline.status == 2 && inline.stderr.contains("gate.yaml:19:") && inline.stderr.contains("inline passwords are not allowed"), "\(inline.stderr)")
    }

    @Test func masksAreValidatedWithTheirLine() throws {
        let env = ["GATE_PW": "x"]
        let good = try check(Self.valid + "\n    masks: [credit_card, secrets, {column: \"*.ssn\"}, {regex: 'EMP-\\d{6}', name: employee_id}, {json_field: \"*.password\"}]\n",
                             environment: env)
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.contains("masks: credit_card, secrets, column *.ssn, employee_id /EMP-\\d{6}/, json_field *.password"), "\(good.stdout)")
        for (masks, message) in [
            ("[credit_cards]", "unknown masking detector 'credit_cards'"),
            ("[{column: \"a.b.c.d\"}]", "is not a glob of the form"),
            ("[{regex: '(unclosed', name: broken}]", "invalid regular expression"),
            ("[{regex: 'x+'}]", "needs a 'name'"),
            ("[{regex: 'x+', name: 'Bad Name'}]", "must be lowercase letters"),
            ("[{column: a, regex: b, name: c}]", "either {column"),
            ("[{json_field: \"a..b\"}]", "json_field rule 'a..b'"),
            ("[{json_field: a, column: b}]", "one of {column: …}, {json_field: …}"),
        ] {
            let r = try check(Self.valid + "\n    masks: \(masks)\n", environment: env)
            #expect(r.status == 2, "\(masks)")
            #expect(r.stderr.contains("gate.yaml:16:"), "\(masks): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(masks): \(r.stderr)")
        }
        let inPolicy = try check(Self.valid + "\npolicies:\n  - name: p\n    who: {groups: [g]}\n    rules: [{when: {statement: [select]}, then: allow}]\n    masks: [ibann]\n", environment: env)
        #expect(inPolicy.status == 2)
        #expect(inPolicy.stderr.contains("gate.yaml:20:") && inPolicy.stderr.contains("'ibann'"), "\(inPolicy.stderr)")
    }

    @Test func anHTTPClientCertificateNeedsUpstreamTLSAndBothFilesAndImpersonationAKubernetesTarget() throws {
        let base = """
            proxy:
              id: g1
              captures: captures
              signing_key: signing.key
            identity:
              issuer: https://login.example.com
              audiences: [tollgate]
            targets:
              api:
                protocol: http
                listen: 127.0.0.1:8080
                upstream: 127.0.0.1:9443

            """
        let cert = FileManager.default.temporaryDirectory.appendingPathComponent("k8smore20-cert-\(UUID().uuidString).pem").path
        try "x".write(toFile: cert, atomically: true, encoding: .utf8)
        for (lines, message) in [
            ("    upstream_tls: disable\n    credentials: {certificate_file: \(cert), key_file: \(cert)}\n", "needs upstream TLS"),
            ("    upstream_ca_file: \(cert)\n    credentials: {certificate_file: \(cert)}\n", "'certificate_file' with 'key_file'"),
            ("    upstream_ca_file: \(cert)\n    credentials: {certificate_file: \(cert), key_file: /nonexistent/k8smore20.key}\n", "cannot read /nonexistent"),
            ("    upstream_ca_file: \(cert)\n    impersonate: true\n", "'impersonate' is for kind: kubernetes targets"),
        ] {
            let r = try check(base + lines)
            #expect(r.status == 2 && r.stderr.contains("gate.yaml:") && r.stderr.contains(message), "\(lines): \(r.stderr)")
        }
    }
}
