/// Why the service refused an action. Each says what and which approval or grant; nothing
/// changed when one is thrown.
public enum ApprovalError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownApproval(String)
    /// It is no longer pending: already approved, denied, expired, withdrawn or abandoned.
    case notPending(String, ApprovalState)
    /// The approver asked for it themselves.
    case selfApproval(String)
    /// The approver is in none of the rule's approver groups.
    case notAnApprover(String, groups: [String])
    /// This approver already decided on it.
    case alreadyDecided(String, by: String)
    /// A decision needs a reason (without control characters, which would forge lines in pages and logs).
    case reasonRequired(String)
    /// A hold with no approver groups cannot be approved by anyone: it is refused, not held.
    case noApprovers(String)
    /// A request with this approval id was already registered.
    case duplicateID(String)
    case unknownGrant(String)
    case grantNotActive(String)
    /// Only the grant's subject or a member of its rule's approver groups may revoke it.
    case notAllowedToRevoke(String, by: String)
    case store(ApprovalStoreError)

    public var description: String {
        switch self {
        case .unknownApproval(let id): "no approval \(id)"
        case .notPending(let id, let state): "approval \(id) is \(state.rawValue), no longer pending"
        case .selfApproval(let id): "approval \(id): nobody may decide on their own request"
        case .notAnApprover(let id, let groups): "approval \(id): only members of \(groups.joined(separator: ", ")) may decide on it"
        case .alreadyDecided(let id, let by): "approval \(id): \(by) has already decided on it"
        case .reasonRequired(let id): "approval \(id): a decision needs a reason, in one line of printable text"
        case .noApprovers(let id): "approval \(id): its rule names no approver groups, so nobody could approve it"
        case .duplicateID(let id): "approval \(id) already exists"
        case .unknownGrant(let id): "no grant \(id)"
        case .grantNotActive(let id): "grant \(id) is already revoked or expired"
        case .notAllowedToRevoke(let id, let by): "grant \(id): \(by) is neither its subject nor one of its approvers' groups"
        case .store(let e): e.description
        }
    }
}
