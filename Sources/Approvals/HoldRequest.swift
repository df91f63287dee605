import CaptureFormat
import Foundation
import Policy

/// What an adapter registers when the exchange session holds a request (`ExchangeAction.hold`):
/// the hold's id, decision and requirement, with the session and the requester around them.
public struct HoldRequest: Sendable {
    /// The hold's `approvalID`.
    public var approvalID: String
    public var session: String
    public var exchange: UInt64
    public var target: String
    public var requester: Principal
    /// The statement as the capture records it (redacted where the capture redacts).
    public var statement: String
    /// Where a grant applies: the same fingerprint (normalized statement) only.
    public var fingerprint: String
    public var decision: Decision
    public var requirement: ApprovalRequirement

    public init(approvalID: String, session: String, exchange: UInt64, target: String, requester: Principal,
                statement: String, fingerprint: String, decision: Decision, requirement: ApprovalRequirement) {
        self.approvalID = approvalID; self.session = session; self.exchange = exchange; self.target = target
        self.requester = requester; self.statement = statement; self.fingerprint = fingerprint
        self.decision = decision; self.requirement = requirement
    }
}
