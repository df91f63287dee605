import CaptureFormat
import Policy

/// The facts a policy decides an HTTP or Kubernetes request on, and the capture's record of a
/// Kubernetes call: one place that maps the request's facts to what rules and captures name.
extension KubernetesRequestInfo {
    /// The statement a policy decides: `kind` is the verb; the attributes are those a rule may
    /// name (`verb`, `api_group`, `api_version`, `resource`, `namespace`, `name`, `subresource`,
    /// and for non-resource requests `non_resource_path`), with the HTTP ones (`method`, `host`,
    /// `http_path`, `query`). An empty fact is left out, so a rule naming it does not match: a
    /// cluster-wide list has no `namespace`, and `namespace: dev` does not allow it.
    public func statementInfo(method: String, host: String) -> StatementInfo {
        var s = StatementInfo(kind: verb)
        s.writes = !["get", "list", "watch", "head", "options"].contains(verb)
        var a: [RequestAttribute: String] = [.verb: verb, .method: method, .path: path]
        if !host.isEmpty { a[.host] = host }
        if !queryKeys.isEmpty { a[.query] = queryKeys.joined(separator: "&") }
        if isResourceRequest {
            // The core group is "" on the wire; rules name it `core` (the loader refuses empty names,
            // and no API group is called `core`).
            a[.apiGroup] = apiGroup.isEmpty ? Self.coreGroupName : apiGroup
            a[.apiVersion] = apiVersion
            a[.resource] = resource
            if !namespace.isEmpty { a[.namespace] = namespace }
            if !name.isEmpty { a[.name] = name }
            if !subresource.isEmpty { a[.subresource] = subresource }
        } else {
            a[.nonResourcePath] = path
        }
        s.attributes = a
        return s
    }

    /// How rules name Kubernetes' core API group (`/api/v1`: pods, secrets, namespaces…).
    public static let coreGroupName = "core"

    /// The capture's record of the call, around the recorded HTTP request.
    public func captureRequest(http: HTTPRequest) -> KubernetesRequest {
        KubernetesRequest(http: http, verb: verb, apiGroup: apiGroup, apiVersion: apiVersion, resource: resource,
                          namespace: namespace, name: name, subresource: subresource, command: command, container: container)
    }
}

extension RequestHead {
    /// The statement a policy decides for a plain HTTP target: the method is its kind; `method`,
    /// `host`, `http_path` (the path percent-decoded, without the query) and `query` (parameter
    /// names). A path the gate cannot compare as the server would read it (an encoded slash, a dot
    /// or empty segment, a malformed escape) is refused: `/%61dmin` must not slip past `/admin/*`.
    public func httpStatementInfo() throws(KubernetesRequestRefusal) -> StatementInfo {
        let (rawPath, rawQuery) = KubernetesRequestFacts.split(target)
        guard rawPath.hasPrefix("/") || target == "*" else { throw KubernetesRequestRefusal("the request target '\(target)' is not a path") }
        let segments: [String]
        do { segments = try KubernetesRequestFacts.pathSegments(rawPath) } catch let r as KubernetesRequestRefusal { throw r } catch {
            throw KubernetesRequestRefusal("\(error)")
        }
        var path = "/" + segments.joined(separator: "/")
        if rawPath.count > 1 && rawPath.hasSuffix("/") { path += "/" }
        var s = StatementInfo(kind: method.lowercased())
        s.writes = !["GET", "HEAD", "OPTIONS"].contains(method)
        var a: [RequestAttribute: String] = [.method: method, .path: target == "*" ? "*" : path]
        if !host.isEmpty { a[.host] = host }
        let query: KubernetesQuery
        do { query = try KubernetesQuery(rawQuery) } catch let r as KubernetesRequestRefusal { throw r } catch {
            throw KubernetesRequestRefusal("\(error)")
        }
        var keys: [String] = []
        for (k, _) in query.pairs where !k.isEmpty && !keys.contains(k) { keys.append(k) }
        if !keys.isEmpty { a[.query] = keys.joined(separator: "&") }
        s.attributes = a
        return s
    }
}
