/// What a rule can name about an HTTP request or a Kubernetes API call, beyond its verb and
/// resources. The HTTP and Kubernetes adapters fill them in; a rule naming one never matches a
/// request that lacks it.
public enum RequestAttribute: String, Sendable, Hashable, CaseIterable {
    /// HTTP: the method (GET, POST…), compared without case.
    case method
    /// HTTP: the path, a glob where `*` also crosses `/`.
    case path = "http_path"
    /// HTTP: the host the request names (with its port if it has one), compared without case.
    case host
    /// HTTP: the query's parameter names. A request carries them joined by `&`; a pattern matches
    /// when it matches one of them (`query: [dryRun]`).
    case query
    /// Kubernetes: the path of a non-resource request (discovery `/api`, `/apis/apps/v1`,
    /// `/version`, `/openapi/…`, `/healthz`), as RBAC's `nonResourceURLs`; resource requests have none.
    case nonResourcePath = "non_resource_path"
    /// Kubernetes: the verb the API server would authorize (get, list, watch, create, update,
    /// patch, delete, deletecollection).
    case verb
    case apiGroup = "api_group"
    case apiVersion = "api_version"
    case resource
    case namespace
    case name
    /// exec, attach, portforward, log, proxy…
    case subresource

    /// The key a rule's `when:` uses.
    public var key: String { rawValue }

    /// The verbs a `verb:` pattern may name: Kubernetes' resource verbs, and the lowercased HTTP
    /// methods non-resource requests carry. A pattern matching none of them is a typo.
    public static let kubernetesVerbs = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection",
                                         "post", "put", "head", "options"]

    func matches(_ pattern: String, _ value: String) -> Bool {
        switch self {
        case .method, .host: glob(pattern, value)
        case .query: value.split(separator: "&").contains { nameGlob(pattern, String($0)) }
        default: nameGlob(pattern, value)
        }
    }

    /// Why `pattern` can never match a value of this attribute, or nil: the loader refuses such
    /// rules with their line rather than let them silently match nothing.
    public func problem(with pattern: String) -> String? {
        switch self {
        case .verb:
            if !Self.kubernetesVerbs.contains(where: { nameGlob(pattern, $0) }) {
                return "unknown verb '\(pattern)' (\(Self.kubernetesVerbs.joined(separator: ", ")))"
            }
        case .method:
            if pattern.utf8.contains(where: { !($0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)) }) {
                return "'\(pattern)' is not an HTTP method"
            }
        case .path, .nonResourcePath:
            if !pattern.hasPrefix("/") && !pattern.hasPrefix("*") { return "'\(pattern)' does not start with '/'" }
        case .apiGroup, .apiVersion, .resource, .namespace, .subresource:
            // Kubernetes names these in lowercase: `Pods` or `Secrets` would never match.
            if pattern != pattern.lowercased() { return "'\(pattern)' has upper case; Kubernetes \(key) names are lowercase" }
        case .host, .query, .name:
            break
        }
        return nil
    }
}
