import Approvals
import CaptureFormat
import Foundation
import Policy
import Testing

@Suite("approvals: requests and decisions")
struct DecisionTests {
    let ana = person("ana", "dba")
    let bo = person("bo", "dba", "security")
    let cy = person("cy", "security")
    let dee = person("dee", "analysts")

    @Test func approvedByAnApproverRunsAndIsRecorded() async throws {
        let f = try Fixture(); defer { f.remove() }
        let log = EventLog()
        let requested = try await f.approvals.request(hold("a1"), onEvent: log.add)
        #expect(requested.kind == .requested && requested.approverGroups == ["dba"])
        #expect(requested.capture == Approval(state: .requested, approvalID: "a1", approverGroups: ["dba"]))

        let approved = try await f.approvals.approve("a1", by: ana, reason: "ticket OPS-12")
        #expect(approved.kind == .approved && approved.runs && approved.isFinal)
        #expect(approved.capture == Approval(state: .granted, approvalID: "a1", by: "ana", reason: "ticket OPS-12"))
        #expect(log.all == [approved], "the listener hears the decision")
        #expect(try await f.approvals.outcome("a1") == approved, "a waiter arriving after the decision gets it")

        let record = try #require(try await f.approvals.approval("a1"))
        #expect(record.state == .approved && record.decidedAt == f.clock.now().storedForTest)
        #expect(record.decisions.map(\.approver) == ["ana"] && record.decisions[0].groups == ["dba"])
        #expect(record.decisions[0].reason == "ticket OPS-12")
        let audit = try await f.approvals.audit()
        #expect(audit.map(\.action) == ["approve"] && audit[0].actor == "ana" && audit[0].outcome == "done")
    }

    @Test func aWaiterIsWokenByTheDecision() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1"))
        async let outcome = f.approvals.outcome("a1")
        let denied = try await f.approvals.deny("a1", by: ana, reason: "not during the freeze")
        #expect(try await outcome == denied)
        #expect(denied.capture == Approval(state: .denied, approvalID: "a1", by: "ana", reason: "not during the freeze"))
        #expect(!denied.runs)
        #expect(try await f.approvals.approval("a1")?.state == .denied)
    }

    @Test func selfApprovalIsRefusedAndChangesNothing() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1", subject: "ana", groups: ["dba"]))
        let error = await refusal { try await f.approvals.approve("a1", by: ana, reason: "mine") }
        #expect(error == .selfApproval("a1"))
        #expect(error?.description.contains("their own request") == true)
        let denial = await refusal { try await f.approvals.deny("a1", by: ana, reason: "mine") }
        #expect(denial == .selfApproval("a1"))
        let record = try #require(try await f.approvals.approval("a1"))
        #expect(record.state == .pending && record.decisions.isEmpty)
        // Refused attempts are on the audit too.
        #expect(try await f.approvals.audit().map(\.outcome).allSatisfy { $0.hasPrefix("refused: ") })
        #expect(try await f.approvals.approve("a1", by: bo, reason: "checked").kind == .approved)
    }

    @Test func aNonApproverIsRefused() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1"))
        let error = await refusal { try await f.approvals.approve("a1", by: dee, reason: "looks fine") }
        #expect(error == .notAnApprover("a1", groups: ["dba"]))
        #expect(try await f.approvals.approval("a1")?.state == .pending)
    }

    @Test func everyDecisionNeedsAReason() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1"))
        #expect(await refusal { try await f.approvals.approve("a1", by: ana, reason: "  ") } == .reasonRequired("a1"))
        #expect(await refusal { try await f.approvals.approve("a1", by: ana, reason: "ok\nFORGED LINE") } == .reasonRequired("a1"))
        #expect(try await f.approvals.approval("a1")?.decisions.isEmpty == true)
        let audit = try await f.approvals.audit()
        #expect(audit.count == 2 && !audit.contains { $0.reason.contains("\n") }, "the audit keeps no control character")
    }

    @Test func unknownIdsAndDecidedApprovalsGetClearErrors() async throws {
        let f = try Fixture(); defer { f.remove() }
        #expect(await refusal { try await f.approvals.approve("nope", by: ana, reason: "r") } == .unknownApproval("nope"))
        #expect(await refusal { try await f.approvals.withdraw("nope", reason: "r") } == .unknownApproval("nope"))
        #expect(await refusal { _ = try await f.approvals.outcome("nope") } == .unknownApproval("nope"))
        try await f.approvals.request(hold("a1"))
        try await f.approvals.deny("a1", by: ana, reason: "no")
        let late = await refusal { try await f.approvals.approve("a1", by: bo, reason: "yes") }
        #expect(late == .notPending("a1", .denied))
        #expect(late?.description == "approval a1 is denied, no longer pending")
        #expect(await refusal { try await f.approvals.request(hold("a1")) } == .duplicateID("a1"))
        #expect(try await f.approvals.approval("a1")?.decisions.count == 1)
    }

    @Test func aDoubleApproveBySameApproverIsRefused() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1", requirement: ApprovalRequirement(anyOf: ["dba"], count: 2)))
        #expect(try await f.approvals.approve("a1", by: ana, reason: "one").kind == .approvedInPart)
        #expect(await refusal { try await f.approvals.approve("a1", by: ana, reason: "again") } == .alreadyDecided("a1", by: "ana"))
        let record = try #require(try await f.approvals.approval("a1"))
        #expect(record.state == .pending && record.decisions.count == 1)
    }

    @Test func twoDistinctApprovers() async throws {
        let f = try Fixture(); defer { f.remove() }
        let log = EventLog()
        try await f.approvals.request(hold("a1", requirement: ApprovalRequirement(anyOf: ["dba"], count: 2)), onEvent: log.add)
        let first = try await f.approvals.approve("a1", by: ana, reason: "first look")
        #expect(first.kind == .approvedInPart && first.capture == nil && !first.isFinal)
        let second = try await f.approvals.approve("a1", by: bo, reason: "second look")
        #expect(second.kind == .approved && second.by == ["ana", "bo"])
        #expect(second.capture == Approval(state: .granted, approvalID: "a1", by: "ana, bo", reason: "ana: first look; bo: second look"))
        #expect(log.all.map(\.kind) == [.approvedInPart, .approved])
        // Restart: both decisions read back in order.
        let again = try await f.reopened().approval("a1")
        #expect(again?.decisions.map(\.approver) == ["ana", "bo"] && again?.state == .approved)
    }

    @Test func oneFromEachGroup() async throws {
        let f = try Fixture(); defer { f.remove() }
        let eachGroup = ApprovalRequirement(clauses: [.init(groups: ["dba"]), .init(groups: ["security"])])
        try await f.approvals.request(hold("a1", requirement: eachGroup))
        // A second dba does not fill the security seat.
        #expect(try await f.approvals.approve("a1", by: ana, reason: "r1").kind == .approvedInPart)
        #expect(try await f.approvals.approve("a1", by: person("ed", "dba"), reason: "r2").kind == .approvedInPart)
        #expect(await refusal { try await f.approvals.approve("a1", by: dee, reason: "r") } == .notAnApprover("a1", groups: ["dba", "security"]))
        #expect(try await f.approvals.approve("a1", by: cy, reason: "r3").kind == .approved)
        // bo is in both groups but fills one seat only.
        try await f.approvals.request(hold("a2", requirement: eachGroup))
        #expect(try await f.approvals.approve("a2", by: bo, reason: "r").kind == .approvedInPart)
        #expect(try await f.approvals.approve("a2", by: ana, reason: "r").kind == .approved)
    }

    @Test func expiresWhenTheInjectedClockPassesTheRulesTimeout() async throws {
        let f = try Fixture(); defer { f.remove() }
        let log = EventLog()
        try await f.approvals.request(hold("a1", requirement: ApprovalRequirement(anyOf: ["dba"], timeout: .seconds(120))), onEvent: log.add)
        f.clock.advance(by: 119)
        #expect(try await f.approvals.approval("a1")?.state == .pending)
        f.clock.advance(by: 1)
        let expired = try await f.approvals.outcome("a1")
        #expect(expired.kind == .expired && expired.reason == "not approved within 2m")
        #expect(expired.capture == Approval(state: .expired, approvalID: "a1", reason: "not approved within 2m"))
        #expect(log.all == [expired])
        let late = await refusal { try await f.approvals.approve("a1", by: ana, reason: "late") }
        #expect(late == .notPending("a1", .expired), "\(String(describing: late))")
        #expect(await f.approvals.unreportedStoreError == nil)
        #expect(try await f.reopened().approval("a1")?.state == .expired)
    }

    @Test func theDefaultTimeoutIsFiveMinutes() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1"))
        let record = try #require(try await f.approvals.approval("a1"))
        #expect(record.deadline.timeIntervalSince(record.createdAt) == 300)
    }

    @Test func aDecisionPastTheDeadlineIsRefusedEvenBeforeTheTimerRuns() async throws {
        // A clock whose timers never fire: only the decision's own check can find the deadline passed.
        let f = try Fixture(clock: ManualClock(wakesSleepers: false)); defer { f.remove() }
        try await f.approvals.request(hold("a1"))
        f.clock.advance(by: 301)
        #expect(await refusal { try await f.approvals.approve("a1", by: ana, reason: "late") } == .notPending("a1", .expired))
        let record = try #require(try await f.approvals.approval("a1"))
        #expect(record.state == .expired && record.decisions.isEmpty)
    }

    @Test func withdrawnOnCancelOrDisconnect() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1"))
        async let outcome = f.approvals.outcome("a1")
        let withdrawn = try await f.approvals.withdraw("a1", reason: "the client cancelled")
        #expect(try await outcome == withdrawn)
        #expect(withdrawn.capture == Approval(state: .withdrawn, approvalID: "a1", reason: "withdrawn: the client cancelled"))
        #expect(await refusal { try await f.approvals.approve("a1", by: ana, reason: "r") } == .notPending("a1", .withdrawn))
        #expect(await refusal { try await f.approvals.withdraw("a1", reason: "again") } == .notPending("a1", .withdrawn))
    }

    @Test func aHoldWithoutApproversIsRefused() async throws {
        let f = try Fixture(); defer { f.remove() }
        #expect(await refusal { try await f.approvals.request(hold("a1", requirement: ApprovalRequirement(clauses: []))) } == .noApprovers("a1"))
        #expect(try await f.approvals.approval("a1") == nil)
    }

    @Test(arguments: 0..<5) func racingDecisionsOneWins(round: Int) async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1"))
        let deciders = [ana, bo, person("ed", "dba"), person("flo", "dba")]
        let results = await withTaskGroup(of: Result<ApprovalEvent, ApprovalError>.self) { group in
            for (i, who) in deciders.enumerated() {
                group.addTask {
                    do throws(ApprovalError) {
                        if i % 2 == round % 2 { return .success(try await f.approvals.approve("a1", by: who, reason: "go")) }
                        return .success(try await f.approvals.deny("a1", by: who, reason: "stop"))
                    } catch { return .failure(error) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let winners = results.compactMap { try? $0.get() }
        #expect(winners.count == 1, "exactly one decision takes effect")
        let record = try #require(try await f.approvals.approval("a1"))
        #expect(record.decisions.count == 1 && record.decisions[0].approver == winners.first?.by.first)
        for case .failure(let e) in results { #expect(e == .notPending("a1", record.state)) }
        #expect(try await f.approvals.outcome("a1") == winners.first)
    }
}

extension Date {
    /// Whole milliseconds, as the store keeps instants.
    var storedForTest: Date { Date(timeIntervalSince1970: (timeIntervalSince1970 * 1000).rounded() / 1000) }
}
