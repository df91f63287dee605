import Foundation

/// Where approvals, grants and the admin audit are kept. Small on purpose: the SQLite store
/// backs one gate; a later PostgreSQL store can back several. Every method may do disk or network
/// work: callers await it, and an implementation must not block the caller's thread (the SQLite
/// store runs its work on GRDB's own dispatch queues).
public protocol ApprovalStore: Sendable {
    /// Stores these records and entries in one transaction: all or nothing. Approvals and grants
    /// are inserted or updated by id (a stored approval's decisions are only ever appended);
    /// audit entries are appended.
    func write(_ change: StoreChange) async throws(ApprovalStoreError)

    func approval(_ id: String) async throws(ApprovalStoreError) -> ApprovalRecord?
    /// Newest first; `states` empty means every state.
    func approvals(states: Set<ApprovalState>, limit: Int) async throws(ApprovalStoreError) -> [ApprovalRecord]

    func grant(_ id: String) async throws(ApprovalStoreError) -> GrantRecord?
    /// Newest first; with `activeAt`, only the grants live at that instant.
    func grants(activeAt: Date?, limit: Int) async throws(ApprovalStoreError) -> [GrantRecord]
    /// The live grant (latest expiry first) for exactly this subject, target, fingerprint and rule.
    func activeGrant(subject: String, target: String, fingerprint: String, policy: String, rule: String,
                     at: Date) async throws(ApprovalStoreError) -> GrantRecord?

    /// Newest first.
    func audit(limit: Int) async throws(ApprovalStoreError) -> [AuditEntry]

    /// At start: marks every approval still pending as abandoned (their clients went with the
    /// previous process) and returns their ids.
    func abandonPending(at: Date, reason: String) async throws(ApprovalStoreError) -> [String]
}

/// What one `ApprovalStore.write` stores, atomically.
public struct StoreChange: Sendable {
    public var approvals: [ApprovalRecord]
    public var grants: [GrantRecord]
    public var audit: [AuditEntry]

    public init(approvals: [ApprovalRecord] = [], grants: [GrantRecord] = [], audit: [AuditEntry] = []) {
        self.approvals = approvals; self.grants = grants; self.audit = audit
    }
}

/// The store could not be opened, read or written: says which file and what the database said.
public struct ApprovalStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The file cannot be created or opened (a missing or unwritable directory).
        case cannotOpen
        /// The file is not an approvals store (not SQLite, or damaged).
        case notAStore
        /// A newer gate's store: its schema has migrations this gate does not know.
        case newerSchema
        /// Reading or writing failed (disk full, I/O error, a constraint).
        case io
    }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }

    public var description: String { message }
}
