import CaptureFormat
import Policy
import Testing

@Suite("approval requirements")
struct ApprovalRequirementTests {
    let ana = Principal(subject: "ana", groups: ["dba"])
    let bo = Principal(subject: "bo", groups: ["dba", "security"])
    let cy = Principal(subject: "cy", groups: ["security"])
    let dee = Principal(subject: "dee", groups: ["analysts"])

    @Test func oneApproverFromAnyGroup() {
        let r = ApprovalRequirement(anyOf: ["dba", "security"])
        #expect(r.isSatisfied(by: [cy]))
        #expect(!r.isSatisfied(by: [dee]))
        #expect(!r.isSatisfied(by: []))
        #expect(r.admits(ana) && !r.admits(dee))
    }

    @Test func distinctApproversAreCountedOnce() {
        let r = ApprovalRequirement(anyOf: ["dba"], count: 2)
        #expect(!r.isSatisfied(by: [ana]))
        #expect(r.isSatisfied(by: [ana, bo]))
        #expect(!r.isSatisfied(by: [ana, cy]), "cy is not a dba")
        #expect(r.approvalsNeeded == 2)
    }

    @Test func oneFromEachGroupTakesTwoPeopleEvenIfOneIsInBoth() {
        let r = ApprovalRequirement(clauses: [.init(groups: ["dba"]), .init(groups: ["security"])])
        #expect(!r.isSatisfied(by: [bo]), "one person in both groups fills one seat only")
        #expect(r.isSatisfied(by: [bo, cy]))
        #expect(r.isSatisfied(by: [ana, bo]), "bo takes the security seat when ana holds the dba one")
        #expect(r.isSatisfied(by: [bo, ana]), "whatever the order they approved in")
        #expect(!r.isSatisfied(by: [ana, dee]))
    }

    @Test func mergedRequirementsNeedBothAndWaitTheShorterTime() {
        let a = ApprovalRequirement(anyOf: ["dba"], timeout: .seconds(600), grant: .seconds(1800))
        let b = ApprovalRequirement(anyOf: ["security"], timeout: .seconds(60))
        let m = a.merged(with: b)
        #expect(m.timeout == .seconds(60))
        #expect(m.grant == nil, "a grant only if both open one")
        #expect(!m.isSatisfied(by: [ana]) && m.isSatisfied(by: [ana, cy]))
        #expect(a.merged(with: a) == a)
    }

    @Test func aRequestWithTwoHeldStatementsNeedsWhatEachNeeds() {
        let policies = PolicySet(policies: [Policy(name: "p", groups: ["analysts"], rules: [
            Rule(name: "updates", when: Condition(statements: ["update"]), then: .review, approvers: ["dba"]),
            Rule(name: "deletes", when: Condition(statements: ["delete"]), then: .review,
                 approval: ApprovalRequirement(anyOf: ["security"], timeout: .seconds(30))),
        ])])
        let d = policies.decide([StatementInfo(kind: "update", writes: true), StatementInfo(kind: "delete", writes: true)],
                                who: dee, target: "t", path: "simple")
        #expect(d.action == .review)
        #expect(d.approvers == ["dba", "security"])
        #expect(d.approval?.timeout == .seconds(30))
        #expect(d.approval?.isSatisfied(by: [ana]) == false)
    }
}
