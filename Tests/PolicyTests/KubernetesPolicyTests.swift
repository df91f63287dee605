import HTTPProxy
import Policy
import ProxyCore
import Testing

/// The issue's Kubernetes rules as a policy file says them, decided on the facts the gate computes
/// from real request lines (`KubernetesRequestFacts`): read-only in namespace `dev`, `exec` needs
/// approval, `secrets` denied everywhere.
@Suite("Kubernetes policies as written")
struct KubernetesPolicyTests {
    static let policyYAML = """
          - name: dev-read-only
            who: {groups: [assistants]}
            rules:
              - name: discovery
                when: {verb: get, non_resource_path: [/api, /api/*, /apis, /apis/*, /version, /openapi/*]}
                then: allow
              - name: read-dev
                when: {verb: [get, list, watch], namespace: dev}
                then: allow
              - name: exec-needs-approval
                when: {subresource: exec}
                then: review
                approvers: [sre]
              - name: no-secrets
                when: {resource: secrets}
                then: deny
                message: Secrets are not for assistants
        """

    static func policies(_ list: String = policyYAML) throws -> PolicySet {
        let yaml = """
            proxy: {id: t, captures: /nonexistent, signing_key: /nonexistent}
            identity: {issuer: "http://127.0.0.1:9400", audiences: [tollgate]}
            targets:
              db: {protocol: postgres, listen: 127.0.0.1:6499, upstream: 127.0.0.1:5499, credentials: {user: gate}}
            policies:
            \(list)
            """
        return try GateConfig.parse(yaml: yaml, file: "t.yaml").policies
    }

    let who = Principal(subject: "bot@example.com", groups: ["assistants"])
    static let websocket = [HTTPField("Connection", "Upgrade"), HTTPField("Upgrade", "websocket")]
    static let spdy = [HTTPField("Connection", "Upgrade"), HTTPField("Upgrade", "SPDY/3.1")]

    func decide(_ set: PolicySet, _ method: String, _ target: String, _ fields: [HTTPField] = []) throws -> PolicyDecision {
        let info = try KubernetesRequestFacts.parse(method: method, target: target, fields: fields).get()
        return set.decide([info.statementInfo(method: method, host: "k8s.example")], who: who, target: "k8s", path: "http")
    }

    /// method, target, upgrade fields, then the action and the deciding rule.
    static let cases: [(String, String, [HTTPField], Action, String)] = [
        // kubectl get pods -n dev: discovery, then the list (and -w: the watch).
        ("GET", "/api?timeout=32s", [], .allow, "discovery"),
        ("GET", "/apis/apps/v1?timeout=32s", [], .allow, "discovery"),
        ("GET", "/api/v1/namespaces/dev/pods?limit=500", [], .allow, "read-dev"),
        ("GET", "/api/v1/namespaces/dev/pods?watch=1&resourceVersion=7", [], .allow, "read-dev"),
        ("GET", "/api/v1/namespaces/dev/pods/web-0", [], .allow, "read-dev"),
        ("GET", "/api/v1/namespaces/dev/pods/web-0/log?follow=true", [], .allow, "read-dev"),
        ("GET", "/apis/apps/v1/namespaces/dev/deployments", [], .allow, "read-dev"),
        // Read-only: no write in dev, nothing outside dev, nothing across namespaces.
        ("DELETE", "/api/v1/namespaces/dev/pods/web-0", [], .deny, "default-deny"),
        ("DELETE", "/api/v1/namespaces/dev/pods", [], .deny, "default-deny"),
        ("POST", "/api/v1/namespaces/dev/pods", [], .deny, "default-deny"),
        ("PATCH", "/apis/apps/v1/namespaces/dev/deployments/web/scale", [], .deny, "default-deny"),
        ("GET", "/api/v1/namespaces/prod/pods", [], .deny, "default-deny"),
        ("GET", "/api/v1/pods", [], .deny, "default-deny"),
        ("GET", "/api/v1/namespaces/dev", [], .allow, "read-dev"),
        ("GET", "/api/v1/namespaces", [], .deny, "default-deny"),
        // Exec needs approval, as kubectl ≥ 1.30 sends it and as older clients do; a read-only
        // rule does not let the WebSocket GET in.
        ("GET", "/api/v1/namespaces/dev/pods/web-0/exec?command=sh&stdin=true&tty=true", websocket, .review, "exec-needs-approval"),
        ("POST", "/api/v1/namespaces/dev/pods/web-0/exec?command=sh&stdin=true&tty=true", spdy, .review, "exec-needs-approval"),
        ("GET", "/api/v1/namespaces/prod/pods/db-0/exec?command=id&stdout=true", websocket, .review, "exec-needs-approval"),
        // Attach and port-forward are not exec, and no rule allows them.
        ("GET", "/api/v1/namespaces/dev/pods/web-0/attach?stdout=true", websocket, .deny, "default-deny"),
        ("GET", "/api/v1/namespaces/dev/pods/web-0/portforward?ports=80", websocket, .deny, "default-deny"),
        // Secrets denied everywhere, even where reads are allowed.
        ("GET", "/api/v1/namespaces/dev/secrets", [], .deny, "no-secrets"),
        ("GET", "/api/v1/namespaces/dev/secrets/db-credentials", [], .deny, "no-secrets"),
        ("GET", "/api/v1/namespaces/dev/secrets?watch=true", [], .deny, "no-secrets"),
        ("GET", "/api/v1/secrets", [], .deny, "no-secrets"),
        ("GET", "/api/v1/watch/namespaces/dev/secrets", [], .deny, "no-secrets"),
    ]

    @Test(arguments: cases.indices)
    func decision(_ row: Int) throws {
        let (method, target, fields, action, rule) = Self.cases[row]
        let d = try decide(try Self.policies(), method, target, fields)
        #expect(d.action == action && d.rule == rule, "\(method) \(target): \(d.action) by \(d.rule) (\(d.reason))")
        if action == .review { #expect(d.approvers == ["sre"]) }
        if rule == "no-secrets" { #expect(d.reason == "Secrets are not for assistants" && d.policy == "dev-read-only") }
    }

    @Test func theCoreGroupIsNamedCore() throws {
        let set = try Self.policies("""
              - name: p
                who: {groups: [assistants]}
                rules:
                  - {name: core-reads, when: {api_group: core, verb: [get, list]}, then: allow}
            """)
        #expect(try decide(set, "GET", "/api/v1/namespaces/x/configmaps").action == .allow)
        #expect(try decide(set, "GET", "/apis/apps/v1/namespaces/x/deployments").action == .deny)
    }

    @Test func httpAttributesNameMethodPathAndQueryKeys() throws {
        let set = try Self.policies("""
              - name: p
                who: {groups: [assistants]}
                rules:
                  - {name: reads, when: {method: [GET, HEAD], http_path: "/api/*"}, then: allow}
                  - {name: no-dry-run-tricks, when: {query: [dryRun, "debug*"]}, then: deny}
            """)
        func decide(_ method: String, _ target: String) throws -> Action {
            let head = RequestHead(method: method, target: target, fields: [HTTPField("Host", "orders.example")])
            return set.decide([try head.httpStatementInfo()], who: who, target: "api", path: "http").action
        }
        #expect(try decide("GET", "/api/orders?limit=5") == .allow)
        #expect(try decide("get", "/api/orders") == .allow, "methods compare without case")
        #expect(try decide("POST", "/api/orders") == .deny)
        #expect(try decide("GET", "/api/orders?limit=5&debugLevel=3") == .deny)
        #expect(try decide("GET", "/api/orders?debug%4Cevel=3") == .deny, "query keys are decoded")
        #expect(try decide("GET", "/admin") == .deny)
    }

    /// A path is compared as the server will read it: percent-decoded; what could read differently
    /// (an encoded slash, dot segments, `//`) is refused rather than matched.
    @Test func httpPathsAreComparedDecodedOrRefused() throws {
        let set = try Self.policies("""
              - name: p
                who: {groups: [assistants]}
                rules:
                  - {name: api, when: {http_path: "/api/*", host: "Orders.Example"}, then: allow}
                  - {name: no-admin, when: {http_path: ["/api/admin", "/api/admin/*"]}, then: deny}
            """)
        func head(_ target: String) -> RequestHead { RequestHead(method: "GET", target: target, fields: [HTTPField("Host", "orders.example")]) }
        func decide(_ target: String) throws -> PolicyDecision {
            set.decide([try head(target).httpStatementInfo()], who: who, target: "api", path: "http")
        }
        #expect(try decide("/api/orders").action == .allow, "hosts compare without case")
        #expect(try decide("/api/%61dmin/users").rule == "no-admin")
        #expect(try decide("/api/admin/").rule == "no-admin")
        for target in ["/api/admin%2Fusers", "/api/x/../admin", "/api//admin", "/api/%zz", "/api/./admin"] {
            #expect(throws: KubernetesRequestRefusal.self, "\(target)") { try head(target).httpStatementInfo() }
        }
    }

    /// A rule naming a verb Kubernetes does not have, a resource in capitals or a path without its
    /// slash would match nothing: the loader refuses it with its line.
    @Test(arguments: [
        ("{name: x, when: {verb: gett}, then: allow}", "unknown verb 'gett'"),
        ("{name: x, when: {verb: [get, lst]}, then: allow}", "unknown verb 'lst'"),
        ("{name: x, when: {resource: Secrets}, then: deny}", "has upper case"),
        ("{name: x, when: {namespace: Dev}, then: allow}", "has upper case"),
        ("{name: x, when: {non_resource_path: api}, then: allow}", "does not start with '/'"),
        ("{name: x, when: {method: \"GET /\"}, then: allow}", "is not an HTTP method"),
        ("{name: x, when: {subresorce: exec}, then: review, approvers: [sre]}", "unknown key 'subresorce'"),
        ("{name: x, when: {api_group: \"\"}, then: allow}", "expected one or more non-empty names"),
    ])
    func badValuesAreRefusedWithTheirLine(_ rule: String, _ message: String) throws {
        do {
            _ = try Self.policies("  - {name: p, who: {groups: [assistants]}, rules: [\(rule)]}")
            Issue.record("accepted \(rule)")
        } catch {
            #expect("\(error)".contains(message) && "\(error)".contains("t.yaml:"), "\(error)")
        }
    }

    /// Secret values are masked unless every policy that applies says `kubernetes_secrets: reveal`.
    @Test func secretValuesAreRevealedOnlyWhenEveryApplicablePolicySays() throws {
        let set = try Self.policies("""
              - {name: ops, who: {groups: [sre]}, kubernetes_secrets: reveal, rules: [{name: all, when: {namespace: "*"}, then: allow}]}
              - {name: assistants, who: {groups: [assistants]}, rules: [{name: all, when: {namespace: "*"}, then: allow}]}
              - {name: explicit, who: {groups: [auditors]}, kubernetes_secrets: mask, rules: [{name: all, when: {namespace: "*"}, then: allow}]}
            """)
        #expect(set.revealsKubernetesSecrets(to: Principal(subject: "o", groups: ["sre"]), target: "k8s"))
        #expect(!set.revealsKubernetesSecrets(to: who, target: "k8s"), "the default is mask")
        #expect(!set.revealsKubernetesSecrets(to: Principal(subject: "x", groups: ["sre", "assistants"]), target: "k8s"),
                "one policy cannot loosen another's masking")
        #expect(!set.revealsKubernetesSecrets(to: Principal(subject: "a", groups: ["sre", "auditors"]), target: "k8s"))
        #expect(!set.revealsKubernetesSecrets(to: Principal(subject: "n", groups: ["nobody"]), target: "k8s"))
        do {
            _ = try Self.policies("  - {name: p, who: {groups: [x]}, kubernetes_secrets: show, rules: [{name: r, then: allow}]}")
            Issue.record("accepted kubernetes_secrets: show")
        } catch {
            #expect("\(error)".contains("t.yaml:"), "\(error)")
        }
    }

    @Test func globsOverVerbsAreAccepted() throws {
        let set = try Self.policies("  - {name: p, who: {groups: [assistants]}, rules: [{name: deletes, when: {verb: \"delete*\"}, then: deny}, "
                                    + "{name: all, when: {namespace: dev}, then: allow}]}")
        #expect(try decide(set, "DELETE", "/api/v1/namespaces/dev/pods").rule == "deletes")
        #expect(try decide(set, "GET", "/api/v1/namespaces/dev/pods").action == .allow)
    }
}
