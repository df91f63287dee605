import CaptureFormat
import Foundation
import Policy
import ProxyCore

/// The facts a policy decides an HTTP request on: `RequestHead.httpStatementInfo()` (the method
/// as kind and attribute, `http_path` percent-decoded, `host`, `query`). A path the gate cannot
/// read as the server would is denied whatever the rules say (unparseable, and a refusal, so
/// that a gate without policies denies it too).
///
/// Kubernetes targets: the facts of the API path (verb, resource, namespace, …) are added in
/// `kubernetesFacts`, the one place where a target of kind `kubernetes` extends the request.
public struct HTTPRequestInspector: RequestInspector {
    public init() {}

    public func makeSession(target: String, parameters: [KeyValue]) -> any SessionInspector { Session() }

    public static func facts(_ request: HTTPRequest) -> StatementInfo {
        let head = RequestHead(method: request.method, target: request.target,
                               fields: request.host.isEmpty ? [] : [HTTPField("Host", request.host)])
        do {
            return try head.httpStatementInfo()
        } catch {
            var refused = StatementInfo.unparseable("\(error)")
            refused.refusal = "\(error)"
            return refused
        }
    }

    /// Where a target of kind `kubernetes` adds its API facts (verb, group, version, resource,
    /// namespace, name, subresource) to the HTTP ones: read again from the recorded method, target
    /// and host, as the session handler read them (`KubernetesRequestFacts`). A path the gate
    /// cannot follow is a refusal, denied whatever the rules say.
    static func kubernetesFacts(_ request: KubernetesRequest, _ info: StatementInfo) -> StatementInfo {
        let http = request.http
        // The recorded fields too: a stream into a pod is known by its Upgrade (credentials are withheld, never read here).
        switch KubernetesRequestFacts.parse(method: http.method, target: http.target, fields: http.headers.map { HTTPField($0.key, $0.value) }) {
        case .success(let k):
            return k.statementInfo(method: http.method, host: http.host)
        case .failure(let refusal):
            var refused = StatementInfo.unparseable(refusal.detail)
            refused.refusal = refusal.detail
            return refused
        }
    }

    final class Session: SessionInspector {
        var generation: Int { 0 }
        func inspect(_ request: consuming Request, in session: SessionContext) -> InspectedRequest {
            switch request {
            case .http(let h):
                return InspectedRequest(request: request, statements: [HTTPRequestInspector.facts(h)])
            case .kubernetes(let k):
                return InspectedRequest(request: request, statements: [HTTPRequestInspector.kubernetesFacts(k, HTTPRequestInspector.facts(k.http))])
            default:
                return InspectedRequest(request: request, statements: [.unparseable("not an HTTP request")])
            }
        }
        func forwarded(_ request: InspectedRequest) {}
    }
}
