import Policy
import ProxyCore
import Testing

/// A configuration with one policy for group `analysts` holding `rules` (YAML list items), as loaded.
func policies(rules: String) throws -> PolicySet {
    let yaml = """
        proxy: {id: t, captures: /nonexistent, signing_key: /nonexistent}
        identity: {issuer: "http://127.0.0.1:9400", audiences: [tollgate]}
        targets:
          db: {protocol: postgres, listen: 127.0.0.1:6499, upstream: 127.0.0.1:5499, credentials: {user: gate}}
        policies:
          - name: p
            who: {groups: [analysts]}
            rules:
        \(rules)
        """
    return try GateConfig.parse(yaml: yaml, file: "t.yaml").policies
}

/// Review rules as the configuration spells them: approvers, how many, each group, timeout, grant.
@Suite("approval settings in the configuration")
struct ApprovalRuleConfigTests {
    func rules(_ rules: String) throws -> [Rule] { try policies(rules: rules).policies[0].rules }

    @Test func aReviewRuleDefaultsToOneApproverAndFiveMinutes() throws {
        let r = try rules("      - {name: w, when: {writes: true}, then: review, approvers: [dba, ops]}")[0]
        #expect(r.approval == ApprovalRequirement(anyOf: ["dba", "ops"], count: 1, timeout: .seconds(300), grant: nil))
    }

    @Test func countsEachGroupTimeoutAndGrant() throws {
        let r = try rules("""
                  - {name: two, when: {writes: true}, then: review, approvers: [dba], approvals: 2, timeout: 10m, grant: 30m}
                  - {name: each, when: {statement: [drop]}, then: review, approvers: [dba, security], approvals: each-group}
            """)
        #expect(r[0].approval == ApprovalRequirement(anyOf: ["dba"], count: 2, timeout: .seconds(600), grant: .seconds(1800)))
        #expect(r[1].approval?.clauses == [.init(groups: ["dba"]), .init(groups: ["security"])])
    }

    @Test(arguments: [
        ("{name: x, then: allow, grant: 5m}", "'grant' applies to review rules only"),
        ("{name: x, then: review, approvers: [dba], approvals: 0}", "approvals: expected a number"),
        ("{name: x, then: review, approvers: [dba], approvals: many}", "approvals: expected a number"),
        ("{name: x, then: review, approvers: [dba], timeout: 0s}", "timeout: between 1s and 7 days"),
        ("{name: x, then: review, approvers: [dba], grant: 3d}", "expected a duration"),
        ("{name: x, then: review}", "needs 'approvers'"),
    ])
    func badSettingsAreRefusedWithWhereAndWhy(rule: String, message: String) throws {
        do {
            _ = try rules("      - \(rule)")
            Issue.record("accepted \(rule)")
        } catch {
            #expect("\(error)".contains(message), "\(error)")
            #expect("\(error)".contains("t.yaml:"), "the error names the file and line: \(error)")
        }
    }
}

/// Rules that name HTTP and Kubernetes attributes: the loader takes them, and they match only
/// requests that carry those attributes (the adapters that fill them in come with their issue).
@Suite("HTTP and Kubernetes conditions in the configuration")
struct RequestAttributeConfigTests {
    let who = Principal(subject: "ana", groups: ["analysts"])

    func policies(_ rules: String) throws -> PolicySet { try ProxyCoreTests.policies(rules: rules) }

    @Test func kubernetesRulesWorkAsWritten() throws {
        let set = try policies("""
                  - {name: read-dev, when: {verb: [get, list, watch], namespace: dev}, then: allow}
                  - {name: exec-needs-approval, when: {subresource: exec}, then: review, approvers: [sre]}
                  - {name: no-secrets, when: {resource: secrets}, then: deny}
            """)
        func call(_ verb: String, _ attributes: [RequestAttribute: String]) -> Action {
            var s = StatementInfo(kind: verb)
            s.attributes = attributes.merging([.verb: verb]) { a, _ in a }
            return set.decide([s], who: who, target: "k8s", path: "http").action
        }
        #expect(call("list", [.resource: "pods", .namespace: "dev"]) == .allow)
        #expect(call("list", [.resource: "pods", .namespace: "prod"]) == .deny, "default deny outside dev")
        #expect(call("create", [.resource: "pods", .namespace: "dev", .name: "web", .subresource: "exec"]) == .review)
        #expect(call("get", [.resource: "secrets", .namespace: "dev"]) == .deny)
        // A SQL statement has no Kubernetes attributes: the rules above never match it.
        #expect(set.decide([StatementInfo(kind: "list")], who: who, target: "db", path: "simple").action == .deny)
    }

    @Test func httpMethodsCompareWithoutCase() throws {
        let set = try policies("      - {name: reads, when: {method: [GET, HEAD], http_path: \"/api/*\"}, then: allow}")
        var get = StatementInfo(kind: "get")
        get.attributes = [.method: "get", .path: "/api/v1/orders"]
        #expect(set.decide([get], who: who, target: "api", path: "http").action == .allow)
        get.attributes[.path] = "/admin"
        #expect(set.decide([get], who: who, target: "api", path: "http").action == .deny)
    }

    @Test func anEmptyOrUnknownAttributeIsRefusedWithItsLine() throws {
        for (rule, message) in [("{name: x, when: {verb: \"\"}, then: allow}", "verb: expected one or more"),
                                ("{name: x, when: {subresorce: exec}, then: allow}", "unknown key 'subresorce'")] {
            do {
                _ = try policies("      - \(rule)")
                Issue.record("accepted \(rule)")
            } catch {
                #expect("\(error)".contains(message) && "\(error)".contains("t.yaml:"), "\(error)")
            }
        }
    }
}
