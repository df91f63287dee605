/// What a rule can name about an HTTP request or a Kubernetes API call, beyond its verb and
/// resources. The HTTP and Kubernetes adapters fill them in; a rule naming one never matches a
/// request that lacks it.
public enum RequestAttribute: String, Sendable, Hashable, CaseIterable {
    /// HTTP: the method (GET, POST…), compared without case.
    case method
    /// HTTP: the path, a glob where `*` also crosses `/`.
    case path = "http_path"
    /// HTTP: the host the request names.
    case host
    /// HTTP: the keys of the query string, percent-decoded, `&`-joined; a rule's glob matches
    /// when it matches any one key (`query_keys: [debug, "*token*"]`). A request without a
    /// query has no value, so such a rule never matches it.
    case queryKeys = "query_keys"
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

    func matches(_ pattern: String, _ value: String) -> Bool {
        switch self {
        case .method: glob(pattern, value)
        case .queryKeys: value.split(separator: "&").contains { nameGlob(pattern, String($0)) }
        default: nameGlob(pattern, value)
        }
    }
}
