import CaptureFormat
import Foundation

/// A change to one approval, for the adapter: it records `capture` into the session's capture
/// (through `ExchangeSession.resolve` for a final event) and, when `isFinal`, forwards or refuses
/// the held request.
public struct ApprovalEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case requested
        /// One approver said yes; the rule needs more.
        case approvedInPart
        case approved
        case denied
        case expired
        case withdrawn
        /// A live grant let it run without asking.
        case reusedGrant
        /// Pending when the gate stopped.
        case abandoned
    }
    public var kind: Kind
    public var approvalID: String
    /// Who decided (approvers), in order; the grant's approvers for a reused grant.
    public var by: [String]
    public var reason: String
    /// The grant opened (approved) or reused (reusedGrant).
    public var grantID: String?
    /// The approval's groups (requested).
    public var approverGroups: [String]

    public init(kind: Kind, approvalID: String, by: [String] = [], reason: String = "", grantID: String? = nil, approverGroups: [String] = []) {
        self.kind = kind; self.approvalID = approvalID; self.by = by; self.reason = reason; self.grantID = grantID
        self.approverGroups = approverGroups
    }

    /// Whether the held request's fate is settled.
    public var isFinal: Bool { kind != .requested && kind != .approvedInPart }
    /// Whether the held request runs.
    public var runs: Bool { kind == .approved || kind == .reusedGrant }

    /// The capture's event, one state per outcome (format 1.3): a reused grant names the grant
    /// and its approvers. A partial approval has no event of its own: the final one names every
    /// approver and reason.
    public var capture: Approval? {
        switch kind {
        case .requested: Approval(state: .requested, approvalID: approvalID, approverGroups: approverGroups)
        case .approvedInPart: nil
        case .approved: Approval(state: .granted, approvalID: approvalID, by: by.joined(separator: ", "), reason: reason, grantID: grantID ?? "")
        case .reusedGrant: Approval(state: .reused, approvalID: approvalID, by: by.joined(separator: ", "), reason: reason, grantID: grantID ?? "")
        case .denied: Approval(state: .denied, approvalID: approvalID, by: by.joined(separator: ", "), reason: reason)
        case .expired: Approval(state: .expired, approvalID: approvalID, reason: reason)
        case .withdrawn: Approval(state: .withdrawn, approvalID: approvalID, reason: reason)
        case .abandoned: Approval(state: .abandoned, approvalID: approvalID, reason: reason)
        }
    }

    /// The final event of a decided record (for a waiter that arrives after the decision).
    static func final(_ r: ApprovalRecord) -> ApprovalEvent? {
        let approvers = r.decisions.filter { $0.verdict == .approve }
        switch r.state {
        case .pending: return nil
        case .approved where r.reusedGrant != nil:
            return ApprovalEvent(kind: .reusedGrant, approvalID: r.id, by: [], reason: r.outcomeReason, grantID: r.reusedGrant)
        case .approved:
            return ApprovalEvent(kind: .approved, approvalID: r.id, by: approvers.map(\.approver), reason: reasons(approvers), grantID: r.openedGrant)
        case .denied:
            let deny = r.decisions.last { $0.verdict == .deny }
            return ApprovalEvent(kind: .denied, approvalID: r.id, by: deny.map { [$0.approver] } ?? [], reason: deny?.reason ?? "")
        case .expired: return ApprovalEvent(kind: .expired, approvalID: r.id, reason: r.outcomeReason)
        case .withdrawn: return ApprovalEvent(kind: .withdrawn, approvalID: r.id, reason: r.outcomeReason)
        case .abandoned: return ApprovalEvent(kind: .abandoned, approvalID: r.id, reason: r.outcomeReason)
        }
    }

    /// One approver's reason as given; several as "who: why; who: why".
    static func reasons(_ decisions: [ApproverDecision]) -> String {
        decisions.count == 1 ? decisions[0].reason : decisions.map { "\($0.approver): \($0.reason)" }.joined(separator: "; ")
    }
}
