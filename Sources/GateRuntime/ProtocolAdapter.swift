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

/// Sent to sessions still open when the shutdown grace period ends: each closes as its protocol's
/// server would on an administrator's shutdown.
public struct GateShutdown: Sendable {
    public init() {}
}
