import Foundation

/// One admin action, as the store keeps it (append-only): who, when, what, on which object, why,
/// and whether it was done or refused (and why).
public struct AuditEntry: Sendable, Hashable {
    /// Assigned by the store; nil until stored.
    public var id: Int64?
    public var at: Date
    public var actor: String
    public var actorGroups: [String]
    /// `approve`, `deny`, `revoke-grant`, or what the admin API names (`end-session`, `reload-policy`).
    public var action: String
    /// The approval, grant or session acted on.
    public var object: String
    public var reason: String
    /// `done`, or `refused: <the error>`.
    public var outcome: String

    public init(id: Int64? = nil, at: Date, actor: String, actorGroups: [String], action: String, object: String,
                reason: String, outcome: String) {
        self.id = id; self.at = at; self.actor = actor; self.actorGroups = actorGroups; self.action = action
        self.object = object; self.reason = reason; self.outcome = outcome
    }
}
