import CaptureFormat

/// The policy pipeline's inspector when a gate serves more than one protocol: a session gets
/// its own protocol's inspector session (`session(of:protocolName:…)`), the very one that
/// protocol's adapter expects (the PostgreSQL adapter reads its SQL session's state).
public struct ProtocolInspectors: RequestInspector {
    public let postgres: any RequestInspector
    public let http: any RequestInspector

    public init(postgres: any RequestInspector, http: any RequestInspector) { self.postgres = postgres; self.http = http }

    /// A session with no protocol named is a PostgreSQL one (the gate's first protocol).
    public func makeSession(target: String, parameters: [KeyValue]) -> any SessionInspector {
        postgres.makeSession(target: target, parameters: parameters)
    }

    public func inspector(for protocolName: String) -> any RequestInspector {
        switch protocolName {
        case "http", "kubernetes": http
        default: postgres
        }
    }

    /// The inspector session for a session of `protocolName`: from its protocol's inspector when
    /// `inspector` serves several.
    public static func session(of inspector: any RequestInspector, protocolName: String, target: String,
                               parameters: [KeyValue]) -> any SessionInspector {
        let chosen = (inspector as? ProtocolInspectors)?.inspector(for: protocolName) ?? inspector
        return chosen.makeSession(target: target, parameters: parameters)
    }
}

extension PolicyState {
    /// The same policies and masks, inspected by `inspector`.
    public func inspecting(with inspector: any RequestInspector) -> PolicyState {
        var pipeline = self.pipeline
        pipeline.inspector = inspector
        return PolicyState(pipeline: pipeline, enforcing: enforcing, generation: generation, credentials: credentials)
    }
}
