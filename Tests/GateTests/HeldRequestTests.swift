import CaptureFormat
import Foundation
import TestSupport
import Testing

/// Held requests through the gate (issue 19, item 1): a statement a rule sends to review waits
/// in the session, the client told where, until an approver decides through the admin API (curl,
/// real provider tokens); then it runs, or the client gets 42501, and the capture tells the story.
@Suite("held requests through the gate", .serialized)
struct HeldRequestTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
        let db = try DatabaseEnvironment.load()
        let setup = try db.psql(["-c", "CREATE TABLE IF NOT EXISTS holds19_items (id int PRIMARY KEY, label text)",
                                 "-c", "INSERT INTO holds19_items VALUES (1, 'one'), (2, 'two') ON CONFLICT (id) DO NOTHING",
                                 "-c", "GRANT ALL ON holds19_items TO tollgate_gate"])
        try #require(setup.status == 0, "\(setup.stderr)")
    }

    static func policy(timeout: String = "5m", extra: String = "") -> String {
        """
        policies:
          - name: holds19
            who: {groups: [ai-assistants]}
            target: db
            rules:
              - {name: reads, when: {statement: [select]}, then: allow}
              - {name: transactions, when: {statement: [begin, commit, rollback]}, then: allow}
              - name: updates-need-review
                when: {statement: [update]}
                then: review
                approvers: [dba]
                timeout: \(timeout)
                \(extra)

        """
    }

    func label(_ id: Int) throws -> String {
        let db = try DatabaseEnvironment.load()
        return try db.psql(["-At", "-c", "SELECT label FROM holds19_items WHERE id = \(id)"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// One admin API call with curl; the status and the JSON body.
    func admin(_ gate: GateProcess, _ method: String, _ path: String, token: String, body: String? = nil) throws -> (Int, [String: Any]) {
        let port = try #require(gate.adminPort)
        var args = ["-sS", "-X", method, "--max-time", "20", "-o", "/dev/stdout", "-w", "\n%{http_code}", "-H", "Authorization: Bearer \(token)"]
        if let body { args += ["-H", "Content-Type: application/json", "--data-binary", body] }
        args.append("http://127.0.0.1:\(port)\(path)")
        let r = try run("curl", args)
        try #require(r.status == 0, "curl: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        let json = (try? JSONSerialization.jsonObject(with: Data(lines.dropLast().joined(separator: "\n").utf8))) as? [String: Any]
        return (status, json ?? [:])
    }

    /// The id of the one pending approval, once the gate registered it.
    func pendingID(_ gate: GateProcess, token: String) throws -> String {
        var id: String?
        try waitUntil("a pending approval", timeout: .seconds(30)) {
            let list = (try? admin(gate, "GET", "/v1/approvals?state=pending", token: token))?.1["approvals"] as? [[String: Any]]
            id = list?.first?["id"] as? String
            return id != nil
        }
        return try #require(id)
    }

    /// A background psql's output once it has exited.
    func finished(_ client: Process, _ out: Pipe, _ err: Pipe) -> (stdout: String, stderr: String) {
        client.waitUntilExit()
        return (String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    func startGate(timeout: String = "5m", extra: String = "", target: String = scramTarget) throws -> GateProcess {
        try GateProcess(provider: provider, targets: ["db": target], policies: Self.policy(timeout: timeout, extra: extra),
                        admin: "groups: [tollgate-ops]")
    }

    @Test func anApprovedUpdateRunsAndTheCaptureTellsTheStory() throws {
        _ = try DatabaseEnvironment.load().psql(["-c", "UPDATE holds19_items SET label = 'one' WHERE id = 1"])
        let gate = try startGate()
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let (client, out, err) = try gate.startPsql("db", token: agent, "UPDATE holds19_items SET label = 'approved' WHERE id = 1")
        let id = try pendingID(gate, token: dba)
        #expect(client.isRunning, "psql did not wait")
        #expect(try label(1) == "one", "the held update reached PostgreSQL before approval")
        // The requester may not approve their own request, nor may someone outside the approvers.
        let selfApproval = try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: try provider.token("agent@example.com", groups: ["ai-assistants", "dba"]),
                                     body: #"{"reason": "mine"}"#)
        #expect(selfApproval.0 == 403)
        let outsider = try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: try provider.token("eve@example.com", groups: ["sales"]),
                                 body: #"{"reason": "sure"}"#)
        #expect(outsider.0 == 403)
        #expect(client.isRunning)
        let approved = try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: dba, body: #"{"reason": "ticket 42"}"#)
        #expect(approved.0 == 200, "\(approved.1)")
        client.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(client.terminationStatus == 0, "\(stderr)")
        #expect(stdout.contains("UPDATE 1"), "\(stdout)")
        // The notice named the approval, the rule and how to approve.
        #expect(stderr.contains("approval \(id) required by policy \"holds19\" rule \"updates-need-review\""), "\(stderr)")
        #expect(stderr.contains("capture-proxy approvals approve \(id)"), "\(stderr)")
        #expect(try label(1) == "approved")
        #expect(gate.stop() == 0)
        let events = try allEvents(try #require(try gate.captures().first)).map(\.payload)
        let story = events.compactMap { payload -> String? in
            switch payload {
            case .request: "request"
            case .decision(let d): "decision \(d.action)"
            case .approval(let a): "approval \(a.state) \(a.by) \(a.reason)"
            case .response: "response"
            default: nil
            }
        }
        #expect(story == ["request", "decision review", "approval requested  ", "approval granted dba@example.com ticket 42", "response"], "\(story)")
    }

    @Test func aDeniedUpdateIsRefusedWithTheApproversReason() throws {
        let gate = try startGate()
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let (client, _, err) = try gate.startPsql("db", token: agent, "UPDATE holds19_items SET label = 'denied' WHERE id = 2")
        let id = try pendingID(gate, token: dba)
        #expect(try admin(gate, "POST", "/v1/approvals/\(id)/deny", token: dba, body: #"{"reason": "not today"}"#).0 == 200)
        client.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(client.terminationStatus != 0)
        #expect(stderr.contains("approval \(id) was denied by dba@example.com: not today"), "\(stderr)")
        #expect(try label(2) == "two")
        // Decided: a second decision is a conflict.
        #expect(try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: dba, body: #"{"reason": "changed my mind"}"#).0 == 409)
    }

    @Test func anUnansweredRequestTimesOut() throws {
        let gate = try startGate(timeout: "2s")
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let r = try gate.psql("db", token: agent, ["-c", "UPDATE holds19_items SET label = 'late' WHERE id = 2"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("was not approved in time"), "\(r.stderr)")
        #expect(try label(2) == "two")
    }

    /// psycopg's pipeline: a held UPDATE between two SELECTs; what follows it waits, in order, and
    /// after a denial the rest of the batch is skipped to Sync as PostgreSQL does after an error.
    @Test func aPipelinedBatchWaitsBehindTheHeldStatement() throws {
        let gate = try startGate()
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let script = """
            import psycopg
            conn = psycopg.connect('', autocommit=True)
            with conn.pipeline() as p:
                a = conn.execute('SELECT label FROM holds19_items WHERE id = %s', (1,))
                u = conn.execute('UPDATE holds19_items SET label = %s WHERE id = %s', ('piped', 2))
                b = conn.execute('SELECT label FROM holds19_items WHERE id = %s', (2,))
            print('first', a.fetchone()[0]); print('updated', u.rowcount); print('after', b.fetchone()[0])
            """
        let (client, out, err) = try gate.startClient("db", token: agent, ["python3", "-c", script])
        let id = try pendingID(gate, token: dba)
        #expect(client.isRunning)
        #expect(try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: dba, body: #"{"reason": "batch ok"}"#).0 == 200)
        let (stdout, stderr) = finished(client, out, err)
        #expect(client.terminationStatus == 0, "\(stderr)")
        // The SELECT after the UPDATE ran after it (it sees the change).
        #expect(stdout.contains("updated 1") && stdout.contains("after piped"), "\(stdout)\(stderr)")
        _ = try DatabaseEnvironment.load().psql(["-c", "UPDATE holds19_items SET label = 'two' WHERE id = 2"])
    }

    /// A client that goes away while its request waits withdraws it; the capture records it.
    @Test func aDisconnectWithdrawsTheRequest() throws {
        let gate = try startGate()
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let (client, _, _) = try gate.startPsql("db", token: agent, "UPDATE holds19_items SET label = 'gone' WHERE id = 2")
        let id = try pendingID(gate, token: dba)
        kill(client.processIdentifier, SIGKILL)
        client.waitUntilExit()
        try waitUntil("the approval withdrawn", timeout: .seconds(30)) {
            (try? admin(gate, "GET", "/v1/approvals/\(id)", token: dba))?.1["state"] as? String == "withdrawn"
        }
        #expect(try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: dba, body: #"{"reason": "late"}"#).0 == 409)
        #expect(try label(2) == "two")
        #expect(gate.stop() == 0)
        let approvals = try allEvents(try #require(try gate.captures().first)).compactMap { event -> Approval? in
            if case .approval(let a) = event.payload { return a } else { return nil }
        }
        #expect(approvals.last?.state == .withdrawn && approvals.last?.reason.contains("withdrawn") == true, "\(approvals)")
    }

    /// psycopg's cancel (a CancelRequest on a new connection), sent once the gate's notice says
    /// the request is held, withdraws it: the client gets 42501 and it can no longer be approved.
    @Test func aCancelWithdrawsTheRequest() throws {
        let gate = try startGate()
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let script = """
            import psycopg, threading
            conn = psycopg.connect('', autocommit=True)
            conn.add_notice_handler(lambda d: threading.Thread(target=conn.cancel).start() if 'waiting for a decision' in d.message_primary else None)
            try:
                conn.execute("UPDATE holds19_items SET label = 'cancelled' WHERE id = 2")
                print('ran')
            except psycopg.Error as e:
                print('refused', e.sqlstate, e.diag.message_primary)
            """
        let r = try run("python3", ["-c", script], environment: gate.libpqEnvironment("db", token: agent), timeout: .seconds(60))
        #expect(r.stdout.contains("refused 42501") && r.stdout.contains("withdrawn: cancelled by the client"), "\(r.stdout)\(r.stderr)")
        let list = try #require(try admin(gate, "GET", "/v1/approvals?state=all", token: dba).1["approvals"] as? [[String: Any]])
        let id = try #require(list.first?["id"] as? String)
        try waitUntil("the approval withdrawn", timeout: .seconds(30)) {
            (try? admin(gate, "GET", "/v1/approvals/\(id)", token: dba))?.1["state"] as? String == "withdrawn"
        }
        #expect(try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: dba, body: #"{"reason": "late"}"#).0 == 409)
        #expect(try label(2) == "two")
    }

    /// psql's own Ctrl-C (SIGINT: psql sends a CancelRequest on a new connection) while its
    /// UPDATE is held withdraws it: psql reports the 42501 and exits, nothing ran.
    @Test func psqlsControlCWithdrawsTheRequest() throws {
        let gate = try startGate()
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        // The test process's threads block SIGINT and a spawned child inherits the mask: psql is
        // started with it cleared, as it would be from a shell.
        let (client, out, err) = try gate.startClient("db", token: agent, [
            "python3", "-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execvp('psql', sys.argv[1:])",
            "psql", "-X", "-At", "-c", "UPDATE holds19_items SET label = 'interrupted' WHERE id = 2"])
        let id = try pendingID(gate, token: dba)
        #expect(client.isRunning)
        kill(client.processIdentifier, SIGINT)
        let (stdout, stderr) = finished(client, out, err)
        #expect(client.terminationStatus != 0, "\(stdout)")
        #expect(stderr.contains("Cancel request sent") && stderr.contains("withdrawn: cancelled by the client"), "\(stderr)")
        try waitUntil("the approval withdrawn", timeout: .seconds(30)) {
            (try? admin(gate, "GET", "/v1/approvals/\(id)", token: dba))?.1["state"] as? String == "withdrawn"
        }
        #expect(try label(2) == "two")
    }

    /// A session waiting for an approver is not idle: the target's 1s idle timeout does not end
    /// it, and the approval, given later, still runs the statement.
    @Test func aHeldSessionOutlivesTheIdleTimeout() throws {
        let gate = try startGate(target: scramTarget + "\nlimits:\n  idle_timeout: 1s")
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let (client, out, err) = try gate.startPsql("db", token: agent, "UPDATE holds19_items SET label = 'late but fine' WHERE id = 2")
        let id = try pendingID(gate, token: dba)
        // Well past the idle timeout (1s): an idle session would have been ended by now.
        usleep(2_500_000)
        #expect(client.isRunning, "the held session was ended")
        #expect(try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: dba, body: #"{"reason": "ok"}"#).0 == 200)
        let (stdout, stderr) = finished(client, out, err)
        #expect(client.terminationStatus == 0 && stdout.contains("UPDATE 1"), "\(stdout)\(stderr)")
        #expect(try label(2) == "late but fine")
        _ = try DatabaseEnvironment.load().psql(["-c", "UPDATE holds19_items SET label = 'two' WHERE id = 2"])
    }

    /// A rule that needs two approvers: the first approval changes nothing for the client.
    @Test func aTwoApproverRuleWaitsForTheSecond() throws {
        let gate = try startGate(extra: "approvals: 2")
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let dba2 = try provider.token("dba2@example.com", groups: ["dba"])
        let (client, out, err) = try gate.startPsql("db", token: agent, "UPDATE holds19_items SET label = 'twice' WHERE id = 2")
        let id = try pendingID(gate, token: dba)
        #expect(try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: dba, body: #"{"reason": "first"}"#).0 == 200)
        #expect(try admin(gate, "GET", "/v1/approvals/\(id)", token: dba).1["state"] as? String == "pending")
        #expect(client.isRunning, "ran on one approval of two")
        #expect(try label(2) == "two")
        #expect(try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: dba2, body: #"{"reason": "second"}"#).0 == 200)
        let (stdout, stderr) = finished(client, out, err)
        #expect(client.terminationStatus == 0 && stdout.contains("UPDATE 1"), "\(stdout)\(stderr)")
        #expect(try label(2) == "twice")
        _ = try DatabaseEnvironment.load().psql(["-c", "UPDATE holds19_items SET label = 'two' WHERE id = 2"])
    }

    /// `grant: 30m`: once approved, the same statement runs again at once; revoked, it is held again.
    @Test func aGrantLetsTheSameStatementRunUntilRevoked() throws {
        let gate = try startGate(extra: "grant: 30m")
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let sql = "UPDATE holds19_items SET label = label WHERE id = 1"
        let (client, _, _) = try gate.startPsql("db", token: agent, sql)
        let id = try pendingID(gate, token: dba)
        #expect(try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: dba, body: #"{"reason": "for the afternoon"}"#).0 == 200)
        client.waitUntilExit()
        #expect(client.terminationStatus == 0)
        // Not held: psql completes with no approver acting.
        let again = try gate.psql("db", token: agent, ["-c", sql])
        #expect(again.status == 0 && again.stdout.contains("UPDATE 1"), "\(again.stderr)")
        let grants = try #require(try admin(gate, "GET", "/v1/grants", token: dba).1["grants"] as? [[String: Any]])
        let grant = try #require(grants.first?["id"] as? String, "\(grants)")
        #expect(try admin(gate, "POST", "/v1/grants/\(grant)/revoke", token: dba, body: #"{"reason": "done"}"#).0 == 200)
        let (third, _, thirdErr) = try gate.startPsql("db", token: agent, sql)
        let held = try pendingID(gate, token: dba)
        #expect(held != id)
        #expect(try admin(gate, "POST", "/v1/approvals/\(held)/deny", token: dba, body: #"{"reason": "grant revoked"}"#).0 == 200)
        third.waitUntilExit()
        #expect(third.terminationStatus != 0)
        #expect(String(decoding: thirdErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("was denied"))
    }

    /// Inside an explicit transaction: the held UPDATE waits, approved it runs in the transaction,
    /// and the COMMIT that waited behind it commits it.
    @Test func aHeldStatementInsideATransaction() throws {
        let gate = try startGate()
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let (client, out, err) = try gate.startClient("db", token: agent, [
            "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", "BEGIN", "-c", "UPDATE holds19_items SET label = 'in a transaction' WHERE id = 2",
            "-c", "SELECT label FROM holds19_items WHERE id = 2", "-c", "COMMIT"])
        let id = try pendingID(gate, token: dba)
        #expect(try label(2) == "two")
        #expect(try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: dba, body: #"{"reason": "in the tx"}"#).0 == 200)
        let (stdout, stderr) = finished(client, out, err)
        #expect(client.terminationStatus == 0, "\(stderr)")
        #expect(stdout.contains("in a transaction") && stdout.contains("COMMIT"), "\(stdout)")
        #expect(try label(2) == "in a transaction")
        _ = try DatabaseEnvironment.load().psql(["-c", "UPDATE holds19_items SET label = 'two' WHERE id = 2"])
    }

    /// No event loop blocks: on a one-thread gate, while one session's request is held, another
    /// session logs in and its queries complete (then the held one is approved and runs).
    @Test func aHeldSessionBlocksNoOtherSessionOnAOneThreadGate() throws {
        let gate = try GateProcess(provider: provider, targets: ["db": scramTarget], proxySettings: "threads: 1",
                                   policies: Self.policy(), admin: "groups: [tollgate-ops]")
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let (client, _, _) = try gate.startPsql("db", token: agent, "UPDATE holds19_items SET label = 'one' WHERE id = 1")
        let id = try pendingID(gate, token: dba)
        for _ in 0..<3 {
            let other = try gate.psql("db", token: agent, ["-c", "SELECT label FROM holds19_items WHERE id = 2"])
            #expect(other.status == 0 && other.stdout.contains("two"), "\(other.stderr)")
        }
        #expect(client.isRunning, "the held request did not wait: the check says nothing")
        #expect(try admin(gate, "GET", "/v1/approvals/\(id)", token: dba).1["state"] as? String == "pending")
        #expect(try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: dba, body: #"{"reason": "ok"}"#).0 == 200)
        client.waitUntilExit()
        #expect(client.terminationStatus == 0)
    }

    /// A restart after a crash (SIGKILL: a graceful stop ends the session, which withdraws its
    /// request): a request pending when the gate died is abandoned; a live grant still lets
    /// its statement run on the next gate (the state store outlives the process).
    @Test func aRestartAbandonsPendingRequestsAndKeepsGrants() throws {
        let scratch = try ScratchDirectory("holds19-restart")
        defer { scratch.remove() }
        let policies = "approvals:\n  store: \(scratch.path("approvals.sqlite"))\n" + Self.policy(extra: "grant: 30m")
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let granted = "UPDATE holds19_items SET label = label WHERE id = 2"
        let first = try GateProcess(provider: provider, targets: ["db": scramTarget], policies: policies, admin: "groups: [tollgate-ops]")
        let (approved, _, _) = try first.startPsql("db", token: agent, granted)
        let grantedID = try pendingID(first, token: dba)
        #expect(try admin(first, "POST", "/v1/approvals/\(grantedID)/approve", token: dba, body: #"{"reason": "for today"}"#).0 == 200)
        approved.waitUntilExit()
        #expect(approved.terminationStatus == 0)
        let (waiting, _, _) = try first.startPsql("db", token: agent, "UPDATE holds19_items SET label = 'never' WHERE id = 1")
        let pending = try pendingID(first, token: dba)
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()
        waiting.waitUntilExit()
        #expect(waiting.terminationStatus != 0)

        let second = try GateProcess(provider: provider, targets: ["db": scramTarget], policies: policies, admin: "groups: [tollgate-ops]")
        defer { second.stop() }
        #expect(try admin(second, "GET", "/v1/approvals/\(pending)", token: dba).1["state"] as? String == "abandoned")
        #expect(try admin(second, "POST", "/v1/approvals/\(pending)/approve", token: dba, body: #"{"reason": "late"}"#).0 == 409)
        let again = try second.psql("db", token: agent, ["-c", granted])
        #expect(again.status == 0 && again.stdout.contains("UPDATE 1"), "\(again.stderr)")
        #expect(try label(1) != "never")
    }
}
