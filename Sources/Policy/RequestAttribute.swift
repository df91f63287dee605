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
        self == .method ? glob(pattern, value) : nameGlob(pattern, value)
    }
}
