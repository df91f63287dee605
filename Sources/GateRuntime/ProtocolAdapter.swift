import NIOCore
import ProxyCore

/// What one protocol brings to the gate: the handlers for a client connection of one of its
/// targets. Everything else a session needs (identity, policies, recording, live sessions) is
/// the gate's, the same for every protocol.
public protocol ProtocolAdapter: Sendable {
    var protocolKind: TargetConfig.ProtocolKind { get }
    /// Sets up an accepted connection of `target` (on its event loop).
    func initializeConnection(_ channel: any Channel, target: TargetConfig, gate: Gate) throws
}

/// Sent to a session to end it: to those still open when the shutdown grace period ends, and to
/// one an operator ends through the admin API. It closes as its protocol's server would on an
/// administrator's command.
public struct GateShutdown: Sendable {
    /// Who ended the session through the admin API; nil: the gate is shutting down.
    public var endedBy: String?

    public init(endedBy: String? = nil) { self.endedBy = endedBy }

    /// The session's end reason in its capture.
    public var endReason: String { endedBy == nil ? "shutdown" : "admin-end" }
    /// What the client is told, after the protocol's own words.
    public var detail: String { endedBy.map { "ended by \($0) through the gate's admin API" } ?? "the gate is shutting down" }
}
