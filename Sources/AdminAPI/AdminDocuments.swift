import Approvals
import Foundation

// The admin API's documents (docs/admin-api.openapi.yaml: Approval, Grant): encoded by the API,
// decoded by the command line (`capture-proxy approvals`, `grants`). Snake_case keys, ISO 8601 times.

public struct ApprovalListDocument: Codable, Sendable { public var approvals: [ApprovalDocument] }
public struct GrantListDocument: Codable, Sendable { public var grants: [GrantDocument] }

/// An approval as the API shows it.
public struct ApprovalDocument: Codable, Sendable {
    public struct Decision: Codable, Sendable {
        public var verdict: String
        public var approver: String
        public var groups: [String]
        public var reason: String
        public var at: Date
    }

    public var id, session, target, subject, statement, fingerprint, policy, rule, state: String
    public var exchange: UInt64
    public var subjectGroups, approverGroups: [String]
    public var requirement: String
    public var created, deadline: Date
    public var decided: Date?
    public var outcomeReason: String
    public var decisions: [Decision]
    public var grant: String?

    init(_ r: ApprovalRecord) {
        id = r.id; session = r.session; target = r.target; subject = r.subject; statement = r.statement; fingerprint = r.fingerprint
        policy = r.policy; rule = r.rule; state = r.state.rawValue; exchange = r.exchange; subjectGroups = r.subjectGroups
        approverGroups = r.requirement.groups; requirement = r.requirement.description; created = r.createdAt; deadline = r.deadline
        decided = r.decidedAt; outcomeReason = r.outcomeReason
        decisions = r.decisions.map { Decision(verdict: $0.verdict.rawValue, approver: $0.approver, groups: $0.groups, reason: $0.reason, at: $0.at) }
        grant = r.openedGrant ?? r.reusedGrant
    }

    enum CodingKeys: String, CodingKey {
        case id, session, target, subject, statement, fingerprint, policy, rule, state, exchange, requirement, created, deadline, decided
        case decisions, grant
        case subjectGroups = "subject_groups", approverGroups = "approver_groups", outcomeReason = "outcome_reason"
    }
}

/// A grant as the API shows it.
public struct GrantDocument: Codable, Sendable {
    public var id, approval, subject, target, fingerprint, policy, rule: String
    public var approverGroups, grantedBy: [String]
    public var created, expires: Date
    public var revokedBy: String?
    public var revoked: Date?
    public var revokeReason: String?

    init(_ g: GrantRecord) {
        id = g.id; approval = g.approvalID; subject = g.subject; target = g.target; fingerprint = g.fingerprint; policy = g.policy
        rule = g.rule; approverGroups = g.approverGroups; grantedBy = g.grantedBy; created = g.createdAt; expires = g.expiresAt
        revokedBy = g.revokedBy; revoked = g.revokedAt; revokeReason = g.revokeReason
    }

    enum CodingKeys: String, CodingKey {
        case id, approval, subject, target, fingerprint, policy, rule, created, expires, revoked
        case approverGroups = "approver_groups", grantedBy = "granted_by", revokedBy = "revoked_by", revokeReason = "revoke_reason"
    }
}
