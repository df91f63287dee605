import CaptureFormat

/// One inspector for a gate that serves several protocols: each request goes to its protocol's
/// inspector (a session of an HTTP target never makes a SQL inspector, and the other way round).
/// The policy pipeline has one inspector; this is it when more than one protocol is served.
public struct ProtocolInspectors: RequestInspector {
    public let postgres: any RequestInspector
    public let http: any RequestInspector

    public init(postgres: any RequestInspector, http: any RequestInspector) { self.postgres = postgres; self.http = http }

    public func makeSession(target: String, parameters: [KeyValue]) -> any SessionInspector {
        Session(target: target, parameters: parameters, inspectors: self)
    }

    /// Per-protocol sessions, made at a session's first request of that protocol.
    final class Session: SessionInspector {
        let target: String
        let parameters: [KeyValue]
        let inspectors: ProtocolInspectors
        var postgres: (any SessionInspector)?
        var http: (any SessionInspector)?

        init(target: String, parameters: [KeyValue], inspectors: ProtocolInspectors) {
            self.target = target; self.parameters = parameters; self.inspectors = inspectors
        }

        func session(for request: borrowing Request) -> any SessionInspector {
            switch request {
            case .http, .kubernetes:
                if let http { return http }
                let made = inspectors.http.makeSession(target: target, parameters: parameters)
                http = made
                return made
            case .postgres, .unknown:
                if let postgres { return postgres }
                let made = inspectors.postgres.makeSession(target: target, parameters: parameters)
                postgres = made
                return made
            }
        }

        var generation: Int { (postgres?.generation ?? 0) &+ (http?.generation ?? 0) }

        func inspect(_ request: consuming Request, in session: SessionContext) -> InspectedRequest {
            let inspector = self.session(for: request)
            return inspector.inspect(request, in: session)
        }

        func forwarded(_ request: InspectedRequest) { session(for: request.request).forwarded(request) }
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
