// What kube-apiserver's RequestInfoFactory (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go)
// computes from a request, so that a policy decides on the same facts Kubernetes RBAC would.
// Pure: method, path, query and headers in; the facts or a refusal out.
//
// Where kube-apiserver is lenient or its result depends on things the gate cannot see (a path it
// would clean or reject later, a percent-encoded slash, an odd `watch=` value), the gate refuses
// rather than guess, with a message that says what and where.

/// The facts of one request to the Kubernetes API.
public struct KubernetesRequestInfo: Sendable, Equatable {
    /// A call on an API resource (`/api/v1/…`, `/apis/GROUP/VERSION/…` with a resource), as opposed
    /// to discovery, `/healthz`, `/version`, `/openapi/…` (non-resource URLs).
    public var isResourceRequest: Bool
    /// The decoded path.
    public var path: String
    /// get, list, watch, create, update, patch, delete, deletecollection for resource requests;
    /// the lowercased HTTP method otherwise.
    public var verb: String
    /// "api" or "apis"; empty for non-resource requests.
    public var apiPrefix: String = ""
    /// "" for the core group (`/api/v1`).
    public var apiGroup: String = ""
    public var apiVersion: String = ""
    /// "" for cluster-scoped resources and for requests across all namespaces.
    public var namespace: String = ""
    public var resource: String = ""
    public var name: String = ""
    public var subresource: String = ""
    /// The path segments after the subresource (a `proxy` subresource's path), not interpreted.
    public var extraParts: [String] = []
    /// How a streaming subresource (exec, attach, portforward) asked to upgrade: kubectl ≥ 1.30
    /// sends GET with `Upgrade: websocket`, older clients POST with `Upgrade: SPDY/3.1`.
    public var upgrade: Upgrade?
    /// For exec: the command and its arguments (`command=` parameters, in order); for exec and
    /// attach: the container (`container=`), "" when the pod's default.
    public var command: [String] = []
    public var container: String = ""
    /// The query's parameter names, in order, without repeats.
    public var queryKeys: [String] = []

    public enum Upgrade: String, Sendable, Equatable { case websocket, spdy }

    /// Subresources that open an interactive stream into a pod.
    public static let streamingSubresources: Set<String> = ["exec", "attach", "portforward"]

    public var isStreaming: Bool { isResourceRequest && Self.streamingSubresources.contains(subresource) }
}

/// Why the gate will not compute facts for a request: it says what is wrong and where.
public struct KubernetesRequestRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var detail: String
    public init(_ detail: String) { self.detail = detail }
    public var description: String { detail }
}

public enum KubernetesRequestFacts {
    /// kube-apiserver's `specialVerbs`: a path `/api/v1/watch/…` or `/api/v1/proxy/…`.
    static let specialVerbs: Set<String> = ["proxy", "watch"]
    /// kube-apiserver's `namespaceSubresources`: `/api/v1/namespaces/NS/status` is the namespace's own.
    static let namespaceSubresources: Set<String> = ["status", "finalize"]

    /// The facts of `method target` (target in origin-form: path and query) with its header fields.
    public static func parse(method: String, target: String, fields: [HTTPField] = []) -> Result<KubernetesRequestInfo, KubernetesRequestRefusal> {
        do { return .success(try info(method: method, target: target, fields: fields)) } catch let r as KubernetesRequestRefusal {
            return .failure(r)
        } catch {
            return .failure(KubernetesRequestRefusal("\(error)"))
        }
    }

    /// The same for a parsed request head.
    public static func parse(_ head: RequestHead) -> Result<KubernetesRequestInfo, KubernetesRequestRefusal> {
        parse(method: head.method, target: head.target, fields: head.fields)
    }

    static func info(method: String, target: String, fields: [HTTPField]) throws -> KubernetesRequestInfo {
        let (rawPath, rawQuery) = split(target)
        guard rawPath.hasPrefix("/") else { throw KubernetesRequestRefusal("the request target '\(target)' is not a path") }
        let segments = try pathSegments(rawPath)
        let query = try KubernetesQuery(rawQuery)
        let decodedPath = "/" + segments.joined(separator: "/")
        var info = KubernetesRequestInfo(isResourceRequest: false, path: decodedPath, verb: method.lowercased())
        for (k, _) in query.pairs where !info.queryKeys.contains(k) { info.queryKeys.append(k) }

        // Non-resource URLs: fewer than three segments, an unknown prefix, or a group prefix
        // without group, version and resource (discovery: /api/v1, /apis/apps/v1).
        var parts = segments[...]
        guard parts.count >= 3, parts.first == "api" || parts.first == "apis" else { return info }
        let prefix = parts.removeFirst()
        if prefix == "apis" {
            guard parts.count >= 3 else { return info }
            info.apiGroup = try checked(parts.removeFirst(), as: .group)
        }
        info.apiPrefix = prefix
        info.isResourceRequest = true
        info.apiVersion = try checked(parts.removeFirst(), as: .version)

        // At least one segment is left: three or more were there, and at most two were taken.
        var verbFromPath = false
        if specialVerbs.contains(parts.first!) {
            guard parts.count >= 2 else {
                throw KubernetesRequestRefusal("'\(decodedPath)': /\(parts.first!)/ names no resource")
            }
            info.verb = parts.removeFirst()
            verbFromPath = true
            // `/proxy/…` names no subresource, so a rule on `subresource: proxy` would not see it;
            // current servers proxy through `…/NAME/proxy` only.
            guard info.verb == "watch" else {
                throw KubernetesRequestRefusal("'\(decodedPath)': the /proxy/ prefix is not served; use …/NAME/proxy")
            }
            // The deprecated prefix form (`/watch/` instead of `?watch=1`) takes only GET.
            guard method == "GET" || method == "HEAD" else {
                throw KubernetesRequestRefusal("'\(decodedPath)': \(method) on a /\(info.verb)/ path")
            }
        } else {
            switch method {
            case "POST": info.verb = "create"
            case "GET", "HEAD": info.verb = "get"
            case "PUT": info.verb = "update"
            case "PATCH": info.verb = "patch"
            case "DELETE": info.verb = "delete"
            default: throw KubernetesRequestRefusal("'\(decodedPath)': the method \(method) is not an API verb")
            }
        }

        if parts.first == "namespaces" {
            if parts.count > 1 {
                info.namespace = try checked(parts[parts.startIndex + 1], as: .namespace)
                // /namespaces/NS/RESOURCE…: the resource is inside the namespace; /namespaces/NS/status
                // and /finalize are the namespace object's own subresources.
                if parts.count > 2 && !namespaceSubresources.contains(parts[parts.startIndex + 2]) {
                    parts = parts.dropFirst(2)
                }
            }
        }
        let p = Array(parts)
        info.resource = try checked(p[0], as: .resource)
        if p.count >= 2 { info.name = try checked(p[1], as: .name) }
        if p.count >= 3 {
            if verbFromPath {
                // kube-apiserver reads no subresource after /watch/; a watch has none.
                throw KubernetesRequestRefusal("'\(decodedPath)': segments after the name in a /watch/ path")
            } else {
                info.subresource = try checked(p[2], as: .subresource)
                info.extraParts = Array(p[3...])
                if !info.extraParts.isEmpty && info.subresource != "proxy" {
                    throw KubernetesRequestRefusal("'\(decodedPath)': segments after the subresource '\(info.subresource)'")
                }
            }
        }

        // A GET without a name reads a collection: a list, or a watch when `watch` says so.
        if info.name.isEmpty && info.verb == "get" {
            info.verb = try query.watch() ? "watch" : "list"
            if let n = try query.fieldSelectorName() { info.name = n }
        } else {
            // Still checked, so that a malformed `watch` is refused whatever the path.
            _ = try query.watch()
        }
        if info.name.isEmpty && info.verb == "delete" { info.verb = "deletecollection" }

        // Streams into a pod. Kubernetes ≥ 1.30 authorizes a WebSocket GET on them as `create`
        // too (AuthorizePodWebsocketUpgradeCreatePermission): a read-only rule must not let one in.
        if info.isStreaming {
            info.upgrade = try upgrade(fields, method: method, path: decodedPath)
            info.verb = "create"
            if info.subresource == "exec" { info.command = query.values("command") }
            if info.subresource != "portforward" {
                let c = query.values("container")
                guard c.count <= 1 else { throw KubernetesRequestRefusal("the query names 'container' \(c.count) times") }
                info.container = c.first ?? ""
            }
        }
        return info
    }

    /// Exec, attach and port-forward open a stream: a WebSocket GET or an SPDY POST, nothing else.
    static func upgrade(_ fields: [HTTPField], method: String, path: String) throws -> KubernetesRequestInfo.Upgrade {
        let connection = fields.listElements("connection").map { $0.lowercased() }
        let upgrades = fields.listElements("upgrade").map { $0.lowercased() }
        guard connection.contains("upgrade"), upgrades.count == 1 else {
            throw KubernetesRequestRefusal("'\(path)': a stream into a pod needs Connection: upgrade and one Upgrade protocol")
        }
        switch (method, upgrades[0]) {
        case ("GET", "websocket"): return .websocket
        case ("POST", let u) where u.hasPrefix("spdy/"): return .spdy
        default:
            throw KubernetesRequestRefusal("'\(path)': \(method) with Upgrade: \(upgrades[0]) is neither kubectl's WebSocket GET nor the SPDY POST")
        }
    }

    static func split(_ target: String) -> (Substring, Substring) {
        guard let q = target.firstIndex(of: "?") else { return (target[...], "") }
        return (target[..<q], target[target.index(after: q)...])
    }

    /// The path's segments, percent-decoded. kube-apiserver splits the decoded path on `/` after
    /// trimming slashes at both ends; an empty segment, a dot segment or an encoded slash would
    /// let the gate and the server see different resources, so they are refused.
    static func pathSegments(_ raw: Substring) throws -> [String] {
        var trimmed = raw.dropFirst()
        if trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        if trimmed.isEmpty { return [] }
        return try trimmed.split(separator: "/", omittingEmptySubsequences: false).map { raw in
            guard !raw.isEmpty else { throw KubernetesRequestRefusal("'\(rawPathForError(raw: trimmed))': an empty path segment (//)") }
            let s = try percentDecoded(raw, what: "path segment '\(raw)'")
            // Bytes, not Foundation's `contains` (a string search, 4 µs a request, issue 20); also
            // stricter: a slash followed by a combining mark is one Character, but still a slash.
            if s.utf8.contains(UInt8(ascii: "/")) || s.utf8.contains(UInt8(ascii: "\\")) { throw KubernetesRequestRefusal("path segment '\(raw)': an encoded slash or backslash") }
            if s == "." || s == ".." { throw KubernetesRequestRefusal("path segment '\(raw)': a dot segment") }
            return s
        }
    }

    static func rawPathForError(raw: Substring) -> String { "/" + raw }

    /// `%XX` decoded; the result must be UTF-8 without control characters.
    /// `what` is only formatted for a refusal: every request's path goes through here (issue 20).
    static func percentDecoded(_ s: Substring, what: @autoclosure () -> String, plusIsSpace: Bool = false) throws -> String {
        // Printable ASCII with nothing to decode (nearly every segment) is its own result: the
        // checks below could not fail on it.
        if !s.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) {
            return String(s)
        }
        var bytes: [UInt8] = []
        var u = Array(s.utf8)[...]
        while let b = u.popFirst() {
            if b == UInt8(ascii: "%") {
                guard u.count >= 2, let hi = hex(u[u.startIndex]), let lo = hex(u[u.startIndex + 1]) else {
                    throw KubernetesRequestRefusal("\(what()): a malformed percent-encoding")
                }
                bytes.append(hi << 4 | lo)
                u = u.dropFirst(2)
            } else if plusIsSpace && b == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else {
                bytes.append(b)
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw KubernetesRequestRefusal("\(what()): not UTF-8") }
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw KubernetesRequestRefusal("\(what()): a control character")
        }
        return text
    }

    static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    enum SegmentKind: String { case group = "API group", version = "API version", namespace, resource, name, subresource }

    /// Each interpreted segment has the shape Kubernetes gives it; anything else is refused
    /// rather than passed to a server that might read it differently.
    static func checked(_ s: String, as kind: SegmentKind) throws -> String {
        let ok: Bool
        switch kind {
        case .group: ok = isDNSSubdomain(s)
        case .version, .namespace, .resource, .subresource: ok = isDNSLabel(s)
        case .name: ok = isPathSegmentName(s)
        }
        guard ok else { throw KubernetesRequestRefusal("'\(s)' is not a valid \(kind.rawValue)") }
        return s
    }

    /// RFC 1123 label as Kubernetes checks it: lowercase letters, digits, '-', at most 63.
    static func isDNSLabel(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard !u.isEmpty, u.count <= 63, u.first != UInt8(ascii: "-"), u.last != UInt8(ascii: "-") else { return false }
        return u.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "-") }
    }

    static func isDNSSubdomain(_ s: String) -> Bool {
        s.utf8.count <= 253 && s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNSLabel(String($0)) }
    }

    /// kube-apiserver's `path.IsValidPathSegmentName`, plus no whitespace (no object name has any).
    static func isPathSegmentName(_ s: String) -> Bool {
        !s.isEmpty && s != "." && s != ".." && !s.contains("/") && !s.contains("%") && !s.contains(where: \.isWhitespace)
    }
}

/// The query parameters the facts depend on: `watch` and `fieldSelector`.
struct KubernetesQuery {
    var pairs: [(String, String)] = []

    init(_ raw: Substring) throws {
        guard !raw.isEmpty else { return }
        // Go's url.ParseQuery refuses ';' and drops the pair, so a server would see less than the gate.
        if raw.contains(";") { throw KubernetesRequestRefusal("the query has a ';'") }
        for pair in raw.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = try KubernetesRequestFacts.percentDecoded(kv[0], what: "query key", plusIsSpace: true)
            let value = kv.count > 1 ? try KubernetesRequestFacts.percentDecoded(kv[1], what: "query parameter '\(key)'", plusIsSpace: true) : ""
            pairs.append((key, value))
        }
    }

    func values(_ key: String) -> [String] { pairs.filter { $0.0 == key }.map(\.1) }

    /// kube-apiserver takes any first `watch` value but "0" and "false" as true; the gate takes
    /// exactly one of true/1/false/0 and refuses the rest.
    func watch() throws -> Bool {
        let v = values("watch")
        if v.isEmpty { return false }
        guard v.count == 1 else { throw KubernetesRequestRefusal("the query names 'watch' \(v.count) times") }
        switch v[0].lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: throw KubernetesRequestRefusal("watch=\(v[0]): expected true, 1, false or 0")
        }
    }

    /// The name a list or watch is narrowed to by `fieldSelector=metadata.name=NAME` (kubectl
    /// `get pod NAME -w`), as kube-apiserver reports it.
    func fieldSelectorName() throws -> String? {
        let v = values("fieldSelector")
        if v.isEmpty { return nil }
        guard v.count == 1 else { throw KubernetesRequestRefusal("the query names 'fieldSelector' \(v.count) times") }
        if v[0].contains("\\") { throw KubernetesRequestRefusal("fieldSelector: escapes are not accepted") }
        for term in v[0].split(separator: ",") {
            for op in ["==", "="] where term.hasPrefix("metadata.name" + op) {
                let name = String(term.dropFirst(("metadata.name" + op).count))
                if KubernetesRequestFacts.isPathSegmentName(name) { return name }
            }
        }
        return nil
    }
}
