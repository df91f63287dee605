import CaptureFormat
import Foundation
import Policy
import ProxyCore

/// The facts a policy decides an HTTP request on: its method (the statement kind, lowercased,
/// and the `method` attribute), its path (`http_path`, without the query), its host and its
/// query's keys (`query_keys`). A
/// method that is not GET, HEAD or OPTIONS counts as a write.
///
/// Kubernetes targets: the facts of the API path (verb, resource, namespace, …) are added in
/// `kubernetesFacts`, the one place where a target of kind `kubernetes` extends the request.
public struct HTTPRequestInspector: RequestInspector {
    public init() {}

    public func makeSession(target: String, parameters: [KeyValue]) -> any SessionInspector { Session() }

    public static func facts(_ request: HTTPRequest) -> StatementInfo {
        let method = request.method.uppercased()
        var info = StatementInfo(kind: method.lowercased(), writes: !["GET", "HEAD", "OPTIONS"].contains(method))
        info.attributes[.method] = method
        info.attributes[.path] = path(of: request.target)
        info.attributes[.host] = hostName(request.host)
        let keys = queryKeys(of: request.target)
        if !keys.isEmpty { info.attributes[.queryKeys] = keys.joined(separator: "&") }
        return info
    }

    /// The query's keys, percent-decoded (`+` read as a space, as forms send it); a key that
    /// decodes to something holding `&` is kept as sent, so that the joined list stays one key per
    /// element.
    static func queryKeys(of target: String) -> [String] {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return [] }
        return parts[1].split(separator: "&").compactMap { pair in
            let raw = String(pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            guard !raw.isEmpty else { return nil }
            let decoded = raw.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? raw
            return decoded.contains("&") ? raw : decoded
        }
    }

    /// The request target's path: up to `?` (a fragment is never sent).
    static func path(of target: String) -> String {
        String(target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }

    /// The Host field without its port, lowercased (RFC 9110 §4.2.3: the host is case-insensitive).
    static func hostName(_ host: String) -> String {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") { return String(host[...close]).lowercased() }
        return String(host.split(separator: ":", maxSplits: 1).first ?? "").lowercased()
    }

    /// Where a target of kind `kubernetes` adds its API facts (verb, group, version, resource,
    /// namespace, name, subresource) to the HTTP ones. Until that exists, a Kubernetes request is
    /// decided on its HTTP facts alone.
    static func kubernetesFacts(_ request: KubernetesRequest, _ info: StatementInfo) -> StatementInfo { info }

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
