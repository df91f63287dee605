import Foundation
import HTTPProxy
import TestSupport
import Testing

// The gate's deny body for a Kubernetes target (`KubernetesStatus`), as real kubectl 1.32 prints it:
// the fixture answers one path with the Status the gate would send, and kubectl must show the rule.

@Suite("Kubernetes deny Status through kubectl", .serialized)
struct KubernetesStatusKubectlTests {
    /// Pushes `status` as the answer for `path` and waits until the fixture has it.
    func answer(_ server: KubeTestServer, _ path: String, _ status: KubernetesStatus) throws {
        try server.push(["op": "answer", "path": path, "status": String(decoding: status.json, as: UTF8.self)])
        try waitUntil("the fixture to take the answer for \(path)", timeout: .seconds(20)) {
            server.requests().contains { (($0["control"] as? [String: Any])?["path"] as? String) == path }
        }
    }

    @Test func kubectlPrintsTheDenyingPolicyAndRule() throws {
        let server = try KubeTestServer()
        let target = "/api/v1/namespaces/prod/pods?limit=500"
        let info = try KubernetesRequestFacts.parse(method: "GET", target: target).get()
        let status = KubernetesStatus.forbidden(policy: "dev-read-only", rule: "default-deny", reason: "no rule allows list here", request: info)
        try answer(server, info.path, status)
        let r = try kubectl(try server.kubeconfig(), ["get", "pods", "-n", "prod"])
        #expect(r.status != 0)
        let expected = "Error from server (Forbidden): tollgate: list pods in namespace \"prod\" denied by policy \"dev-read-only\" "
            + "rule \"default-deny\": no rule allows list here"
        #expect(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines) == expected, "\(r.stderr)")
        // The same for a named object in a group, with the details the Status carries.
        let named = try KubernetesRequestFacts.parse(method: "GET", target: "/api/v1/namespaces/dev/secrets/db-credentials").get()
        try answer(server, named.path, .forbidden(policy: "everyone", rule: "no-secrets", reason: "Secrets are not for assistants", request: named))
        let s = try kubectl(try server.kubeconfig(), ["get", "secret", "db-credentials", "-n", "dev", "-o", "yaml"])
        #expect(s.stderr.contains("Error from server (Forbidden): tollgate: get secrets \"db-credentials\" in namespace \"dev\" denied by "
                                  + "policy \"everyone\" rule \"no-secrets\": Secrets are not for assistants"), "\(s.stderr)")
        #expect(!s.stdout.contains("data:"))
    }

    @Test func kubectlPrintsARefusedRequestAsABadRequest() throws {
        let server = try KubeTestServer()
        let refusal = KubernetesRequestRefusal("watch=yes: expected true, 1, false or 0")
        try answer(server, "/api/v1/namespaces/dev/pods", .badRequest(refusal))
        let r = try kubectl(try server.kubeconfig(), ["get", "pods", "-n", "dev"])
        // kubectl puts its own "Unable to list …" between the reason and a BadRequest's message.
        #expect(r.status != 0 && r.stderr.hasPrefix("Error from server (BadRequest): "), "\(r.stderr)")
        #expect(r.stderr.contains("tollgate: refused: watch=yes: expected true, 1, false or 0"), "\(r.stderr)")
    }
}
