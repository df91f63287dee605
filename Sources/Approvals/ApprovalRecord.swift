import Foundation
import Policy

/// Where a held request stands. `pending` is the only state that changes; the others are final.
public enum ApprovalState: String, Sendable, Hashable, CaseIterable {
    case pending
    /// Enough approvers said yes (or a live grant covered it): the request runs.
    case approved
    /// One approver said no.
    case denied
    /// No decision before the rule's timeout.
    case expired
    /// The client cancelled or went away while it waited.
    case withdrawn
    /// Still pending when the gate stopped: its client is gone, it can never run.
    case abandoned
}

/// One approver's word on a request: who, in which groups at the time, yes or no, and why.
public struct ApproverDecision: Sendable, Hashable {
    public enum Verdict: String, Sendable, Hashable { case approve, deny }
    public var verdict: Verdict
    public var approver: String
    public var groups: [String]
    public var reason: String
    public var at: Date

    public init(verdict: Verdict, approver: String, groups: [String], reason: String, at: Date) {
        self.verdict = verdict; self.approver = approver; self.groups = groups; self.reason = reason; self.at = at
    }
}

/// A held request as the store keeps it: what was asked, by whom, under which rule, and what
/// became of it.
public struct ApprovalRecord: Sendable, Hashable {
    public var id: String
    /// The session's id (its capture's) and the exchange within it.
    public var session: String
    public var exchange: UInt64
    public var target: String
    public var subject: String
    public var subjectGroups: [String]
    /// The statement as recorded in the capture (already redacted where the capture redacts).
    public var statement: String
    public var fingerprint: String
    public var policy: String
    public var rule: String
    public var requirement: ApprovalRequirement
    public var state: ApprovalState
    public var createdAt: Date
    public var deadline: Date
    public var decidedAt: Date?
    /// Why it ended without approvers' decisions deciding it (expired, withdrawn, abandoned, a grant reused).
    public var outcomeReason: String
    /// In the order given.
    public var decisions: [ApproverDecision]
    /// The grant this approval opened.
    public var openedGrant: String?
    /// The grant that let it run without asking.
    public var reusedGrant: String?

    public init(id: String, session: String, exchange: UInt64, target: String, subject: String, subjectGroups: [String],
                statement: String, fingerprint: String, policy: String, rule: String, requirement: ApprovalRequirement,
                state: ApprovalState, createdAt: Date, deadline: Date, decidedAt: Date? = nil, outcomeReason: String = "",
                decisions: [ApproverDecision] = [], openedGrant: String? = nil, reusedGrant: String? = nil) {
        self.id = id; self.session = session; self.exchange = exchange; self.target = target; self.subject = subject
        self.subjectGroups = subjectGroups; self.statement = statement; self.fingerprint = fingerprint; self.policy = policy
        self.rule = rule; self.requirement = requirement; self.state = state; self.createdAt = createdAt; self.deadline = deadline
        self.decidedAt = decidedAt; self.outcomeReason = outcomeReason; self.decisions = decisions
        self.openedGrant = openedGrant; self.reusedGrant = reusedGrant
    }

    /// The approvers who said yes, as the requirement counts them.
    var approvers: [Principal] {
        decisions.filter { $0.verdict == .approve }.map { Principal(subject: $0.approver, groups: $0.groups) }
    }
}
