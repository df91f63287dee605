import CaptureFormat
import Foundation
import TestSupport
import Testing

/// `capture-proxy approvals …` and `grants …` (issue 19, item 5): the built binary as an approver
/// runs it, with tokens from the real OIDC provider, against a real gate holding a real psql's
/// statement; the row in PostgreSQL and the capture say what happened.
@Suite("approvals CLI", .serialized)
struct ApprovalsCLITests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
        let db = try DatabaseEnvironment.load()
        let setup = try db.psql(["-c", "CREATE TABLE IF NOT EXISTS cli19_items (id int PRIMARY KEY, label text)",
                                 "-c", "INSERT INTO cli19_items VALUES (1, 'one'), (2, 'two') ON CONFLICT (id) DO NOTHING",
                                 "-c", "UPDATE cli19_items SET label = CASE id WHEN 1 THEN 'one' ELSE 'two' END",
                                 "-c", "GRANT ALL ON cli19_items TO tollgate_gate"])
        try #require(setup.status == 0, "\(setup.stderr)")
    }

    static func policy(extra: String = "") -> String {
        """
        policies:
          - name: cli19
            who: {groups: [ai-assistants]}
            target: db
            rules:
              - {name: reads, when: {statement: [select]}, then: allow}
              - name: updates-need-review
                when: {statement: [update]}
                then: review
                approvers: [dba]
                \(extra)

        """
    }

    func startGate(extra: String = "", admin: String = "groups: [tollgate-ops]") throws -> GateProcess {
        try GateProcess(provider: provider, targets: ["db": scramTarget], policies: Self.policy(extra: extra), admin: admin)
    }

    func label(_ id: Int) throws -> String {
        try DatabaseEnvironment.load().psql(["-At", "-c", "SELECT label FROM cli19_items WHERE id = \(id)"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The built `capture-proxy` with `arguments`, the token in TOLLGATE_TOKEN (empty: none), the
    /// admin API given with `--admin` unless `where` says otherwise.
    func cli(_ gate: GateProcess?, _ arguments: [String], token: String?, where location: [String]? = nil) throws -> Output {
        var args = arguments
        if let location { args += location } else if let gate { args += ["--admin", "http://127.0.0.1:\(try #require(gate.adminPort))"] }
        return try run(tool("capture-proxy").path, args, environment: ["TOLLGATE_TOKEN": token ?? "", "TOLLGATE_ADMIN_URL": "", "NO_COLOR": "1"],
                       timeout: .seconds(60))
    }

    func json(_ text: String) -> [String: Any] {
        ((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]) ?? [:]
    }

    /// The one pending approval's id, as `approvals list --json` gives it once the gate holds the request.
    func pendingID(_ gate: GateProcess, token: String) throws -> String {
        var id: String?
        try waitUntil("the CLI to list a pending approval", timeout: .seconds(30)) {
            guard let r = try? cli(gate, ["approvals", "list", "--json"], token: token), r.status == 0 else { return false }
            id = (json(r.stdout)["approvals"] as? [[String: Any]])?.first?["id"] as? String
            return id != nil
        }
        return try #require(id)
    }

    @Test func anUpdateApprovedFromTheCLIRunsAndTheCaptureTellsTheStory() throws {
        let gate = try startGate()
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        // Nothing pending yet: grep's "none found".
        let empty = try cli(gate, ["approvals", "list"], token: dba)
        #expect(empty.status == 1 && empty.stdout.isEmpty && empty.stderr.contains("no pending approvals"), "\(empty)")

        let (client, out, err) = try gate.startPsql("db", token: agent, "UPDATE cli19_items SET label = 'approved' WHERE id = 1")
        let id = try pendingID(gate, token: dba)
        #expect(client.isRunning, "psql did not wait")
        #expect(try label(1) == "one", "the held update reached PostgreSQL before approval")

        let table = try cli(gate, ["approvals", "list"], token: dba)
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.hasPrefix("ID") && table.stdout.contains(id) && table.stdout.contains("pending")
                && table.stdout.contains("agent@example.com") && table.stdout.contains("UPDATE cli19_items"), "\(table.stdout)")
        let shown = try cli(gate, ["approvals", "show", id], token: dba)
        #expect(shown.status == 0, "\(shown.stderr)")
        for part in ["approval \(id)  pending", "UPDATE cli19_items SET label = 'approved' WHERE id = 1", "agent@example.com (ai-assistants)",
                     "rule \"updates-need-review\"", "approvers    dba", " left)", "none yet"] {
            #expect(shown.stdout.contains(part), "\(part) not in\n\(shown.stdout)")
        }

        // The requester, even in the approvers' group, and someone outside it: 403, said as the API says it.
        let selfApproval = try cli(gate, ["approvals", "approve", id, "--reason", "mine"],
                                   token: try provider.token("agent@example.com", groups: ["ai-assistants", "dba"]))
        #expect(selfApproval.status == 2 && selfApproval.stderr.contains("approve \(id): 403 approval \(id): nobody may decide on their own request"),
                "\(selfApproval)")
        let outsider = try cli(gate, ["approvals", "approve", id, "--reason", "sure"], token: try provider.token("eve@example.com", groups: ["sales"]))
        #expect(outsider.status == 2 && outsider.stderr.contains("approve \(id): 403") && outsider.stderr.contains("only members of dba"), "\(outsider)")
        #expect(client.isRunning)

        // The approver's token from a file (with the newline an editor leaves), none in the environment.
        let scratch = try ScratchDirectory("cli19-token")
        defer { scratch.remove() }
        let tokenFile = scratch.path("dba.token")
        try (dba + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let approved = try cli(gate, ["approvals", "approve", id, "--reason", "ticket 42", "--token-file", tokenFile], token: nil)
        #expect(approved.status == 0, "\(approved)")
        #expect(approved.stdout.contains("approved: approval \(id) is now approved"), "\(approved.stdout)")
        #expect(approved.stdout.contains("approved by dba@example.com (dba)") && approved.stdout.contains("ticket 42"), "\(approved.stdout)")
        client.waitUntilExit()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(client.terminationStatus == 0 && stdout.contains("UPDATE 1"), "\(stdout)\(stderr)")
        #expect(try label(1) == "approved")

        // Decided: another approver's approve is a conflict (409), with the API's words.
        let twice = try cli(gate, ["approvals", "approve", id, "--reason", "me too"], token: try provider.token("dba2@example.com", groups: ["dba"]))
        #expect(twice.status == 2 && twice.stderr.contains("approve \(id): 409 approval \(id) is approved, no longer pending"), "\(twice)")
        // No token in anything the CLI printed.
        for r in [table, shown, approved, twice] { #expect(!r.stdout.contains(dba) && !r.stderr.contains(dba)) }

        #expect(gate.stop() == 0)
        let story = try allEvents(try #require(try gate.captures().first)).map(\.payload).compactMap { payload -> String? in
            switch payload {
            case .request(.postgres(let r)): "request \(r.text)"
            case .request: "request"
            case .decision(let d): "decision \(d.action)"
            case .approval(let a): "approval \(a.state) \(a.by) \(a.reason)"
            case .response: "response"
            default: nil
            }
        }
        #expect(story == ["request UPDATE cli19_items SET label = 'approved' WHERE id = 1", "decision review", "approval requested  ",
                          "approval granted dba@example.com ticket 42", "response"], "\(story)")
        _ = try DatabaseEnvironment.load().psql(["-c", "UPDATE cli19_items SET label = 'one' WHERE id = 1"])
    }

    /// Denied through the CLI, with the admin API found from the gate's configuration: the client
    /// gets 42501 with the reason and the approver; unknown ids are 404s.
    @Test func aDenialFromTheCLIRefusesTheStatement() throws {
        let gate = try startGate()
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let (client, _, err) = try gate.startClient("db", token: agent, [
            "psql", "-X", "-At", "-v", "VERBOSITY=verbose", "-c", "UPDATE cli19_items SET label = 'denied' WHERE id = 2"])
        let id = try pendingID(gate, token: dba)
        let config = ["--config", gate.configPath.path]
        let denied = try cli(gate, ["approvals", "deny", id, "--reason", "not today"], token: dba, where: config)
        #expect(denied.status == 0 && denied.stdout.contains("denied: approval \(id) is now denied"), "\(denied)")
        client.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(client.terminationStatus != 0)
        #expect(stderr.contains("42501") && stderr.contains("approval \(id) was denied by dba@example.com: not today"), "\(stderr)")
        #expect(try label(2) == "two")

        let shown = try cli(gate, ["approvals", "show", id, "--json"], token: dba, where: config)
        let document = json(shown.stdout)
        #expect(shown.status == 0 && document["state"] as? String == "denied", "\(shown)")
        let decisions = document["decisions"] as? [[String: Any]]
        #expect(decisions?.first?["approver"] as? String == "dba@example.com" && decisions?.first?["reason"] as? String == "not today")
        let listed = try cli(gate, ["approvals", "list", "--state", "denied"], token: dba, where: config)
        #expect(listed.status == 0 && listed.stdout.contains(id) && listed.stdout.contains("denied"), "\(listed)")
        #expect(try cli(gate, ["approvals", "list"], token: dba, where: config).status == 1)

        let unknown = try cli(gate, ["approvals", "show", "no-such"], token: dba)
        #expect(unknown.status == 2 && unknown.stderr.contains("show no-such: 404 no approval no-such"), "\(unknown)")
        let unknownApprove = try cli(gate, ["approvals", "approve", "no-such", "--reason", "ok"], token: dba)
        #expect(unknownApprove.status == 2 && unknownApprove.stderr.contains("approve no-such: 404 no approval no-such"), "\(unknownApprove)")
    }

    /// `grant: 30m`: the approval opens a grant that `grants list` shows and `grants revoke` ends.
    @Test func grantsAreListedAndRevokedFromTheCLI() throws {
        let gate = try startGate(extra: "grant: 30m")
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        #expect(try cli(gate, ["grants", "list"], token: dba).status == 1)
        let sql = "UPDATE cli19_items SET label = label WHERE id = 1"
        let (client, _, _) = try gate.startPsql("db", token: agent, sql)
        let id = try pendingID(gate, token: dba)
        #expect(try cli(gate, ["approvals", "approve", id, "--reason", "for the afternoon"], token: dba).status == 0)
        client.waitUntilExit()
        #expect(client.terminationStatus == 0)

        let listed = try cli(gate, ["grants", "list", "--json"], token: dba)
        let grants = try #require(json(listed.stdout)["grants"] as? [[String: Any]], "\(listed)")
        #expect(listed.status == 0 && grants.count == 1)
        let grant = try #require(grants.first?["id"] as? String)
        #expect(grants.first?["subject"] as? String == "agent@example.com" && grants.first?["approval"] as? String == id)
        let table = try cli(gate, ["grants", "list"], token: dba)
        #expect(table.status == 0 && table.stdout.contains(grant) && table.stdout.contains("live") && table.stdout.contains("dba@example.com"), "\(table)")
        // The grant covers the statement: it runs without a hold.
        #expect(try gate.psql("db", token: agent, ["-c", sql]).status == 0)

        let revoked = try cli(gate, ["grants", "revoke", grant, "--reason", "done for today"], token: dba)
        #expect(revoked.status == 0 && revoked.stdout.contains("revoked: grant \(grant)") && revoked.stdout.contains("by dba@example.com: done for today"),
                "\(revoked)")
        #expect(try cli(gate, ["grants", "list"], token: dba).status == 1)
        let all = try cli(gate, ["grants", "list", "--all", "--json"], token: dba)
        #expect((json(all.stdout)["grants"] as? [[String: Any]])?.first?["revoked_by"] as? String == "dba@example.com", "\(all)")
        let again = try cli(gate, ["grants", "revoke", grant, "--reason", "again"], token: dba)
        #expect(again.status == 2 && again.stderr.contains("revoke \(grant): 409 grant \(grant) is already revoked or expired"), "\(again)")
        // Revoked: the statement is held again.
        let (third, _, _) = try gate.startPsql("db", token: agent, sql)
        let held = try pendingID(gate, token: dba)
        #expect(held != id)
        #expect(try cli(gate, ["approvals", "deny", held, "--reason", "grant revoked"], token: dba).status == 0)
        third.waitUntilExit()
        #expect(third.terminationStatus != 0)
    }

    /// A rule that needs two approvers: the first approval from the CLI says the request still
    /// waits, and psql goes on waiting until the second.
    @Test func aFirstOfTwoApprovalsSaysItStillWaits() throws {
        let gate = try startGate(extra: "approvals: 2")
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let (client, out, _) = try gate.startPsql("db", token: agent, "UPDATE cli19_items SET label = label WHERE id = 2")
        let id = try pendingID(gate, token: dba)
        let first = try cli(gate, ["approvals", "approve", id, "--reason", "first"], token: dba)
        #expect(first.status == 0 && first.stdout.contains("approved by you; still pending: the rule needs more approvers (2 of dba"), "\(first)")
        #expect(client.isRunning, "ran on one approval of two")
        let second = try cli(gate, ["approvals", "approve", id, "--reason", "second"], token: try provider.token("dba2@example.com", groups: ["dba"]))
        #expect(second.status == 0 && second.stdout.contains("is now approved"), "\(second)")
        client.waitUntilExit()
        #expect(client.terminationStatus == 0)
        #expect(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("UPDATE 1"))
    }

    /// What the CLI refuses before it calls anything, and what the API refuses: each exit 2 with
    /// a message that says what to do; a token is never taken from (nor printed from) an argument.
    @Test func missingOrMisplacedTokensAndLocationsAreClearErrors() throws {
        let gate = try startGate()
        defer { gate.stop() }
        let noToken = try cli(gate, ["approvals", "list"], token: nil)
        #expect(noToken.status == 2 && noToken.stderr.contains("no bearer token: set TOLLGATE_TOKEN") && noToken.stderr.contains("--token-file"),
                "\(noToken)")
        let secret = "eyJhbGciOiJSUzI1NiJ9.cli19-not-a-real-token.c2lnbmF0dXJl"
        let argument = try cli(gate, ["approvals", "list", "--token", secret], token: nil)
        #expect(argument.status == 2 && argument.stderr.contains("--token is not an option"), "\(argument)")
        #expect(!argument.stderr.contains(secret) && !argument.stdout.contains(secret))
        let nowhere = try cli(nil, ["grants", "list"], token: try provider.token("dba@example.com", groups: ["dba"]))
        #expect(nowhere.status == 2 && nowhere.stderr.contains("where is the admin API?"), "\(nowhere)")
        let invalid = try cli(gate, ["approvals", "list"], token: "not.a.token")
        #expect(invalid.status == 2 && invalid.stderr.contains("list approvals (pending): 401 invalid token"), "\(invalid)")
        let clear = try cli(nil, ["approvals", "list", "--admin", "http://gate.example.invalid:9440"], token: "not.a.token")
        #expect(clear.status == 2 && clear.stderr.contains("plain http to a host that is not loopback"), "\(clear)")
        // A listener that accepts and never answers: the call gives up after --timeout, and says so.
        let (silent, silentPort) = try boundLoopbackSocket()
        defer { close(silent) }
        try #require(listen(silent, 4) == 0)
        let hung = try cli(nil, ["approvals", "list", "--admin", "http://127.0.0.1:\(silentPort)", "--timeout", "1"], token: "not.a.token")
        #expect(hung.status == 2 && hung.stderr.contains("list approvals (pending): no answer from the admin API at http://127.0.0.1:\(silentPort) within 1s"),
                "\(hung)")
        let badState = try cli(gate, ["approvals", "list", "--state", "maybe"], token: "not.a.token")
        #expect(badState.status == 2 && badState.stderr.contains("unknown state 'maybe'"), "\(badState)")
    }

    /// An admin listener with TLS, found through the gate's configuration: verified against the
    /// private CA given with --ca-file, and refused without it (there is no way to skip verification).
    @Test func tlsIsVerifiedAgainstTheGivenCA() throws {
        let scratch = try ScratchDirectory("cli19-tls")
        defer { scratch.remove() }
        let files = try makeTestCertificates(in: scratch.dir, caName: "cli19 test CA")
        let gate = try startGate(admin: "groups: [tollgate-ops]\ntls: {certificate: \(files.cert), key: \(files.key)}")
        defer { gate.stop() }
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let verified = try cli(gate, ["approvals", "list"], token: dba, where: ["--config", gate.configPath.path, "--ca-file", files.ca])
        #expect(verified.status == 1 && verified.stderr.contains("no pending approvals"), "\(verified)")
        let untrusted = try cli(gate, ["approvals", "list"], token: dba, where: ["--config", gate.configPath.path])
        #expect(untrusted.status == 2 && untrusted.stderr.contains("cannot reach the admin API at https://127.0.0.1:")
                && untrusted.stderr.contains("TLS"), "\(untrusted)")
        let plain = try cli(gate, ["approvals", "list"], token: dba)
        #expect(plain.status == 2 && plain.stderr.contains("does its listener use TLS?"), "\(plain)")
    }
}
