import CaptureFormat
import Foundation
import TestSupport
import Testing

/// "Let the database back the policy up": a policy names its own upstream account, so a
/// read-only policy's sessions log in as a read-only role and PostgreSQL's grants refuse a write
/// the policy (here, on purpose, wrongly) allows.
@Suite("per-policy upstream credentials", .serialized)
struct PolicyCredentialsTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    static let policy = """
        policies:
          - name: read-only
            who: {groups: [ai-assistants]}
            target: demo
            credentials:
              user: tollgate_readonly
              password_env: TEST_DB_READONLY_PASSWORD
            rules:
              - {name: reads, when: {writes: false}, then: allow}
              - {name: mistaken, when: {statement: [delete]}, then: allow}
          - name: ops
            who: {groups: [ops]}
            target: demo
            rules:
              - {name: anything, then: allow}
          - name: writers
            who: {groups: [writers]}
            target: demo
            credentials:
              user: tollgate_gate
              password_env: TEST_DB_SCRAM_PASSWORD
            rules:
              - {name: anything, then: allow}

        """

    @Test func aReadOnlyPolicyLogsInAsTheReadOnlyRole() throws {
        let db = try DatabaseEnvironment.load()
        // scripts/pg-test-cluster makes the role; its password is a fixture of that script.
        let password = db.values["TOLLGATE_PG_READONLY_PASSWORD"] ?? "readonly-test-password"
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: Self.policy,
                                   environment: ["TEST_DB_READONLY_PASSWORD": password])
        let assistant = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let who = try gate.psql("demo", token: assistant, ["-c", "SELECT current_user"])
        #expect(who.status == 0 && who.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "tollgate_readonly", "\(who.stdout) \(who.stderr)")
        // The policy's mistaken rule lets the DELETE through the gate; the database refuses it.
        let before = try db.psql(["-At", "-c", "SELECT count(*) FROM analytics.events"]).stdout
        let delete = try gate.psql("demo", token: assistant, ["-c", "DELETE FROM analytics.events WHERE id = 1"])
        #expect(delete.status != 0)
        #expect(delete.stderr.contains("permission denied for table events") && !delete.stderr.contains("tollgate"), "\(delete.stderr)")
        #expect(try db.psql(["-At", "-c", "SELECT count(*) FROM analytics.events"]).stdout == before)

        // A policy that names no credentials: the target's account.
        let ops = try provider.token("ops@example.com", groups: ["ops"])
        let opsWho = try gate.psql("demo", token: ops, ["-c", "SELECT current_user"])
        #expect(opsWho.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "tollgate_gate", "\(opsWho.stdout) \(opsWho.stderr)")
        // Two policies (ops names none) and one account named: that one.
        let both = try provider.token("both@example.com", groups: ["ai-assistants", "ops"])
        let bothWho = try gate.psql("demo", token: both, ["-c", "SELECT current_user"])
        #expect(bothWho.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "tollgate_readonly", "\(bothWho.stdout) \(bothWho.stderr)")

        // Policies naming different accounts for one identity: refused, and said why.
        let conflicted = try provider.token("mixed@example.com", groups: ["ai-assistants", "writers"])
        let refused = try gate.psql("demo", token: conflicted, ["-c", "SELECT current_user"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("FATAL") && refused.stderr.contains("name different database accounts")
                && refused.stderr.contains("tollgate_readonly") && refused.stderr.contains("tollgate_gate"), "\(refused.stderr)")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([assistant, ops, both, conflicted])
        #expect(!(try gate.everythingWritten().contains(bytes: password)), "the read-only role's password reached a capture or the log")
        let reasons = try gate.captures().flatMap { try allEvents($0) }.compactMap { e -> String? in
            if case .sessionEnd(let end) = e.payload { return end.reason }
            return nil
        }
        #expect(reasons.contains("credentials-conflict"), "\(reasons)")
    }
}
