import HTTPProxy
import Testing

/// The facts kube-apiserver's RequestInfoFactory computes (requestinfo.go: API prefixes `api` and
/// `apis`, `api` without a group; the special verb `watch` as a path prefix (`proxy` refused); `status`
/// and `finalize` as a namespace's own subresources; a nameless GET is a list or a watch, a
/// nameless DELETE a deletecollection), checked row by row, and the forms the gate refuses.
@Suite("Kubernetes request facts")
struct KubernetesRequestInfoTests {
    /// method, target, then verb, group, version, namespace, resource, name, subresource.
    static let resourceRequests: [(String, String, String, String, String, String, String, String, String)] = [
        ("GET", "/api/v1/namespaces/dev/pods", "list", "", "v1", "dev", "pods", "", ""),
        ("GET", "/api/v1/namespaces/dev/pods?limit=500", "list", "", "v1", "dev", "pods", "", ""),
        ("GET", "/api/v1/namespaces/dev/pods/web-0", "get", "", "v1", "dev", "pods", "web-0", ""),
        ("HEAD", "/api/v1/namespaces/dev/pods/web-0", "get", "", "v1", "dev", "pods", "web-0", ""),
        ("GET", "/api/v1/pods", "list", "", "v1", "", "pods", "", ""),
        ("GET", "/api/v1/namespaces/dev/pods?watch=1&resourceVersion=10", "watch", "", "v1", "dev", "pods", "", ""),
        ("GET", "/api/v1/namespaces/dev/pods?watch=true", "watch", "", "v1", "dev", "pods", "", ""),
        ("GET", "/api/v1/namespaces/dev/pods?watch=false", "list", "", "v1", "dev", "pods", "", ""),
        ("GET", "/api/v1/namespaces/dev/pods?fieldSelector=metadata.name%3Dweb-0&watch=1", "watch", "", "v1", "dev", "pods", "web-0", ""),
        ("GET", "/api/v1/watch/namespaces/dev/pods", "watch", "", "v1", "dev", "pods", "", ""),
        ("GET", "/api/v1/watch/namespaces/dev/pods/web-0", "watch", "", "v1", "dev", "pods", "web-0", ""),
        ("POST", "/api/v1/namespaces/dev/pods", "create", "", "v1", "dev", "pods", "", ""),
        ("PUT", "/api/v1/namespaces/dev/pods/web-0", "update", "", "v1", "dev", "pods", "web-0", ""),
        ("PATCH", "/api/v1/namespaces/dev/pods/web-0", "patch", "", "v1", "dev", "pods", "web-0", ""),
        ("DELETE", "/api/v1/namespaces/dev/pods/web-0", "delete", "", "v1", "dev", "pods", "web-0", ""),
        ("DELETE", "/api/v1/namespaces/dev/pods", "deletecollection", "", "v1", "dev", "pods", "", ""),
        ("GET", "/api/v1/namespaces/dev/pods/web-0/log?follow=true&container=app", "get", "", "v1", "dev", "pods", "web-0", "log"),
        ("GET", "/api/v1/namespaces/dev/pods/web-0/proxy/metrics/x", "get", "", "v1", "dev", "pods", "web-0", "proxy"),
        ("PUT", "/api/v1/namespaces/dev/pods/web-0/status", "update", "", "v1", "dev", "pods", "web-0", "status"),
        ("GET", "/api/v1/namespaces/dev/secrets/db", "get", "", "v1", "dev", "secrets", "db", ""),
        // Namespaces: the namespace object and its own subresources.
        ("GET", "/api/v1/namespaces", "list", "", "v1", "", "namespaces", "", ""),
        ("GET", "/api/v1/namespaces/dev", "get", "", "v1", "dev", "namespaces", "dev", ""),
        ("PUT", "/api/v1/namespaces/dev/status", "update", "", "v1", "dev", "namespaces", "dev", "status"),
        ("PUT", "/api/v1/namespaces/dev/finalize", "update", "", "v1", "dev", "namespaces", "dev", "finalize"),
        ("DELETE", "/api/v1/namespaces/dev", "delete", "", "v1", "dev", "namespaces", "dev", ""),
        // Groups, cluster-scoped resources.
        ("GET", "/apis/apps/v1/namespaces/dev/deployments", "list", "apps", "v1", "dev", "deployments", "", ""),
        ("PATCH", "/apis/apps/v1/namespaces/dev/deployments/web/scale", "patch", "apps", "v1", "dev", "deployments", "web", "scale"),
        ("GET", "/apis/apps/v1/deployments?watch=1", "watch", "apps", "v1", "", "deployments", "", ""),
        ("GET", "/api/v1/nodes/n1", "get", "", "v1", "", "nodes", "n1", ""),
        ("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:aggregate-to-view", "get", "rbac.authorization.k8s.io", "v1", "",
         "clusterroles", "system:aggregate-to-view", ""),
        ("DELETE", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "deletecollection", "rbac.authorization.k8s.io", "v1", "", "clusterroles", "", ""),
        // A percent-encoded character that is not a separator reads as itself, as the server decodes it.
        ("GET", "/api/v1/namespaces/d%65v/pods", "list", "", "v1", "dev", "pods", "", ""),
        // One trailing slash is trimmed, as kube-apiserver trims it.
        ("GET", "/api/v1/namespaces/dev/pods/", "list", "", "v1", "dev", "pods", "", ""),
    ]

    @Test(arguments: resourceRequests.indices)
    func resourceRequest(_ row: Int) throws {
        let (method, target, verb, group, version, namespace, resource, name, subresource) = Self.resourceRequests[row]
        let info = try KubernetesRequestFacts.parse(method: method, target: target).get()
        #expect(info.isResourceRequest, "\(target)")
        #expect(info.verb == verb, "\(method) \(target)")
        #expect(info.apiGroup == group && info.apiVersion == version, "\(target)")
        #expect(info.namespace == namespace, "\(target)")
        #expect(info.resource == resource && info.name == name && info.subresource == subresource, "\(target)")
        #expect(info.upgrade == nil)
    }

    @Test func nonResourceRequestsCarryTheHTTPVerb() throws {
        for (method, target) in [("GET", "/api"), ("GET", "/apis"), ("GET", "/api/v1"), ("GET", "/apis/apps/v1"), ("GET", "/version"),
                                 ("GET", "/openapi/v3/apis/apps/v1"), ("GET", "/healthz"), ("POST", "/apis/apps"), ("GET", "/")] {
            let info = try KubernetesRequestFacts.parse(method: method, target: target + "?timeout=32s").get()
            #expect(!info.isResourceRequest, "\(target)")
            #expect(info.verb == method.lowercased() && info.path == target && info.resource.isEmpty, "\(target)")
            #expect(info.queryKeys == ["timeout"])
        }
    }

    @Test func execIsACreateWhetherWebSocketGETOrSPDYPost() throws {
        let target = "/api/v1/namespaces/dev/pods/web-0/exec?command=sh&command=-c&command=id&container=app&stdin=true&stdout=true&tty=true"
        let ws = try KubernetesRequestFacts.parse(method: "GET", target: target, fields: [
            HTTPField("Connection", "Upgrade"), HTTPField("Upgrade", "websocket"),
            HTTPField("Sec-WebSocket-Protocol", "v5.channel.k8s.io, v4.channel.k8s.io"),
        ]).get()
        let spdy = try KubernetesRequestFacts.parse(method: "POST", target: target, fields: [
            HTTPField("Connection", "Upgrade"), HTTPField("Upgrade", "SPDY/3.1"),
        ]).get()
        for (info, upgrade) in [(ws, KubernetesRequestInfo.Upgrade.websocket), (spdy, .spdy)] {
            // Kubernetes ≥ 1.30 authorizes the WebSocket GET as `create` too: a read-only rule must not admit it.
            #expect(info.verb == "create" && info.subresource == "exec" && info.name == "web-0" && info.namespace == "dev")
            #expect(info.upgrade == upgrade && info.isStreaming)
            #expect(info.command == ["sh", "-c", "id"] && info.container == "app")
        }
        let attach = try KubernetesRequestFacts.parse(method: "GET", target: "/api/v1/namespaces/dev/pods/web-0/attach?stdin=1",
                                                      fields: [HTTPField("Connection", "upgrade"), HTTPField("Upgrade", "websocket")]).get()
        #expect(attach.verb == "create" && attach.subresource == "attach")
        let forward = try KubernetesRequestFacts.parse(method: "GET", target: "/api/v1/namespaces/dev/pods/web-0/portforward?ports=8080",
                                                       fields: [HTTPField("Connection", "Upgrade"), HTTPField("Upgrade", "websocket")]).get()
        #expect(forward.verb == "create" && forward.subresource == "portforward")
    }

    /// target (method GET unless given), and a word the refusal must contain.
    static let refused: [(String, String, [HTTPField], String)] = [
        ("GET", "/api/v1/namespaces//pods", [], "empty path segment"),
        ("GET", "/api//v1/pods", [], "empty path segment"),
        ("GET", "/api/v1/namespaces/dev/pods/../secrets", [], "dot segment"),
        ("GET", "/api/v1/namespaces/./pods", [], "dot segment"),
        ("GET", "/api/v1/namespaces/dev/pods/%2E%2E", [], "dot segment"),
        ("GET", "/api/v1/namespaces/dev%2Fsecrets/pods", [], "encoded slash"),
        // A slash with a combining mark after it is one Character, and still a slash.
        ("GET", "/api/v1/namespaces/dev%2F%CC%B8secrets/pods", [], "encoded slash"),
        ("GET", "/api/v1/namespaces/dev/pods/a%5Cb", [], "encoded slash or backslash"),
        ("GET", "/api/v1/namespaces/dev/pods/%zz", [], "malformed percent-encoding"),
        ("GET", "/api/v1/namespaces/dev/pods/a%00b", [], "control character"),
        ("GET", "/api/v1/namespaces/dev/pods/%C3%28", [], "not UTF-8"),
        ("GET", "/api/v1/namespaces/Dev/pods", [], "not a valid namespace"),
        ("GET", "/api/v1/namespaces/dev/Pods", [], "not a valid resource"),
        ("GET", "/apis/Apps/v1/deployments", [], "not a valid API group"),
        ("GET", "/api/v1/watch", [], "names no resource"),
        ("GET", "/api/v1/proxy/namespaces/dev/pods/web-0/metrics", [], "/proxy/ prefix is not served"),
        ("GET", "/api/v1/watch/namespaces/dev/pods/web-0/log", [], "segments after the name in a /watch/ path"),
        ("POST", "/api/v1/watch/namespaces/dev/pods", [], "POST on a /watch/ path"),
        ("CONNECT", "/api/v1/namespaces/dev/pods", [], "not an API verb"),
        ("GET", "/api/v1/namespaces/dev/pods?watch=yes", [], "watch=yes"),
        ("GET", "/api/v1/namespaces/dev/pods?watch=1&watch=0", [], "'watch' 2 times"),
        ("GET", "/api/v1/namespaces/dev/pods/web-0?watch=maybe", [], "watch=maybe"),
        ("GET", "/api/v1/namespaces/dev/pods?watch=1;x=2", [], "';'"),
        ("GET", "/api/v1/namespaces/dev/pods/web-0/log/extra", [], "segments after the subresource"),
        ("GET", "api/v1/pods", [], "not a path"),
        // A stream into a pod without the upgrade kubectl sends, or with the wrong one.
        ("GET", "/api/v1/namespaces/dev/pods/web-0/exec?command=sh", [], "needs Connection: upgrade"),
        ("POST", "/api/v1/namespaces/dev/pods/web-0/exec?command=sh", [HTTPField("Connection", "Upgrade"), HTTPField("Upgrade", "websocket")],
         "neither"),
        ("GET", "/api/v1/namespaces/dev/pods/web-0/exec?command=sh",
         [HTTPField("Connection", "Upgrade"), HTTPField("Upgrade", "websocket"), HTTPField("Upgrade", "h2c")], "one Upgrade protocol"),
        ("GET", "/api/v1/namespaces/dev/pods/web-0/exec?command=sh&container=a&container=b",
         [HTTPField("Connection", "Upgrade"), HTTPField("Upgrade", "websocket")], "'container' 2 times"),
    ]

    @Test(arguments: refused.indices)
    func refusedForm(_ row: Int) {
        let (method, target, fields, why) = Self.refused[row]
        switch KubernetesRequestFacts.parse(method: method, target: target, fields: fields) {
        case .success(let info): Issue.record("\(method) \(target) accepted as \(info)")
        case .failure(let r): #expect(r.detail.contains(why), "\(target): \(r.detail)")
        }
    }

    @Test func aRequestHeadParsesTheSame() throws {
        let head = RequestHead(method: "GET", target: "/api/v1/namespaces/dev/secrets?watch=1", fields: [HTTPField("Host", "k8s")])
        let info = try KubernetesRequestFacts.parse(head).get()
        #expect(info.verb == "watch" && info.resource == "secrets" && info.queryKeys == ["watch"])
    }
}
