import Foundation
import TestSupport
import Testing

/// The approvals page on the admin listener (issue 19, item 6): logged in through the real OIDC
/// provider's login page, in headless Chromium driven by Selenium (Fixtures/approvals_page.py),
/// and with curl for what a browser would not send (a form without its CSRF token).
@Suite("approvals page", .serialized)
struct ApprovalsPageTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
        let db = try DatabaseEnvironment.load()
        let setup = try db.psql(["-c", "CREATE TABLE IF NOT EXISTS page19_items (id int PRIMARY KEY, label text)",
                                 "-c", "INSERT INTO page19_items VALUES (1, 'one'), (2, 'two'), (3, 'three') ON CONFLICT (id) DO NOTHING",
                                 "-c", "GRANT ALL ON page19_items TO tollgate_gate"])
        try #require(setup.status == 0, "\(setup.stderr)")
    }

    static let policy = """
        policies:
          - name: page19
            who: {groups: [ai-assistants]}
            target: db
            rules:
              - {name: reads, when: {statement: [select]}, then: allow}
              - name: updates-need-review
                when: {statement: [update]}
                then: review
                approvers: [dba]

        """

    /// A gate whose admin listener serves the page; the provider accepts any client secret, the
    /// gate sends the one it is given (a confidential client).
    func startGate() throws -> GateProcess {
        try GateProcess(provider: provider, targets: ["db": scramTarget], policies: Self.policy,
                        environment: ["PAGE19_CLIENT_SECRET": "page19-client-secret"],
                        admin: "groups: [tollgate-ops]\nlogin: {client_id: tollgate, client_secret_env: PAGE19_CLIENT_SECRET}")
    }

    func base(_ gate: GateProcess) throws -> String { "http://127.0.0.1:\(try #require(gate.adminPort))" }

    func label(_ id: Int) throws -> String {
        try DatabaseEnvironment.load().psql(["-At", "-c", "SELECT label FROM page19_items WHERE id = \(id)"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The id of the one pending approval, through the JSON API.
    func pendingID(_ gate: GateProcess) throws -> String {
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        var id: String?
        try waitUntil("a pending approval", timeout: .seconds(30)) {
            let r = try? run("curl", ["-sS", "--max-time", "10", "-H", "Authorization: Bearer \(dba)", "\(try base(gate))/v1/approvals"])
            let list = (r.flatMap { try? JSONSerialization.jsonObject(with: Data($0.stdout.utf8)) } as? [String: Any])?["approvals"] as? [[String: Any]]
            id = list?.first?["id"] as? String
            return id != nil
        }
        return try #require(id)
    }

    /// The Selenium script's report.
    func browse(_ gate: GateProcess, _ subject: String, _ arguments: [String], environment: [String: String] = [:]) throws -> [String: Any] {
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/approvals_page.py").path
        let r = try run("python3", [script, try base(gate), subject] + arguments, environment: environment, timeout: .seconds(180))
        let report = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any]
        try #require(r.status == 0 && report != nil, "approvals_page.py: \(r.stdout)\(r.stderr)")
        return report ?? [:]
    }

    /// A page session for `subject` with curl, through the same login: /login, the provider's
    /// form, the callback. The cookie jar's path.
    func curlLogin(_ gate: GateProcess, _ subject: String, groups: [String], returnPath: String = "/approvals") throws -> String {
        _ = try provider.token(subject, groups: groups) // the provider now knows the subject's groups
        let jar = gate.directory.appendingPathComponent("jar-\(UUID().uuidString)").path
        func step(_ extra: [String]) throws -> String {
            let r = try run("curl", ["-sS", "--max-time", "20", "-c", jar, "-b", jar, "-o", "/dev/null", "-w", "%{redirect_url}"] + extra)
            try #require(r.status == 0, "curl: \(r.stderr)")
            return r.stdout
        }
        let authorize = try step(["\(try base(gate))/login?return=\(returnPath)"])
        #expect(authorize.hasPrefix(provider.issuer + "/oauth2/authorize?"), "\(authorize)")
        for parameter in ["code_challenge_method=S256", "code_challenge=", "nonce=", "state="] {
            #expect(authorize.contains(parameter), "\(parameter) missing from \(authorize)")
        }
        let callback = try step(["--data-urlencode", "sub=\(subject)", authorize])
        // Back to the page asked for, and only ever to a page of this listener.
        #expect(try step([callback]) == "\(try base(gate))\(returnPath.hasPrefix("/approvals") ? returnPath : "/approvals")")
        return jar
    }

    struct Reply { var status: Int; var headers: String; var body: String }

    func get(_ gate: GateProcess, _ path: String, jar: String? = nil) throws -> Reply {
        try curl(gate, path, jar: jar, extra: [])
    }

    func post(_ gate: GateProcess, _ path: String, jar: String?, form: [String: String]) throws -> Reply {
        try curl(gate, path, jar: jar, extra: form.sorted { $0.key < $1.key }.flatMap { ["--data-urlencode", "\($0.key)=\($0.value)"] })
    }

    func curl(_ gate: GateProcess, _ path: String, jar: String?, extra: [String]) throws -> Reply {
        var args = ["-sS", "-i", "--max-time", "20"] + extra
        if let jar { args += ["-b", jar] }
        let r = try run("curl", args + ["\(try base(gate))\(path)"])
        try #require(r.status == 0, "curl: \(r.stderr)")
        let parts = r.stdout.components(separatedBy: "\r\n\r\n")
        let status = Int(parts[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        return Reply(status: status, headers: parts[0], body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    func csrf(_ html: String) throws -> String {
        try #require(html.firstMatch(of: /name="csrf" value="([^"]+)"/).map { String($0.1) })
    }

    /// The issue's scenario in a real browser: an approver logs in on the provider's page, sees
    /// the held UPDATE arrive without reloading (statement, subject, time left), approves it with
    /// a reason, and the waiting psql proceeds; then one denied from its own link: psql gets 42501.
    @Test func anApproverApprovesAndDeniesInHeadlessChromium() throws {
        _ = try DatabaseEnvironment.load().psql(["-c", "UPDATE page19_items SET label = 'one' WHERE id = 1"])
        let gate = try startGate()
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        _ = try provider.token("dba@example.com", groups: ["dba"])
        let db = gate.database.database
        let psql = "psql -X -At -v VERBOSITY=verbose 'host=127.0.0.1 port=\(gate.port("db")) dbname=\(db) user=agent sslmode=disable'"
        let approved = try browse(gate, "dba@example.com", ["--start", psql + " -c \"SELECT label FROM page19_items WHERE id = 1\" -c \"UPDATE page19_items SET label = 'from the page' WHERE id = 1\"",
                                                            "--verdict", "approve", "--reason", "ticket 19"],
                                  environment: ["PGPASSWORD": agent])
        #expect((approved["login_page"] as? String)?.hasPrefix(provider.issuer) == true, "\(approved)")
        #expect(approved["after_login"] as? String == "/approvals")
        #expect(approved["appeared_without_reload"] as? Bool == true)
        #expect(approved["statement"] as? String == "UPDATE page19_items SET label = 'from the page' WHERE id = 1")
        #expect(approved["keywords"] as? [String] == ["UPDATE", "SET", "WHERE"])
        #expect(approved["subject"] as? String == "agent@example.com (ai-assistants)")
        #expect(approved["rule"] as? String == "page19 / updates-need-review")
        #expect(approved["requirement"] as? String == "1 of dba")
        #expect((approved["time_left"] as? String)?.contains(/^[45]m \d+s$/) == true, "\(approved["time_left"] ?? "")")
        // The session's earlier exchange, as recorded, beside the held one.
        #expect(approved["context"] as? String == "SELECT label FROM page19_items WHERE id = 1 allow (page19 / reads): SELECT 1", "\(approved["context"] ?? "")")
        #expect(approved["reason_label"] as? String == "Reason")
        let id = try #require(approved["approval"] as? String)
        #expect(approved["answer"] as? String == "You approved \(id).")
        #expect((approved["recent"] as? String)?.contains("\(id) approved dba@example.com ticket 19") == true, "\(approved["recent"] ?? "")")
        let command = try #require(approved["command"] as? [String: Any])
        #expect(command["status"] as? Int == 0, "\(command)")
        #expect((command["stdout"] as? String)?.hasSuffix("UPDATE 1\n") == true, "\(command)")
        #expect(try label(1) == "from the page")

        // Denied from the approval's own page (the link the NoticeResponse and webhooks give).
        let (client, out, err) = try gate.startPsql("db", token: agent, "UPDATE page19_items SET label = 'never' WHERE id = 2")
        let second = try pendingID(gate)
        let denied = try browse(gate, "dba@example.com", ["--path", "/approvals/\(second)", "--approval", second,
                                                          "--verdict", "deny", "--reason", "not in a freeze"])
        #expect(denied["after_login"] as? String == "/approvals/\(second)")
        #expect(denied["answer"] as? String == "You denied \(second).")
        client.waitUntilExit()
        _ = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(client.terminationStatus != 0)
        #expect(stderr.contains("approval \(second) was denied by dba@example.com: not in a freeze"), "\(stderr)")
        #expect(try label(2) == "two")
        #expect(gate.logText.contains("approval decided on the approvals page"))
        // No token, code or cookie in the gate's log.
        #expect(!gate.logText.contains(agent) && !gate.logText.contains("code="))
    }

    /// The requester sees their own request, has no form for it, and a forged decision is
    /// refused by the approvals service; someone outside the approver groups gets a clear 403.
    @Test func selfApprovalAndNonApproversAreRefusedInTheBrowser() throws {
        let gate = try startGate()
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants", "dba"])
        let (client, _, _) = try gate.startPsql("db", token: agent, "UPDATE page19_items SET label = 'mine' WHERE id = 2")
        defer { if client.isRunning { client.terminate() } }
        let id = try pendingID(gate)
        let own = try browse(gate, "agent@example.com", ["--path", "/approvals/\(id)", "--approval", id])
        #expect(own["has_form"] as? Bool == false)
        #expect(own["note"] as? String == "Your own request: another approver must decide.")
        // Forged with the requester's own session and CSRF token: the service's rule refuses it.
        let jar = try curlLogin(gate, "agent@example.com", groups: ["ai-assistants", "dba"])
        let page = try get(gate, "/approvals/\(id)", jar: jar)
        let forged = try post(gate, "/approvals/\(id)/decision", jar: jar, form: ["csrf": try csrf(page.body), "verdict": "approve", "reason": "mine"])
        #expect(forged.status == 403)
        #expect(forged.body.contains("approval \(id): nobody may decide on their own request"), "\(forged.body)")

        _ = try provider.token("eve@example.com", groups: ["sales"])
        let outsider = try browse(gate, "eve@example.com", ["--path", "/approvals/\(id)"])
        #expect(outsider["title"] as? String == "Not an approver · Tollgate", "\(outsider)")
        let eve = try curlLogin(gate, "eve@example.com", groups: ["sales"])
        let refused = try get(gate, "/approvals/\(id)", jar: eve)
        #expect(refused.status == 403)
        #expect(refused.body.contains("eve@example.com is not an approver of \(id): it needs 1 of dba, and your groups are sales."), "\(refused.body)")
        let list = try get(gate, "/approvals", jar: eve)
        #expect(list.status == 200 && !list.body.contains(id))
        let tried = try post(gate, "/approvals/\(id)/decision", jar: eve, form: ["csrf": try csrf(list.body), "verdict": "approve", "reason": "sure"])
        #expect(tried.status == 403, "\(tried.body)")
        #expect(client.isRunning)
        #expect(try label(2) == "two")
    }

    /// What curl can check: logging in is required (a redirect to the provider, with PKCE, state
    /// and nonce), the cookie's attributes, the security headers, forms without or with a wrong
    /// CSRF token refused, a statement's markup escaped, logout ending the session.
    @Test func loginCSRFHeadersAndEscaping() throws {
        let gate = try startGate()
        defer { gate.stop() }
        let anonymous = try get(gate, "/approvals")
        #expect(anonymous.status == 302)
        #expect(anonymous.headers.contains("Location: /login?return=%2Fapprovals"), "\(anonymous.headers)")
        #expect(try get(gate, "/page/pending").status == 401)
        #expect(try post(gate, "/approvals/x/decision", jar: nil, form: ["verdict": "approve", "reason": "r"]).status == 401)
        // The return path cannot send anyone elsewhere (an open redirect).
        _ = try curlLogin(gate, "dba@example.com", groups: ["dba"], returnPath: "//evil.example/approvals")
        // A callback without its login (no state cookie) is refused.
        #expect(try get(gate, "/login/callback?code=abc&state=def").status == 400)

        _ = try DatabaseEnvironment.load().psql(["-c", "UPDATE page19_items SET label = 'three' WHERE id = 3"])
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let (client, _, _) = try gate.startPsql("db", token: agent, "UPDATE page19_items SET label = '<script>alert(1)</script>' WHERE id = 3")
        defer { if client.isRunning { client.terminate() } }
        let id = try pendingID(gate)
        let jar = try curlLogin(gate, "dba@example.com", groups: ["dba"])
        let cookies = try String(contentsOfFile: jar, encoding: .utf8)
        #expect(cookies.contains("#HttpOnly_127.0.0.1") && cookies.contains("tollgate_page"), "\(cookies)")
        let page = try get(gate, "/approvals", jar: jar)
        #expect(page.status == 200)
        for header in ["Content-Security-Policy: default-src 'none'; script-src 'self'", "frame-ancestors 'none'", "X-Frame-Options: DENY",
                       "Referrer-Policy: no-referrer", "Cache-Control: no-store"] {
            #expect(page.headers.contains(header), "\(header) missing: \(page.headers)")
        }
        #expect(!page.body.contains("<script>alert"), "the statement's markup reached the page")
        #expect(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!page.body.contains("<script>") && !page.body.contains("style="), "inline script or style on the page")
        #expect(page.body.contains("<noscript><meta http-equiv=\"refresh\""))
        let token = try csrf(page.body)

        // Forms without the session's CSRF token, or with another one: refused, nothing decided.
        let missing = try post(gate, "/approvals/\(id)/decision", jar: jar, form: ["verdict": "approve", "reason": "r"])
        #expect(missing.status == 403 && missing.body.contains("CSRF token is missing or does not match"), "\(missing.body)")
        let wrong = try post(gate, "/approvals/\(id)/decision", jar: jar, form: ["csrf": String(token.reversed()), "verdict": "approve", "reason": "r"])
        #expect(wrong.status == 403)
        #expect(client.isRunning)
        // A reason is required, as in the API.
        let noReason = try post(gate, "/approvals/\(id)/decision", jar: jar, form: ["csrf": token, "verdict": "approve", "reason": " "])
        #expect(noReason.status == 400, "\(noReason.body)")
        // The polling endpoint answers the list's markup, escaped the same way.
        let fragment = try get(gate, "/page/pending", jar: jar)
        #expect(fragment.status == 200 && fragment.body.contains("approval-\(id)") && !fragment.body.contains("<script>alert"))
        let denied = try post(gate, "/approvals/\(id)/decision", jar: jar, form: ["csrf": token, "verdict": "deny", "reason": "no markup in labels"])
        #expect(denied.status == 303, "\(denied.body)")
        client.waitUntilExit()
        #expect(try label(3) == "three")

        // Logout needs the token too, then ends the session server-side.
        #expect(try post(gate, "/logout", jar: jar, form: ["csrf": ""]).status == 403)
        #expect(try post(gate, "/logout", jar: jar, form: ["csrf": token]).status == 200)
        #expect(try get(gate, "/approvals", jar: jar).status == 302)
    }

    /// The login's configuration says what is wrong, with its line: a client id the verifier
    /// would refuse as an audience, a secret variable that is not set, a redirect elsewhere.
    @Test(arguments: [
        ("login: {client_id: another-app}", "client_id 'another-app' is not one of identity.audiences (tollgate)"),
        ("login: {client_id: tollgate, client_secret_env: PAGE19_UNSET_SECRET}", "environment variable PAGE19_UNSET_SECRET is not set"),
        ("login: {client_id: tollgate, client_secret: inline}", "inline client secrets are not allowed"),
        ("login: {client_id: tollgate, redirect_url: 'https://elsewhere.example/cb'}", "invalid 'redirect_url'"),
        ("login: {}", "missing 'client_id'"),
    ])
    func theLoginConfigurationIsChecked(login: String, message: String) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("page19-check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("gate.yaml")
        try """
            proxy: {id: check, captures: captures, signing_key: signing.key}
            identity: {issuer: "http://127.0.0.1:9400", audiences: [tollgate]}
            targets:
              db: {protocol: postgres, listen: "127.0.0.1:6543", upstream: "127.0.0.1:5432", credentials: {user: u, password_env: PAGE19_DB_PASSWORD}}
            admin:
              listen: 127.0.0.1:9440
              groups: [tollgate-ops]
              \(login)
            """.write(to: config, atomically: true, encoding: .utf8)
        let r = try run(tool("capture-proxy").path, ["check", "--config", config.path], environment: ["PAGE19_DB_PASSWORD": "x"])
        #expect(r.status == 2, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("gate.yaml:8:") && r.stderr.contains(message), "\(r.stderr)")
        let fine = try run(tool("capture-proxy").path, ["check", "--config", config.path],
                           environment: ["PAGE19_DB_PASSWORD": "x", "PAGE19_UNSET_SECRET": "s"])
        if login.contains("PAGE19_UNSET_SECRET") { #expect(fine.status == 0, "\(fine.stderr)") }
    }
}
