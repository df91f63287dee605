import CaptureFormat
import Foundation
import TestSupport
import Testing

/// A `kind: kubernetes` HTTP target (issue 20): real kubectl 1.32 through the built capture-proxy,
/// with a token from the test OIDC issuer, to the Kubernetes test server (kube_test_server.py) over
/// verified TLS. The fixture's request log says what reached the upstream, the capture what the gate recorded.
@Suite("Kubernetes gate: kubectl through the gate", .serialized)
struct KubernetesGateTests {
    static let secretPassword = "hunter2-Sup3rSecret!"
    static let awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

    let provider: OIDCProvider

    init() throws { provider = try sharedProvider.get() }

    struct Setup {
        let server: KubeTestServer
        let gate: GateProcess
        let kubeconfig: URL
        var captures: String { gate.directory.appendingPathComponent("captures").path }
    }

    /// The fixture, a gate in front of it (the fixture's token as the target's credential), and a
    /// kubeconfig pointing kubectl at the gate with `token`.
    func start(token: String) throws -> Setup {
        let server = try KubeTestServer()
        let port = try freePort()
        let yaml = """
            \(gateConfigHead(id: "kubewire20-gate", issuer: provider.issuer))
            targets:
              kube:
            \(try server.gateTarget(listen: port))
            policies:
              - name: kube-agents
                who: {groups: [ai-assistants]}
                target: kube
                rules:
                  - {name: no-prod, when: {namespace: [prod]}, then: deny}
                  - {name: reads, when: {verb: [get, list, watch]}, then: allow}

            """
        let gate = try GateProcess(config: yaml, ports: ["kube": port])
        // kubectl trusts the gate's listener certificate (the fixture's own, for 127.0.0.1).
        let kubeconfig = try server.kubeconfig(server: "https://127.0.0.1:\(port)", token: token)
        return Setup(server: server, gate: gate, kubeconfig: kubeconfig)
    }

    func kubernetesRequests(_ gate: GateProcess) throws -> [KubernetesRequest] {
        try gate.captures().flatMap { try allEvents($0) }.compactMap { if case .request(.kubernetes(let k)) = $0.payload { k } else { nil } }
    }

    @Test func kubectlGetIsAllowedInDevAndDeniedInProdWithTheRuleAndSessgrepFindsIt() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try start(token: agent)
        let dev = try kubectl(s.kubeconfig, ["get", "pods", "-n", "dev"])
        #expect(dev.status == 0 && dev.stdout.contains("web-7d4b9c-x2x9q"), "\(dev)")
        let prod = try kubectl(s.kubeconfig, ["get", "pods", "-n", "prod"])
        #expect(prod.status != 0 && prod.stderr.contains("Error from server (Forbidden)") && prod.stderr.contains("no-prod")
                    && prod.stderr.contains("kube-agents"), "\(prod)")
        #expect(!prod.stdout.contains("api-5f6d8-q7k2m"), "\(prod)")
        // The denied list never reached the upstream; the allowed one did, with the gate's credential only.
        let upstream = s.server.requests()
        #expect(!upstream.contains { ($0["path"] as? String) == "/api/v1/namespaces/prod/pods" }, "\(upstream)")
        #expect(upstream.contains { ($0["path"] as? String) == "/api/v1/namespaces/dev/pods" && ($0["authorized"] as? Bool) == true })
        #expect(!upstream.contains { "\($0["headers"] ?? "")".contains(agent) }, "the client's token reached the upstream")
        s.gate.stop()
        let recorded = try kubernetesRequests(s.gate)
        #expect(recorded.contains { $0.verb == "list" && $0.namespace == "dev" && $0.resource == "pods" }, "\(recorded)")
        #expect(recorded.contains { $0.verb == "list" && $0.namespace == "prod" && $0.resource == "pods" }, "\(recorded)")
        let found = try run(tool("sessgrep").path, ["--namespace", "dev", "--resource", "pods", s.captures])
        #expect(found.status == 0 && found.stdout.contains("allow list pods -n dev") && !found.stdout.contains("prod"), "\(found)")
        let denied = try run(tool("sessgrep").path, ["--namespace", "prod", "--resource", "pods", s.captures])
        #expect(denied.status == 0 && denied.stdout.contains("deny list pods -n prod"), "\(denied)")
        let none = try run(tool("sessgrep").path, ["--namespace", "kube-system", s.captures])
        #expect(none.status == 1, "\(none)")
        try s.gate.expectNoSecrets([agent, s.server.token])
    }

    @Test func secretValuesAreMaskedForKubectlAndInTheCapture() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try start(token: agent)
        let r = try kubectl(s.kubeconfig, ["get", "secrets", "-n", "dev", "-o", "yaml"])
        #expect(r.status == 0 && r.stdout.contains("db-credentials") && r.stdout.contains("password: W1JFREFDVEVEXQ=="), "\(r)")
        let clear = [Self.secretPassword, Self.awsSecret, Data(Self.secretPassword.utf8).base64EncodedString(),
                     Data(Self.awsSecret.utf8).base64EncodedString()]
        for value in clear { #expect(!r.stdout.contains(value), "a Secret value reached kubectl") }
        s.gate.stop()
        let written = try s.gate.everythingWritten()
        for value in clear {
            // Computed first: an expectation on the expression would print all the bytes.
            let found = written.contains(bytes: value)
            #expect(!found, "a Secret value reached the capture or the log")
        }
        let masked = try s.gate.captures().flatMap { try allEvents($0) }.contains {
            if case .response(.http(let h)) = $0.payload { String(decoding: h.body.data, as: UTF8.self).contains("W1JFREFDVEVEXQ==") } else { false }
        }
        #expect(masked, "the capture holds the masked Secret")
    }

    @Test func aClientImpersonationHeaderNeverReachesTheUpstream() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try start(token: agent)
        let r = try kubectl(s.kubeconfig, ["get", "pods", "-n", "dev", "--as", "system:admin", "--as-group", "system:masters"])
        #expect(r.status == 0 && r.stdout.contains("web-7d4b9c-x2x9q"), "\(r)")
        let upstream = s.server.requests()
        #expect(upstream.contains { ($0["path"] as? String) == "/api/v1/namespaces/dev/pods" }, "\(upstream)")
        let impersonating = upstream.filter { request in
            ((request["headers"] as? [[String]]) ?? []).contains { $0.first?.lowercased().hasPrefix("impersonate-") == true }
        }
        #expect(impersonating.isEmpty, "\(impersonating)")
    }

    @Test func kubectlExecIsRefusedClearlyAndNothingRunsUpstream() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try start(token: agent)
        let r = try kubectl(s.kubeconfig, ["exec", "web-7d4b9c-x2x9q", "-n", "dev", "--", "sh", "-c", "echo ran"])
        // No rule lets exec in here: the policy's denial (after kubectl's fallback to SPDY, whose answer it prints).
        #expect(r.status != 0 && !r.stdout.contains("ran") && r.stderr.contains("Forbidden") && !r.stderr.contains("not built"), "\(r)")
        let upstream = s.server.requests()
        #expect(!upstream.contains { ($0["path"] as? String)?.hasSuffix("/exec") == true || $0["exec"] != nil }, "\(upstream)")
        s.gate.stop()
        let recorded = try kubernetesRequests(s.gate)
        #expect(recorded.contains { $0.subresource == "exec" && $0.namespace == "dev" }, "\(recorded)")
    }

    /// A watch stream is masked event by event: kubectl reads the events (JSON lines) of a watch on
    /// Secrets with every value masked, and the stream ends when the server ends it.
    @Test func aWatchOnSecretsIsMaskedEventByEvent() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try start(token: agent)
        let r = try kubectl(s.kubeconfig, ["get", "--raw", "/api/v1/namespaces/dev/secrets?watch=1&timeoutSeconds=1"])
        #expect(r.status == 0 && r.stdout.contains(#""type": "ADDED""#) && r.stdout.contains(#""password": "W1JFREFDVEVEXQ==""#), "\(r)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 1 && lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil }, "\(r)")
        #expect(!r.stdout.contains(Data(Self.secretPassword.utf8).base64EncodedString()), "a Secret value reached kubectl")
        s.gate.stop()
        let recorded = try kubernetesRequests(s.gate)
        #expect(recorded.contains { $0.verb == "watch" && $0.resource == "secrets" }, "\(recorded)")
    }

    /// The gate asks the upstream for JSON only: a client's protobuf `Accept` does not reach it, and
    /// the client gets JSON (masked) back.
    @Test func protobufIsNeverAskedOfTheUpstream() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try start(token: agent)
        let r = try run("curl", ["-sS", "--max-time", "60", "--cacert", s.server.certificate.path, "-H", "Authorization: Bearer \(agent)",
                                 "-H", "Accept: application/vnd.kubernetes.protobuf",
                                 "https://127.0.0.1:\(s.gate.port("kube"))/api/v1/namespaces/dev/pods"], timeout: .seconds(90))
        #expect(r.status == 0 && (r.stdout.contains(#""kind": "PodList""#) || r.stdout.contains(#""kind":"PodList""#)), "\(r)")
        let accepts = s.server.requests().filter { ($0["path"] as? String) == "/api/v1/namespaces/dev/pods" }.map { request in
            ((request["headers"] as? [[String]]) ?? []).filter { $0.first?.lowercased() == "accept" }.map { $0.last ?? "" }
        }
        #expect(accepts == [["application/json"]], "\(accepts)")
    }

    /// A request the gate cannot read as kube-apiserver would (here `watch=maybe`) is a 400
    /// BadRequest Status, recorded with its reason, and never reaches the upstream.
    @Test func aRequestTheGateCannotFollowIsABadRequestStatusAndReachesNothing() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try start(token: agent)
        let r = try run("curl", ["-sS", "--max-time", "60", "--cacert", s.server.certificate.path, "-H", "Authorization: Bearer \(agent)",
                                 "-w", "\n%{http_code}", "https://127.0.0.1:\(s.gate.port("kube"))/api/v1/namespaces/dev/pods?watch=maybe"],
                        timeout: .seconds(90))
        #expect(r.status == 0 && r.stdout.hasSuffix("\n400") && r.stdout.contains(#""reason":"BadRequest""#) && r.stdout.contains("watch"), "\(r)")
        #expect(!s.server.requests().contains { ($0["path"] as? String) == "/api/v1/namespaces/dev/pods" }, "\(s.server.requests())")
        s.gate.stop()
        let decisions = try s.gate.captures().flatMap { try allEvents($0) }.compactMap { if case .decision(let d) = $0.payload { d } else { nil } }
        #expect(decisions.contains { $0.action == .deny && $0.rule == "kubernetes-request" && $0.reason.contains("watch") }, "\(decisions)")
    }
}
