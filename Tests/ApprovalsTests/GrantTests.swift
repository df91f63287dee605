import Approvals
import CaptureFormat
import Foundation
import Policy
import Testing

@Suite("approvals: grants")
struct GrantTests {
    let ana = person("ana", "dba")
    let cy = person("cy", "security")
    let agent = person("ai-agent", "ai-assistants")
    let windowed = ApprovalRequirement(anyOf: ["dba"], grant: .seconds(1800))

    @Test func anApprovalWithAGrantLetsTheSameStatementRunUntilItExpires() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1", requirement: windowed))
        let approved = try await f.approvals.approve("a1", by: ana, reason: "migration window")
        let grantID = try #require(approved.grantID)
        let grant = try #require(try await f.approvals.grants().first)
        #expect(grant.id == grantID && grant.subject == "ai-agent" && grant.target == "orders-db" && grant.fingerprint == "fp-update-customers")
        #expect(grant.grantedBy == ["ana"] && grant.expiresAt == f.clock.now().storedForTest.addingTimeInterval(1800))

        f.clock.advance(by: 1799)
        let reused = try await f.approvals.request(hold("a2", requirement: windowed))
        #expect(reused.kind == .reusedGrant && reused.runs && reused.grantID == grantID && reused.by == ["ana"])
        #expect(reused.capture?.state == .reused && reused.capture?.by == "ana" && reused.capture?.grantID == grantID)
        #expect(reused.reason.contains(grantID) && reused.reason.contains("from approval a1"))
        #expect(try await f.approvals.outcome("a2") == reused, "read back from the store, the same event")
        #expect(try await f.approvals.approval("a2")?.reusedGrant == grantID)

        f.clock.advance(by: 1)
        #expect(try await f.approvals.request(hold("a3", requirement: windowed)).kind == .requested, "the grant has expired")
        #expect(try await f.approvals.grants().isEmpty)
        #expect(try await f.approvals.grants(includeInactive: true).count == 1)
    }

    @Test func aGrantCoversOnlyTheSameSubjectTargetStatementAndRule() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1", requirement: windowed))
        try await f.approvals.approve("a1", by: ana, reason: "ok")
        #expect(try await f.approvals.request(hold("s", subject: "someone-else", requirement: windowed)).kind == .requested)
        #expect(try await f.approvals.request(hold("t", target: "billing-db", requirement: windowed)).kind == .requested)
        #expect(try await f.approvals.request(hold("f", fingerprint: "fp-delete-customers", requirement: windowed)).kind == .requested)
        #expect(try await f.approvals.request(hold("r", rule: "other-rule", requirement: windowed)).kind == .requested)
        // The policy was reloaded and the rule no longer grants windows: the old grant is not used.
        #expect(try await f.approvals.request(hold("n", requirement: ApprovalRequirement(anyOf: ["dba"]))).kind == .requested)
        #expect(try await f.approvals.request(hold("same", requirement: windowed)).kind == .reusedGrant)
    }

    @Test func withoutAGrantInTheRuleEveryRequestAsks() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1"))
        let approved = try await f.approvals.approve("a1", by: ana, reason: "ok")
        #expect(approved.grantID == nil)
        #expect(try await f.approvals.request(hold("a2")).kind == .requested)
    }

    @Test func revokedByAnApproverOrItsSubjectAndNobodyElse() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1", requirement: windowed))
        let grantID = try #require(try await f.approvals.approve("a1", by: ana, reason: "ok").grantID)
        let refused = await refusal { try await f.approvals.revokeGrant(grantID, by: cy, reason: "security says no") }
        #expect(refused == .notAllowedToRevoke(grantID, by: "cy"))
        #expect(await refusal { try await f.approvals.revokeGrant("grant-none", by: ana, reason: "r") } == .unknownGrant("grant-none"))

        let revoked = try await f.approvals.revokeGrant(grantID, by: ana, reason: "window closed early")
        #expect(revoked.revokedBy == "ana" && revoked.revokeReason == "window closed early" && revoked.revokedAt != nil)
        #expect(try await f.approvals.request(hold("a2", requirement: windowed)).kind == .requested, "a revoked grant covers nothing")
        #expect(await refusal { try await f.approvals.revokeGrant(grantID, by: ana, reason: "again") } == .grantNotActive(grantID))
        let audit = try await f.approvals.audit()
        #expect(audit.map(\.action) == ["revoke-grant", "revoke-grant", "revoke-grant", "revoke-grant", "approve"])
        #expect(audit.map(\.outcome).filter { $0 == "done" }.count == 2)
    }

    @Test func itsSubjectMayGiveItUp() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1", requirement: windowed))
        let grantID = try #require(try await f.approvals.approve("a1", by: ana, reason: "ok").grantID)
        #expect(try await f.approvals.revokeGrant(grantID, by: agent, reason: "done with it").revokedBy == "ai-agent")
    }
}
