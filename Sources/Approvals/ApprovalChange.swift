import Foundation

/// One change of an approval or a grant, as the service publishes it to its observers (the
/// gate's webhooks and metrics), once, after it is stored. Protocol-neutral: it says what was
/// asked (the record, whose statement is the capture's masked text) and what became of it.
public struct ApprovalChange: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case requested
        /// One approver said yes; the rule needs more.
        case approvedInPart = "approved_in_part"
        case approved, denied, expired, withdrawn, abandoned
        /// A live grant let a request run without asking.
        case grantReused = "grant_reused"
        /// A grant was ended before its time.
        case grantRevoked = "grant_revoked"

        /// Whether the approval's fate is settled by this change.
        public var isFinal: Bool { ![.requested, .approvedInPart, .grantRevoked].contains(self) }
    }
    public var kind: Kind
    /// The approval as stored after the change (for a revoked grant: the approval that opened it, when still stored).
    public var record: ApprovalRecord?
    /// The grant opened (approved), reused (grantReused) or revoked (grantRevoked).
    public var grant: GrantRecord?
    /// Who made this change and why (the approver of a partial approval, the revoker of a
    /// grant); empty for the gate's own changes (expiry, withdrawal).
    public var actor: String
    public var actorReason: String
    public var at: Date

    public init(kind: Kind, record: ApprovalRecord?, grant: GrantRecord? = nil, actor: String = "", actorReason: String = "", at: Date) {
        self.kind = kind; self.record = record; self.grant = grant; self.actor = actor; self.actorReason = actorReason; self.at = at
    }

    /// Requested to final, for a settled approval that waited (not a reused grant).
    public var wait: TimeInterval? {
        guard kind.isFinal, kind != .grantReused, let r = record, let decided = r.decidedAt else { return nil }
        return max(0, decided.timeIntervalSince(r.createdAt))
    }
}

/// Hears every approval change, on the service's actor: it must return at once (queue the work,
/// never wait on it).
public typealias ApprovalObserver = @Sendable (ApprovalChange) -> Void
