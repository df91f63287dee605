import CaptureFormat
import Foundation
import TestSupport
import Testing

/// Approval events leave the gate (issue 19, items 4 and 7): every change reaches the webhook
/// receivers (real HTTP receivers in Python, which check each signature with Python's own hmac)
/// and the approval metrics, never with a clear masked value, and a dead receiver never holds
/// up the data path. Part of the held-request suite: its table, its admin helper, one gate at a time.
extension HeldRequestTests {
    static let hookSecret = "events19-hook-secret"
    static let pageURL = "https://gate.example.com/tollgate"
    /// A clear SSN that the target's us_ssn mask must keep out of every delivery.
    static let clearSSN = "536-22-8417"

    static func peopleTable() throws {
        let setup = try DatabaseEnvironment.load().psql([
            "-c", "CREATE TABLE IF NOT EXISTS events19_people (id int PRIMARY KEY, ssn text)",
            "-c", "INSERT INTO events19_people VALUES (1, '000-00-0000'), (2, '000-00-0000') ON CONFLICT (id) DO NOTHING",
            "-c", "GRANT ALL ON events19_people TO tollgate_gate"])
        try #require(setup.status == 0, "\(setup.stderr)")
    }

    /// A gate whose target masks SSNs, writes held for `dba` (with a 30-minute grant), and these receivers.
    func startGate(hooks: [(name: String, port: Int, body: String)]) throws -> GateProcess {
        var yaml = Self.policy(extra: "grant: 30m") + "webhooks:\n"
        for hook in hooks {
            yaml += "  \(hook.name):\n    url: http://127.0.0.1:\(hook.port)/hook\n    secret_env: EVENTS19_HOOK_KEY\n"
            yaml += hook.body.split(separator: "\n").map { "    \($0)\n" }.joined()
        }
        yaml += "approvals:\n  page_url: \(Self.pageURL)\n"
        return try GateProcess(provider: provider, targets: ["db": scramTarget + "\nmasks:\n  - us_ssn"], policies: yaml,
                               environment: ["EVENTS19_HOOK_KEY": Self.hookSecret], admin: "groups: [tollgate-ops]")
    }

    /// The gate's /metrics, as lines.
    func metricLines(_ gate: GateProcess) throws -> [String] {
        let r = try run("curl", ["-sS", "--max-time", "20", "http://127.0.0.1:\(try #require(gate.adminPort))/metrics"])
        try #require(r.status == 0, "curl: \(r.stderr)")
        return r.stdout.split(separator: "\n").map(String.init)
    }

    /// The value of the sample `name` whose labels include every one of `labels` (`target="db"`); nil if none.
    func metric(_ lines: [String], _ name: String, _ labels: [String]) -> Double? {
        lines.first { line in
            line.hasPrefix(name + "{") && labels.allSatisfy { line.contains($0) }
        }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// The keys of a JSON value, recursively ("data.grant.id"); an array by its first element.
    static func shape(_ value: Any, _ path: String = "") -> Set<String> {
        switch value {
        case let o as [String: Any]:
            return o.reduce(into: Set<String>()) { keys, kv in
                let p = path.isEmpty ? kv.key : path + "." + kv.key
                keys.insert(p)
                keys.formUnion(shape(kv.value, p))
            }
        case let a as [Any]:
            return a.first.map { shape($0, path + "[]") } ?? []
        default:
            return []
        }
    }

    /// docs/webhooks.md's example of an `approval.approved` delivery (the ```json block after its marker).
    static func documentedExample() throws -> [String: Any] {
        let doc = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/webhooks.md"), encoding: .utf8)
        let marker = try #require(doc.range(of: "<!-- example: approval.approved -->"), "docs/webhooks.md has no example marker")
        let rest = doc[marker.upperBound...]
        let open = try #require(rest.range(of: "```json\n"))
        let close = try #require(rest[open.upperBound...].range(of: "```"))
        return try #require(try JSONSerialization.jsonObject(with: Data(rest[open.upperBound..<close.lowerBound].utf8)) as? [String: Any])
    }

    /// A held UPDATE approved through the admin API, one denied, then the approved statement run
    /// again under its grant: each change reaches the JSON receiver signed, in order, with the
    /// payload's fields and the masked statement; the chat receiver gets the statement and the
    /// page's link; /metrics counts them with their waits; the capture has a distinct `reused` state.
    @Test func approvalEventsReachTheWebhooksAndTheMetrics() throws {
        try Self.peopleTable()
        let json = try WebhookReceiver(secret: Self.hookSecret, statuses: ["200"])
        let chat = try WebhookReceiver(secret: Self.hookSecret, statuses: ["200"])
        defer { json.stop(); chat.stop() }
        let gate = try startGate(hooks: [("events19-json", json.port, ""),
                                         ("events19-chat", chat.port, "format: slack\nevents: [approval.requested, approval.decided]")])
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])
        let approvedSQL = "UPDATE events19_people SET ssn = '\(Self.clearSSN)' WHERE id = 1"

        let (client, out, err) = try gate.startPsql("db", token: agent, approvedSQL)
        let approvedID = try pendingID(gate, token: dba)
        #expect(try json.waitForBlocking(1).first?["event"] as? String == "approval.requested", "requested before any decision")
        #expect(try admin(gate, "POST", "/v1/approvals/\(approvedID)/approve", token: dba, body: #"{"reason": "ticket 42"}"#).0 == 200)
        let (stdout, stderr) = finished(client, out, err)
        #expect(client.terminationStatus == 0 && stdout.contains("UPDATE 1"), "\(stdout)\(stderr)")

        let (denied, _, deniedErr) = try gate.startPsql("db", token: agent, "UPDATE events19_people SET ssn = '\(Self.clearSSN)', id = id WHERE id = 2")
        let deniedID = try pendingID(gate, token: dba)
        #expect(try admin(gate, "POST", "/v1/approvals/\(deniedID)/deny", token: dba, body: #"{"reason": "not today"}"#).0 == 200)
        denied.waitUntilExit()
        #expect(denied.terminationStatus != 0, "\(String(decoding: deniedErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")

        // The same statement again: the grant lets it run at once.
        let again = try gate.psql("db", token: agent, ["-c", approvedSQL])
        #expect(again.status == 0 && again.stdout.contains("UPDATE 1"), "\(again.stderr)")

        let got = try json.waitForBlocking(5)
        #expect(got.map { $0["event"] as? String } == ["approval.requested", "approval.approved", "approval.requested", "approval.denied",
                                                      "approval.grant_reused"], "\(got)")
        #expect(got.allSatisfy { $0["valid"] as? Bool == true }, "a signature did not verify")
        let bodies = got.compactMap { $0["body"] as? [String: Any] }
        let data = bodies.compactMap { $0["data"] as? [String: Any] }
        try #require(data.count == 5)
        #expect(bodies.allSatisfy { $0["gate"] as? String == "test-gate" })
        let requested = data[0], approved = data[1], refused = data[3], reused = data[4]
        #expect(requested["approval_id"] as? String == approvedID && requested["target"] as? String == "db")
        #expect(requested["subject"] as? String == "agent@example.com" && requested["policy"] as? String == "holds19")
        #expect(requested["rule"] as? String == "updates-need-review" && requested["approver_groups"] as? [String] == ["dba"])
        #expect(requested["url"] as? String == "\(Self.pageURL)/approvals/\(approvedID)")
        let requirement = try #require(requested["requirement"] as? [String: Any])
        #expect(requirement["timeout_seconds"] as? Double == 300 && requirement["grant_seconds"] as? Double == 1800, "\(requirement)")
        let statement = try #require(requested["statement"] as? String)
        #expect(statement.hasPrefix("UPDATE events19_people SET ssn = '") && statement.contains("***-**-****"), "\(statement)")
        #expect(approved["decided_by"] as? [String] == ["dba@example.com"] && approved["reason"] as? String == "ticket 42")
        #expect(approved["statement"] as? String == statement && approved["state"] as? String == "approved")
        let grant = try #require(approved["grant"] as? [String: Any])
        #expect(grant["granted_by"] as? [String] == ["dba@example.com"] && grant["expires_at"] is String)
        #expect(refused["approval_id"] as? String == deniedID && refused["decided_by"] as? [String] == ["dba@example.com"])
        #expect(refused["reason"] as? String == "not today")
        #expect((reused["grant"] as? [String: Any])?["id"] as? String == grant["id"] as? String)
        #expect(reused["decided_by"] as? [String] == ["dba@example.com"])

        // The chat receiver: its filter's events, each with the statement and the page's link.
        let chats = try chat.waitForBlocking(4)
        #expect(chats.map { $0["event"] as? String } == ["approval.requested", "approval.approved", "approval.requested", "approval.denied"])
        let texts = chats.compactMap { ($0["body"] as? [String: Any])?["text"] as? String }
        #expect(texts.count == 4 && texts.allSatisfy { $0.contains("UPDATE events19_people SET ssn = '***-**-****'") }, "\(texts)")
        #expect(texts[0].contains("<\(Self.pageURL)/approvals/\(approvedID)|Review it>"), "\(texts[0])")

        // Never the clear value, in any delivery.
        for line in json.rawLines + chat.rawLines {
            #expect(!line.contains(Self.clearSSN), "a delivery carries the clear SSN")
        }

        // docs/webhooks.md's example has the fields of the real delivery, no more, no fewer.
        let documented = Self.shape(try Self.documentedExample()), real = Self.shape(bodies[1])
        #expect(documented == real, "docs/webhooks.md's example differs from a real approval.approved delivery: \(documented.symmetricDifference(real).sorted())")

        // /metrics: the approvals by outcome, and their waits.
        let lines = try metricLines(gate)
        for (outcome, n) in [("requested", 2.0), ("approved", 1), ("denied", 1), ("reused_grant", 1)] {
            #expect(metric(lines, "tollgate_approvals_total", [#"target="db""#, #"outcome="\#(outcome)""#]) == n, "\(outcome): \(lines.filter { $0.contains("approval") })")
        }
        for outcome in ["approved", "denied"] {
            #expect(metric(lines, "tollgate_approval_wait_seconds_count", [#"target="db""#, #"outcome="\#(outcome)""#]) == 1)
            #expect(metric(lines, "tollgate_approval_wait_seconds_bucket", [#"target="db""#, #"outcome="\#(outcome)""#, #"le="+Inf""#]) == 1)
        }
        #expect(metric(lines, "tollgate_approval_wait_seconds_count", [#"outcome="reused_grant""#]) == nil, "a reused grant never waited")

        // The capture: the reused grant has its own state, naming the grant and its approver.
        #expect(gate.stop() == 0)
        let approvals = try gate.captures().flatMap { try allEvents($0) }.compactMap { e -> Approval? in
            if case .approval(let a) = e.payload { a } else { nil }
        }
        // One capture per session, in no set order: the outcomes, whichever file holds them.
        #expect(approvals.filter { $0.state == .requested }.count == 3, "\(approvals)")
        #expect(Set(approvals.map(\.state)) == [.requested, .granted, .denied, .reused], "\(approvals)")
        let reusedEvent = approvals.first { $0.state == .reused }
        #expect(reusedEvent?.grantID == grant["id"] as? String && reusedEvent?.by == "dba@example.com", "\(approvals)")
        _ = try DatabaseEnvironment.load().psql(["-c", "UPDATE events19_people SET ssn = '000-00-0000'"])
    }

    /// Receivers that never answer (a port that accepts and stays silent) or refuse (nothing
    /// listens) do not hold up the gate: while their deliveries are still in flight or waiting
    /// to be retried, held requests resolve and another session's queries all complete.
    @Test func aDeadReceiverDoesNotSlowTheGate() throws {
        try Self.peopleTable()
        let silent = try WebhookReceiver(secret: Self.hookSecret, statuses: ["hang"])
        defer { silent.stop() }
        let refusing = try freePort()
        let patient = "timeout: 120s\nattempts: 5\nretry_after: 60s"
        let gate = try startGate(hooks: [("events19-silent", silent.port, patient), ("events19-refused", refusing, patient)])
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let dba = try provider.token("dba@example.com", groups: ["dba"])

        // Two held requests (two shapes: the grant of the first does not cover the second), each
        // approved: both run although no delivery can complete.
        for sql in ["UPDATE events19_people SET ssn = ssn WHERE id = 1", "UPDATE events19_people SET ssn = ssn WHERE id = 2 AND true"] {
            let (client, out, err) = try gate.startPsql("db", token: agent, sql)
            let id = try pendingID(gate, token: dba)
            #expect(try admin(gate, "POST", "/v1/approvals/\(id)/approve", token: dba, body: #"{"reason": "go"}"#).0 == 200)
            let (stdout, stderr) = finished(client, out, err)
            #expect(client.terminationStatus == 0 && stdout.contains("UPDATE 1"), "\(stdout)\(stderr)")
        }
        // The silent receiver holds the first delivery (no answer); the rest wait behind it.
        #expect(try silent.waitForBlocking(1).count == 1)

        // Another session's queries, a few hundred of them, all answered meanwhile.
        let figures = try run("python3", ["-c", Self.latencyScript, "300"], environment: gate.libpqEnvironment("db", token: agent), timeout: .seconds(300))
        #expect(figures.status == 0 && figures.stdout.contains("queries=300"), "\(figures.stdout)\(figures.stderr)")
        print("events19 dead receivers: \(figures.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")

        // ...while no delivery has ended: the silent one still in flight, the refused one waiting for its retry.
        let lines = try metricLines(gate)
        #expect(silent.received.count == 1, "the silent receiver was asked again: its first delivery ended")
        for receiver in ["events19-silent", "events19-refused"] {
            for outcome in ["delivered", "failed"] {
                #expect((metric(lines, "tollgate_webhook_deliveries_total", [#"receiver="\#(receiver)""#, #"outcome="\#(outcome)""#]) ?? 0) == 0,
                        "\(receiver) \(outcome): \(lines.filter { $0.contains("webhook") })")
            }
        }
        #expect((metric(lines, "tollgate_webhook_attempts_total", [#"receiver="events19-refused""#]) ?? 0) >= 1, "\(lines.filter { $0.contains("webhook") })")
        #expect(metric(lines, "tollgate_approvals_total", [#"outcome="approved""#]) == 2)
    }

    /// The same queries through a gate with no receiver: the baseline for docs/benchmark-log.md.
    @Test func queryLatencyWithoutReceivers() throws {
        let gate = try startGate()
        defer { gate.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let figures = try run("python3", ["-c", Self.latencyScript, "300"], environment: gate.libpqEnvironment("db", token: agent), timeout: .seconds(300))
        #expect(figures.status == 0 && figures.stdout.contains("queries=300"), "\(figures.stdout)\(figures.stderr)")
        print("events19 no receiver: \(figures.stdout.trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    /// N queries on one connection through the gate; prints their count and latency figures (no assertion on them).
    static let latencyScript = #"""
        import sys, time, psycopg
        n = int(sys.argv[1])
        with psycopg.connect('', autocommit=True) as conn:
            times = []
            for i in range(n):
                t = time.perf_counter()
                assert conn.execute("SELECT id FROM holds19_items WHERE id = 1").fetchone()[0] == 1
                times.append((time.perf_counter() - t) * 1000)
        times.sort()
        print(f"queries={n} median_ms={times[n // 2]:.3f} p95_ms={times[int(n * 0.95)]:.3f} max_ms={times[-1]:.3f}")
        """#
}
