import Approvals
import Foundation
import Logging
import MetricsTestKit
import Policy
import ServiceLifecycle
import TestSupport
import Testing
@testable import Webhooks

/// Approval changes as webhook events (the payload docs/webhooks.md describes), and a dead
/// receiver at shutdown.
@Suite("approval webhook events", .serialized)
struct ApprovalWebhookEventTests {
    static let created = Date(timeIntervalSince1970: 1_796_500_000)

    static func record(_ state: ApprovalState = .pending) -> ApprovalRecord {
        ApprovalRecord(id: "ap-1", session: "s-1", exchange: 3, target: "orders-db", subject: "agent@example.com", subjectGroups: ["ai"],
                       statement: "UPDATE people SET ssn = '***-**-****' WHERE id = 1", fingerprint: "fp", policy: "p", rule: "writes",
                       requirement: ApprovalRequirement(clauses: [.init(groups: ["dba"], count: 1)], timeout: .seconds(300), grant: .seconds(1800)),
                       state: state, createdAt: created, deadline: created.addingTimeInterval(300))
    }

    static func data(_ event: WebhookEvent) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(event.data)) as? [String: Any])
    }

    @Test func aRequestCarriesTheStatementTheRuleAndTheLink() throws {
        let event = ApprovalWebhookEvent.make(ApprovalChange(kind: .requested, record: Self.record(), at: Self.created),
                                              pageURL: URL(string: "https://gate.example.com/ui"))
        #expect(event.type == "approval.requested" && event.link == "https://gate.example.com/ui/approvals/ap-1")
        let d = try Self.data(event)
        #expect(d["event"] as? String == "requested" && d["approval_id"] as? String == "ap-1" && d["state"] as? String == "pending")
        #expect(d["statement"] as? String == "UPDATE people SET ssn = '***-**-****' WHERE id = 1")
        #expect(d["approver_groups"] as? [String] == ["dba"] && d["exchange"] as? Int == 3 && d["session"] as? String == "s-1")
        #expect(d["requested_at"] as? String == "2026-12-05T19:46:40.000Z" && d["deadline"] as? String == "2026-12-05T19:51:40.000Z")
        #expect(d["decided_at"] == nil && d["grant"] == nil && d["actor"] == nil)
        #expect(event.summary == "Approval ap-1: agent@example.com asks to run on orders-db (rule p/writes), approvers dba\nUPDATE people SET ssn = '***-**-****' WHERE id = 1")
        // Without a page URL, no link anywhere.
        let bare = ApprovalWebhookEvent.make(ApprovalChange(kind: .requested, record: Self.record(), at: Self.created), pageURL: nil)
        let bareData = try Self.data(bare)
        #expect(bare.link == nil && bareData["url"] == nil)
    }

    @Test func decisionsNameWhoAndWhy() throws {
        var r = Self.record(.approved)
        r.decidedAt = Self.created.addingTimeInterval(42)
        r.decisions = [ApproverDecision(verdict: .approve, approver: "ana", groups: ["dba"], reason: "first", at: Self.created.addingTimeInterval(10)),
                       ApproverDecision(verdict: .approve, approver: "bo", groups: ["dba"], reason: "second", at: Self.created.addingTimeInterval(42))]
        let grant = GrantRecord(id: "g-1", approvalID: "ap-1", subject: r.subject, target: r.target, fingerprint: "fp", policy: "p", rule: "writes",
                                approverGroups: ["dba"], grantedBy: ["ana", "bo"], createdAt: r.decidedAt!, expiresAt: r.decidedAt!.addingTimeInterval(1800))
        let change = ApprovalChange(kind: .approved, record: r, grant: grant, actor: "bo", actorReason: "second", at: r.decidedAt!)
        #expect(change.wait == 42)
        let d = try Self.data(ApprovalWebhookEvent.make(change, pageURL: nil))
        #expect(d["decided_by"] as? [String] == ["ana", "bo"] && d["reason"] as? String == "ana: first; bo: second")
        #expect((d["decisions"] as? [[String: Any]])?.map { $0["by"] as? String } == ["ana", "bo"])
        #expect((d["grant"] as? [String: Any])?["id"] as? String == "g-1" && d["actor"] as? String == "bo")

        // A revoked grant whose approval is gone: the grant's fields only.
        var revoked = grant
        revoked.revokedBy = "carol"; revoked.revokedAt = Self.created.addingTimeInterval(100); revoked.revokeReason = "done"
        let event = ApprovalWebhookEvent.make(ApprovalChange(kind: .grantRevoked, record: nil, grant: revoked, actor: "carol", actorReason: "done",
                                                             at: revoked.revokedAt!), pageURL: nil)
        let g = try Self.data(event)
        #expect(event.type == "approval.grant_revoked" && g["approval_id"] as? String == "ap-1" && g["statement"] == nil)
        #expect((g["grant"] as? [String: Any])?["revoked_by"] as? String == "carol")
        #expect(event.summary == "Approval ap-1: carol revoked grant g-1 of agent@example.com on orders-db (rule p/writes): done")
        #expect(ApprovalChange(kind: .grantReused, record: r, grant: grant, at: Self.created).wait == nil, "a reused grant never waited")
    }

    /// A graceful shutdown ends at once although a receiver holds a delivery for an hour: the
    /// delivery in flight is cancelled and the queued ones abandoned, none sent.
    @Test(.timeLimit(.minutes(10))) func aShutdownDoesNotWaitForADeadReceiver() async throws {
        let metrics = TestMetrics()
        let hanging = try WebhookReceiver(secret: "s3cret-webhook-key", statuses: ["hang"])
        // Not `stop()`: its blocking wait would hold a thread of the cooperative pool.
        defer { hanging.process.terminate() }
        let dispatcher = WebhookDispatcher(receivers: [WebhookDispatcherTests.settings("hanging", port: hanging.port, attempts: 5,
                                                                                       timeout: .seconds(3600))],
                                           gate: "g", logger: Logger(label: "test"), factory: metrics)
        let group = ServiceGroup(configuration: .init(services: [.init(service: dispatcher)], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        for n in 1...3 { dispatcher.submit(WebhookDispatcherTests.event(n)) }
        _ = try await hanging.waitFor(1)
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(hanging.received.count == 1)
        for outcome in ["delivered", "failed"] {
            #expect(try metrics.expectCounter("tollgate_webhook_deliveries_total", [("receiver", "hanging"), ("outcome", outcome)]).totalValue == 0)
        }
    }
}
