import Foundation
import HTTPProxy
import Testing

/// The deny body for a Kubernetes target: a meta/v1 Status as kube-apiserver sends one (kind,
/// apiVersion, metadata, status, message, reason, details, code). GateTests run it through kubectl.
@Suite("Kubernetes Status")
struct KubernetesStatusTests {
    func object(_ s: KubernetesStatus) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(s.json)) as? [String: Any])
    }

    @Test func aDenyIsAForbiddenStatusNamingPolicyRuleAndObject() throws {
        let info = try KubernetesRequestFacts.parse(method: "PATCH", target: "/apis/apps/v1/namespaces/prod/deployments/web/scale").get()
        let status = KubernetesStatus.forbidden(policy: "dev-read-only", rule: "default-deny", reason: "no rule allows patch here", request: info)
        let o = try object(status)
        #expect(o["kind"] as? String == "Status" && o["apiVersion"] as? String == "v1")
        #expect((o["metadata"] as? [String: Any])?.isEmpty == true)
        #expect(o["status"] as? String == "Failure" && o["reason"] as? String == "Forbidden" && o["code"] as? Int == 403)
        #expect(o["message"] as? String == "tollgate: patch deployments/scale \"web\" in namespace \"prod\" denied by policy \"dev-read-only\" "
                + "rule \"default-deny\": no rule allows patch here")
        let details = try #require(o["details"] as? [String: Any])
        #expect(details["name"] as? String == "web" && details["group"] as? String == "apps" && details["kind"] as? String == "deployments")

        let response = status.response
        #expect(response.status == 403 && !response.closesConnection)
        #expect(response.fields.values("content-type") == ["application/json"])
        #expect(response.fields.values("content-length") == [String(response.body.count)])
        #expect(String(decoding: response.serialized.prefix(24), as: UTF8.self) == "HTTP/1.1 403 Forbidden\r\n")
    }

    @Test func theCoreGroupAndANamelessListLeaveThoseDetailsOut() throws {
        let info = try KubernetesRequestFacts.parse(method: "GET", target: "/api/v1/secrets").get()
        let o = try object(.forbidden(policy: "p", rule: "no-secrets", reason: "no", request: info))
        #expect(o["details"] as? [String: String] == ["kind": "secrets"])
        #expect(o["message"] as? String == "tollgate: list secrets denied by policy \"p\" rule \"no-secrets\": no")
        let discovery = try KubernetesRequestFacts.parse(method: "GET", target: "/version").get()
        let d = try object(.forbidden(policy: "", rule: "default-deny", reason: "no policy applies", request: discovery))
        #expect(d["details"] == nil)
        #expect(d["message"] as? String == "tollgate: get /version denied by rule \"default-deny\": no policy applies")
    }

    @Test func aRefusalIsABadRequest() throws {
        guard case .failure(let refusal) = KubernetesRequestFacts.parse(method: "GET", target: "/api/v1/namespaces//pods") else {
            Issue.record("accepted"); return
        }
        let o = try object(.badRequest(refusal))
        #expect(o["reason"] as? String == "BadRequest" && o["code"] as? Int == 400)
        #expect((o["message"] as? String)?.hasPrefix("tollgate: refused: ") == true)
    }
}

@Suite("Impersonation fields")
struct ImpersonationFieldsTests {
    let request = [HTTPField("Host", "k8s"), HTTPField("Impersonate-User", "system:admin"), HTTPField("impersonate-group", "system:masters"),
                   HTTPField("Impersonate-Uid", "0"), HTTPField("Impersonate-Extra-Scopes", "all"), HTTPField("Accept", "application/json")]

    @Test func everyClientImpersonationFieldIsRemoved() throws {
        let out = try ImpersonationFields.rewrite(request)
        #expect(out == [HTTPField("Host", "k8s"), HTTPField("Accept", "application/json")])
    }

    @Test func theGateSetsUserAndGroupsFromTheIdentity() throws {
        let out = try ImpersonationFields.rewrite(request, impersonating: .init(user: "bot@example.com", groups: ["assistants", "dev-team"]))
        #expect(out == [HTTPField("Host", "k8s"), HTTPField("Accept", "application/json"), HTTPField("Impersonate-User", "bot@example.com"),
                        HTTPField("Impersonate-Group", "assistants"), HTTPField("Impersonate-Group", "dev-team")])
    }

    @Test(arguments: [("bot\r\nX-Evil: 1", "control character"), ("", "empty user"), (" bot", "surrounding spaces")])
    func anIdentityThatCannotTravelInAFieldIsRefused(_ user: String, _ why: String) {
        #expect(throws: ImpersonationFields.Refusal.self) { try ImpersonationFields.rewrite([], impersonating: .init(user: user, groups: [])) }
        do { _ = try ImpersonationFields.rewrite([], impersonating: .init(user: user, groups: [])) } catch { #expect(error.detail.contains(why)) }
    }

    @Test func aGroupWithACommaIsRefused() {
        #expect(throws: ImpersonationFields.Refusal.self) {
            try ImpersonationFields.rewrite([], impersonating: .init(user: "bot", groups: ["a,system:masters"]))
        }
    }
}
