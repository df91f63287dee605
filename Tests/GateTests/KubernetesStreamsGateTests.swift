import CaptureFormat
import Foundation
import Synchronization
import TestSupport
import Testing

/// Streams and a second client through a `kind: kubernetes` target (issue 20): `kubectl logs -f`
/// masked while it streams, and the Python `kubernetes` client. Real kubectl 1.32 and the Python
/// client, through the built capture-proxy, to the Kubernetes test server (kube_test_server.py).
@Suite("Kubernetes gate: logs -f and the Python client", .serialized)
struct KubernetesStreamsGateTests {
    let provider: OIDCProvider

    init() throws { provider = try sharedProvider.get() }

    /// Everything a background process wrote to a pipe so far.
    final class Collected: Sendable {
        let text = Mutex<String>("")
        init(_ pipe: Pipe) {
            pipe.fileHandleForReading.readabilityHandler = { [self] handle in
                let data = handle.availableData
                // At end of file the handler is called again and again: disarmed (as WebhookReceiver does).
                guard !data.isEmpty else { handle.readabilityHandler = nil; return }
                text.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
        }
        var value: String { text.withLock { $0 } }
    }

    @Test func kubectlLogsFollowIsMaskedWhileItStreamsAndRecordedAsAStream() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try KubeGate(provider: provider, token: agent, targetExtra: "masks: [email, us_ssn]")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["kubectl", "logs", "-f", "web-7d4b9c-x2x9q", "-n", "dev"]
        p.environment = ProcessInfo.processInfo.environment.merging(
            ["KUBECONFIG": s.kubeconfig.path, "HOME": s.kubeconfig.deletingLastPathComponent().path]) { $1 }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let stdout = Collected(out), stderr = Collected(err)
        try p.run()
        defer { if p.isRunning { p.terminate() }; p.waitUntilExit() }
        // The fixture sends the four lines and then keeps the stream open until the client goes:
        // the lines must reach kubectl while the stream is still open, masked.
        try waitUntil("the log's last line through the gate (\(stderr.value))", timeout: .seconds(60)) {
            stdout.value.contains("GET /healthz 200") || !p.isRunning
        }
        let seen = stdout.value
        #expect(p.isRunning, "the follow stream ended: \(seen) \(stderr.value)")
        #expect(seen.contains("starting web server on :8080") && seen.contains("user a****@example.com signed in")
                    && seen.contains("verified customer ssn ***-**-****"), "\(seen)")
        #expect(!seen.contains("alice@example.com") && !seen.contains("123-45-6789"), "a clear value reached kubectl: \(seen)")
        p.terminate()
        p.waitUntilExit()
        let upstream = s.server.requests().filter { ($0["path"] as? String) == "/api/v1/namespaces/dev/pods/web-7d4b9c-x2x9q/log" }
        #expect(upstream.count == 1 && (upstream.first?["query"] as? [String: [String]])?["follow"] == ["true"], "\(upstream)")
        s.gate.stop()
        let events = try s.gate.captures().flatMap { try allEvents($0) }
        let chunks = events.compactMap { if case .streamChunk(let c) = $0.payload, c.stream == .stdout { String(decoding: c.data, as: UTF8.self) } else { nil } }
        let recorded = chunks.joined()
        #expect(recorded.contains("starting web server on :8080") && recorded.contains("a****@example.com") && recorded.contains("GET /healthz 200"),
                "\(chunks)")
        #expect(events.contains { if case .request(.kubernetes(let k)) = $0.payload { k.subresource == "log" } else { false } })
        let written = try s.gate.everythingWritten()
        for clear in ["alice@example.com", "123-45-6789"] {
            let found = written.contains(bytes: clear)
            #expect(!found, "a clear log value reached the capture or the log")
        }
    }

    /// `json_field` masks on a Kubernetes target: in a whole list and in a watch's events.
    @Test func jsonFieldMasksApplyToKubernetesListsAndWatchEvents() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try KubeGate(provider: provider, token: agent, targetExtra: #"masks: [{json_field: "metadata.uid"}]"#)
        let list = try kubectl(s.kubeconfig, ["get", "pods", "-n", "dev", "-o", "json"])
        #expect(list.status == 0 && list.stdout.contains("web-7d4b9c-x2x9q") && list.stdout.contains(#""uid": "********""#), "\(list)")
        #expect(!list.stdout.contains("pod-dev-web-7d4b9c-x2x9q"), "\(list.stdout)")
        let watch = try kubectl(s.kubeconfig, ["get", "--raw", "/api/v1/namespaces/dev/pods?watch=1&timeoutSeconds=1"])
        #expect(watch.status == 0 && watch.stdout.contains(#""uid": "********""#) && !watch.stdout.contains("pod-dev-"), "\(watch)")
    }

    /// `impersonate: true`: the gate sets Impersonate-User (the verified subject) and one
    /// Impersonate-Group per group of the identity; kubectl's own `--as`/`--as-group` never pass.
    @Test func theGateImpersonatesTheVerifiedCallerAndDropsTheClientsImpersonation() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants", "k8smore20-oncall"])
        let s = try KubeGate(provider: provider, token: agent, targetExtra: "impersonate: true")
        let r = try kubectl(s.kubeconfig, ["get", "pods", "-n", "dev", "--as", "system:admin", "--as-group", "system:masters"])
        #expect(r.status == 0 && r.stdout.contains("web-7d4b9c-x2x9q"), "\(r)")
        let listed = s.server.requests().filter { ($0["path"] as? String) == "/api/v1/namespaces/dev/pods" }
        #expect(listed.count == 1, "\(listed)")
        let impersonation = ((listed.first?["headers"] as? [[String]]) ?? []).filter { $0.first?.lowercased().hasPrefix("impersonate-") == true }
            .map { "\($0.first!.lowercased())=\($0.last!)" }
        #expect(impersonation == ["impersonate-user=agent@example.com", "impersonate-group=ai-assistants", "impersonate-group=k8smore20-oncall"],
                "\(impersonation)")
    }

    /// The Python `kubernetes` client, the second real client: a list in `dev` is allowed; in `prod`
    /// it gets the 403 with the Status naming the policy and rule, and nothing reaches the upstream.
    @Test func thePythonKubernetesClientListsPodsAndGetsTheForbiddenStatus() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try KubeGate(provider: provider, token: agent)
        let client = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/kube_python_client.py").path
        let dev = try run("python3", [client, s.kubeconfig.path, "list-pods", "dev"], timeout: .seconds(90))
        let devOut = try JSONSerialization.jsonObject(with: Data(dev.stdout.utf8)) as? [String: Any]
        #expect(dev.status == 0 && ((devOut?["pods"] as? [String]) ?? []).contains("web-7d4b9c-x2x9q"), "\(dev)")
        let prod = try run("python3", [client, s.kubeconfig.path, "list-pods", "prod"], timeout: .seconds(90))
        let prodOut = try JSONSerialization.jsonObject(with: Data(prod.stdout.utf8)) as? [String: Any]
        #expect(prodOut?["status"] as? Int == 403, "\(prod)")
        let status = prodOut?["body"] as? [String: Any]
        #expect(status?["kind"] as? String == "Status" && status?["reason"] as? String == "Forbidden"
                    && ((status?["message"] as? String) ?? "").contains("no-prod"), "\(prod)")
        #expect(!s.server.requests().contains { ($0["path"] as? String) == "/api/v1/namespaces/prod/pods" }, "\(s.server.requests())")
    }
}

/// The Kubernetes test server and a gate in front of it (the fixture's token as the target's
/// credential), with a kubeconfig pointing at the gate with the caller's token. `targetExtra` is
/// YAML added to the target (masks, impersonation), `rules` the policy's rules.
struct KubeGate {
    let server: KubeTestServer
    let gate: GateProcess
    let kubeconfig: URL
    static let defaultRules = """
        - {name: no-prod, when: {namespace: [prod]}, then: deny}
        - {name: reads, when: {verb: [get, list, watch]}, then: allow}
        """

    init(provider: OIDCProvider, token: String, targetExtra: String = "", rules: String = KubeGate.defaultRules) throws {
        server = try KubeTestServer()
        let port = try freePort()
        let indentedRules = rules.split(separator: "\n").map { "          " + $0 }.joined(separator: "\n")
        let yaml = """
            \(gateConfigHead(id: "k8smore20-gate", issuer: provider.issuer))
            targets:
              kube:
            \(try server.gateTarget(listen: port))
                \(targetExtra)
            policies:
              - name: kube-agents
                who: {groups: [ai-assistants]}
                target: kube
                rules:
            \(indentedRules)

            """
        gate = try GateProcess(config: yaml, ports: ["kube": port])
        kubeconfig = try server.kubeconfig(server: "https://127.0.0.1:\(port)", token: token)
    }
}
