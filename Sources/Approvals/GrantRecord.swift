import Foundation

/// A just-in-time window an approval opened: the same subject may run the same statement
/// (fingerprint) on the same target under the same rule, without asking again, until it expires
/// or is revoked.
public struct GrantRecord: Sendable, Hashable {
    public var id: String
    /// The approval that opened it.
    public var approvalID: String
    public var subject: String
    public var target: String
    public var fingerprint: String
    public var policy: String
    public var rule: String
    /// The rule's approver groups: their members may revoke it (as may its subject).
    public var approverGroups: [String]
    public var grantedBy: [String]
    public var createdAt: Date
    public var expiresAt: Date
    public var revokedBy: String?
    public var revokedAt: Date?
    public var revokeReason: String?

    public init(id: String, approvalID: String, subject: String, target: String, fingerprint: String, policy: String, rule: String,
                approverGroups: [String], grantedBy: [String], createdAt: Date, expiresAt: Date,
                revokedBy: String? = nil, revokedAt: Date? = nil, revokeReason: String? = nil) {
        self.id = id; self.approvalID = approvalID; self.subject = subject; self.target = target; self.fingerprint = fingerprint
        self.policy = policy; self.rule = rule; self.approverGroups = approverGroups; self.grantedBy = grantedBy
        self.createdAt = createdAt; self.expiresAt = expiresAt
        self.revokedBy = revokedBy; self.revokedAt = revokedAt; self.revokeReason = revokeReason
    }

    /// Not revoked and not yet expired at `instant`.
    public func isActive(at instant: Date) -> Bool { revokedAt == nil && instant < expiresAt }
}
