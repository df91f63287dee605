import CaptureFormat
import Foundation
import TestSupport
import Testing

/// exec and attach through the gate over WebSocket (issue 20, item 3): real kubectl 1.32 (and a raw
/// client for v4 and for frames that break the protocol) through the built capture-proxy to the
/// Kubernetes test server, whose exec runs the command for real. The server's log says what reached
/// it; the capture what the gate recorded; `sessinfo --play` what an investigator sees.
@Suite("Kubernetes gate: exec over WebSocket", .serialized)
struct KubernetesExecGateTests {
    /// A card number the built-in detector knows (Luhn-valid), as a shell would print it.
    static let card = "4111111111111111"
    /// A command that prints it without holding it (the command line is recorded as the request's target).
    static let printsCard = "printf '4111%s\\n' 111111111111"

    let provider: OIDCProvider

    init() throws { provider = try sharedProvider.get() }

    struct Setup {
        let server: KubeTestServer
        let gate: GateProcess
        let kubeconfig: URL
        var captures: String { gate.directory.appendingPathComponent("captures").path }
        var admin: String { "http://127.0.0.1:\(gate.adminPort ?? 0)" }
    }

    /// The test server, a gate in front of it with `rules` for the agents, and a kubeconfig for kubectl with `token`.
    /// `captures` and `recording` (a target's `recording:` mapping) are for the strict-recording tests.
    func start(token: String, rules: String, captures: String = "captures", recording: String = "{}") throws -> Setup {
        let server = try KubeTestServer()
        let port = try freePort(), adminPort = try freePort()
        let yaml = """
            \(gateConfigHead(id: "exec20-gate", captures: captures, issuer: provider.issuer))
            targets:
              kube:
            \(try server.gateTarget(listen: port))
                masks: [credit_card]
                recording: \(recording)
            admin:
              listen: 127.0.0.1:\(adminPort)
              groups: [tollgate-ops]
            policies:
              - name: kube-agents
                who: {groups: [ai-assistants]}
                target: kube
                rules:
            \(rules.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
                  - {name: reads, when: {verb: [get, list, watch]}, then: allow}

            """
        let gate = try GateProcess(config: yaml, ports: ["kube": port, GateProcess.adminListener: adminPort])
        let kubeconfig = try server.kubeconfig(server: "https://127.0.0.1:\(port)", token: token)
        return Setup(server: server, gate: gate, kubeconfig: kubeconfig)
    }

    static let execAllowed = "- {name: exec-dev, when: {subresource: [exec], namespace: [dev]}, then: allow}"
    static let execReviewed = "- {name: exec-needs-review, when: {subresource: [exec]}, then: review, approvers: [sre]}"

    func events(_ gate: GateProcess) throws -> [Event] { try gate.captures().flatMap { try allEvents($0) } }

    func chunks(_ gate: GateProcess) throws -> [StreamChunk] {
        try events(gate).compactMap { if case .streamChunk(let c) = $0.payload { c } else { nil } }
    }

    func execEvents(_ server: KubeTestServer) -> [[String: Any]] { server.requests().filter { $0["exec"] != nil } }

    @Test func anAllowedExecRunsItsOutputAndStderrArriveAndTheExitCodePropagates() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try start(token: agent, rules: Self.execAllowed)
        // The card is printed, and in the command line (recorded with the request: masked there too).
        let r = try kubectl(s.kubeconfig, ["exec", "web-7d4b9c-x2x9q", "-n", "dev", "--", "sh", "-c",
                                           Self.printsCard + "; echo hello; echo err >&2; : \(Self.card); exit 3"])
        #expect(r.status == 3, "\(r)")
        #expect(r.stdout.contains("hello") && r.stderr.contains("err"), "\(r)")
        #expect(!r.stdout.contains(Self.card) && r.stdout.contains("1111"), "the card number reached kubectl unmasked: \(r)")
        let started = execEvents(s.server).filter { ($0["exec"] as? String) == "started" }
        #expect(started.count == 1 && (started.first?["protocol"] as? String) == "v5.channel.k8s.io", "\(started)")
        s.gate.stop()
        let recorded = try chunks(s.gate)
        let out = recorded.filter { $0.stream == .stdout }.map { String(decoding: $0.data, as: UTF8.self) }.joined()
        let err = recorded.filter { $0.stream == .stderr }.map { String(decoding: $0.data, as: UTF8.self) }.joined()
        #expect(out.contains("hello") && err.contains("err"), "\(recorded)")
        let written = try s.gate.everythingWritten()
        let leaked = written.contains(bytes: Self.card)
        #expect(!leaked, "the card number reached the capture or the log")
        let responses = try events(s.gate).compactMap { if case .response(.http(let h)) = $0.payload { h } else { nil } }
        #expect(responses.contains { $0.status == 101 && String(decoding: $0.body.data, as: UTF8.self).contains("NonZeroExitCode") }, "\(responses)")
        try s.gate.expectNoSecrets([agent, s.server.token])
    }

    @Test func aDeniedExecGetsTheRuleInKubectlsMessageAndNothingRunsUpstream() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try start(token: agent, rules: "- {name: no-exec-prod, when: {subresource: [exec], namespace: [prod]}, then: deny}\n" + Self.execAllowed)
        let r = try kubectl(s.kubeconfig, ["exec", "api-5f6d8-q7k2m", "-n", "prod", "--", "sh", "-c", "echo ran"])
        #expect(r.status != 0 && !r.stdout.contains("ran") && r.stderr.contains("no-exec-prod") && r.stderr.contains("kube-agents"), "\(r)")
        #expect(execEvents(s.server).isEmpty && !s.server.requests().contains { ($0["path"] as? String)?.hasSuffix("/exec") == true },
                "\(s.server.requests())")
    }

    /// The approvals CLI as `token`'s holder against this gate's admin API.
    func approvals(_ s: Setup, _ arguments: [String], token: String) throws -> Output {
        try run(tool("capture-proxy").path, arguments + ["--admin", s.admin],
                environment: ["TOLLGATE_TOKEN": token, "TOLLGATE_ADMIN_URL": "", "NO_COLOR": "1"], timeout: .seconds(60))
    }

    /// The one pending approval's id, once the gate holds the request.
    func pendingID(_ s: Setup, token: String) throws -> String {
        var id: String?
        try waitUntil("the exec to be held for approval", timeout: .seconds(60)) {
            guard let r = try? approvals(s, ["approvals", "list", "--json"], token: token), r.status == 0,
                  let json = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] else { return false }
            id = (json["approvals"] as? [[String: Any]])?.first?["id"] as? String
            return id != nil
        }
        return try #require(id)
    }

    @Test func anInteractiveExecIsHeldApprovedFromTheCLIRecordedAsATerminalAndPlayedBack() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let sre = try provider.token("sre@example.com", groups: ["sre"])
        let s = try start(token: agent, rules: Self.execReviewed)
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let lines = ["echo typed-$((6*7))", Self.printsCard, "pwd"]
        client.arguments = ["python3", repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/kubectl_exec_pty.py").path,
                            String(decoding: try JSONSerialization.data(withJSONObject: lines), as: UTF8.self),
                            "exec", "-it", "web-7d4b9c-x2x9q", "-n", "dev", "--", "sh"]
        client.environment = ProcessInfo.processInfo.environment.merging(["KUBECONFIG": s.kubeconfig.path,
                                                                          "HOME": s.kubeconfig.deletingLastPathComponent().path]) { $1 }
        let out = Pipe()
        client.standardOutput = out
        try client.run()
        let id = try pendingID(s, token: sre)
        // Held: nothing of the exec reached the upstream before the approval.
        #expect(client.isRunning && execEvents(s.server).isEmpty, "\(s.server.requests())")
        #expect(!s.server.requests().contains { ($0["path"] as? String)?.hasSuffix("/exec") == true })
        let approved = try approvals(s, ["approvals", "approve", id, "--reason", "debugging web"], token: sre)
        #expect(approved.status == 0, "\(approved)")
        client.waitUntilExit()
        let result = (try? JSONSerialization.jsonObject(with: out.fileHandleForReading.readDataToEndOfFile())) as? [String: Any] ?? [:]
        let shown = result["shown"] as? String ?? ""
        #expect((result["status"] as? Int) == 0 && shown.contains("typed-42") && shown.contains("/work"), "\(result)")
        #expect(!shown.contains(Self.card) && shown.contains("1111"), "the card number reached the terminal unmasked: \(shown)")
        let started = execEvents(s.server).filter { ($0["exec"] as? String) == "started" }
        #expect(started.count == 1 && (started.first?["tty"] as? Bool) == true, "\(started)")
        #expect(execEvents(s.server).contains { ($0["exec"] as? String) == "resize" && ($0["width"] as? Int) == 100 && ($0["height"] as? Int) == 30 },
                "\(execEvents(s.server))")
        s.gate.stop()

        let recorded = try chunks(s.gate)
        let stdin = recorded.filter { $0.stream == .stdin }.map { String(decoding: $0.data, as: UTF8.self) }.joined()
        #expect(stdin.contains("echo typed-$((6*7))"), "\(stdin)")
        #expect(recorded.contains { $0.stream == .resize && $0.columns == 100 && $0.rows == 30 }, "\(recorded.filter { $0.stream == .resize })")
        let approvalsRecorded = try events(s.gate).compactMap { if case .approval(let a) = $0.payload { a } else { nil } }
        #expect(approvalsRecorded.contains { $0.state == .granted }, "\(approvalsRecorded)")
        let written = try s.gate.everythingWritten()
        let leaked = written.contains(bytes: Self.card)
        #expect(!leaked, "the card number reached the capture or the log")

        // kubectl's discovery and its exec come on separate connections: one capture each; the exec's plays.
        let files = try FileManager.default.subpathsOfDirectory(atPath: s.captures).filter { $0.hasSuffix(".sesscap") }
        let plays = try files.map { try run(tool("sessinfo").path, ["--play", "--no-wait", s.captures + "/" + $0], timeout: .seconds(60)) }
        let played = try #require(plays.first { $0.status == 0 } ?? plays.first)
        #expect(plays.filter { $0.status == 0 }.count == 1, "\(plays)")
        #expect(played.status == 0 && played.stdout.contains("typed-42") && played.stdout.contains("/work") && !played.stdout.contains(Self.card),
                "\(played)")
        try s.gate.expectNoSecrets([agent, sre, s.server.token])
    }

    /// The raw client (Fixtures/ws_exec_client.py) through the gate: its JSON result.
    func rawExec(_ s: Setup, token: String, protocols: String, _ testCase: String, pod: String = "web-7d4b9c-x2x9q",
                 subresource: String = "exec?command=sh&command=-c&command=read%20x%3B%20echo%20got-%24x&") throws -> [String: Any] {
        let path = "/api/v1/namespaces/dev/pods/\(pod)/\(subresource)stdin=true&stdout=true&stderr=true"
        let r = try run("python3", [repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/ws_exec_client.py").path, "127.0.0.1",
                                    "\(s.gate.port("kube"))", s.server.certificate.path, token, path, protocols, testCase], timeout: .seconds(60))
        return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] ?? ["error": "\(r)"]
    }

    @Test func theV4SubprotocolWorksAndOnlyTheProtocolsTheGateFollowsAreOffered() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try start(token: agent, rules: Self.execAllowed)
        let v4 = try rawExec(s, token: agent, protocols: "v4.channel.k8s.io", "talk")
        let messages = (v4["messages"] as? [[Any]]) ?? []
        #expect(v4["protocol"] as? String == "v4.channel.k8s.io", "\(v4)")
        #expect(messages.contains { ($0.first as? Int) == 1 && ($0.last as? String)?.contains("got-line") == true }, "\(v4)")
        #expect(messages.contains { ($0.first as? Int) == 3 && ($0.last as? String)?.contains("Success") == true }, "\(v4)")
        #expect((v4["close"] as? [Any])?.first as? Int == 1000, "\(v4)")
        // A subprotocol the gate cannot follow is refused before anything goes upstream, with the ones it follows named.
        let v3 = try rawExec(s, token: agent, protocols: "v3.channel.k8s.io, channel.k8s.io", "talk")
        #expect((v3["status_line"] as? String)?.contains(" 403 ") == true && (v3["body"] as? String)?.contains("v5.channel.k8s.io") == true, "\(v3)")
        let started = execEvents(s.server).filter { ($0["exec"] as? String) == "started" }
        #expect(started.map { $0["protocol"] as? String } == ["v4.channel.k8s.io"], "\(started)")
        // The upstream's refusal of the upgrade (no such pod) reaches the client as the upstream said it.
        let missing = try rawExec(s, token: agent, protocols: "v5.channel.k8s.io", "talk", pod: "no-such-pod")
        #expect((missing["status_line"] as? String)?.contains(" 404 ") == true && (missing["body"] as? String)?.contains("not found") == true, "\(missing)")
    }

    /// Each frame that breaks RFC 6455 or the channel protocol: the client gets a close with 1002
    /// (1009 for size) saying what and where, nothing of it reaches the upstream, and the capture
    /// records the refusal.
    @Test func aFrameThatBreaksTheProtocolClosesWith1002AndReachesNothing() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try start(token: agent, rules: Self.execAllowed)
        let cases: [(String, UInt16, String)] = [
            ("unmasked", 1002, "must be masked"), ("reserved", 1002, "reserved bits"), ("big-control", 1002, "at most 125"),
            ("fragmented-control", 1002, "fragmented ping"), ("bad-channel", 1002, "channel 7"), ("text", 1002, "text frame"),
            ("oversize", 1009, "over the gate's limit"), ("unmasked-fragment", 1002, "must be masked"),
        ]
        for (name, code, what) in cases {
            let r = try rawExec(s, token: agent, protocols: "v5.channel.k8s.io", name)
            let close = (r["close"] as? [Any]) ?? []
            #expect(close.first as? Int == Int(code) && (close.last as? String)?.contains(what) == true, "\(name): \(r)")
            #expect(!((r["messages"] as? [[Any]]) ?? []).contains { ($0.last as? String)?.contains("got-") == true }, "\(name): \(r)")
        }
        // The upstream saw each stream start and end, and never a frame of the client's: no stdin, no protocol error.
        let events = execEvents(s.server)
        #expect(events.filter { ($0["exec"] as? String) == "started" }.count == cases.count, "\(events)")
        #expect(!events.contains { ($0["exec"] as? String) == "protocol-error" || ($0["exec"] as? String) == "stdin-closed" }, "\(events)")
        s.gate.stop()
        let refusals = try self.events(s.gate).compactMap { if case .decision(let d) = $0.payload, d.rule == "kubernetes-websocket" { d } else { nil } }
        #expect(refusals.count == cases.count && refusals.allSatisfy { $0.action == .deny && ($0.reason.contains("client frame 1 at byte 0") || $0.reason.contains("client frame 2 at byte 11")) }, "\(refusals)")
    }

    /// attach goes the way exec does: decided on its own subresource (here allowed), relayed, recorded.
    @Test func anAllowedAttachIsRelayedAndRecorded() throws {
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try start(token: agent, rules: "- {name: attach-dev, when: {subresource: [attach], namespace: [dev]}, then: allow}")
        let denied = try rawExec(s, token: agent, protocols: "v5.channel.k8s.io", "attach")
        #expect((denied["status_line"] as? String)?.contains(" 403 ") == true, "exec is not attach: \(denied)")
        let r = try rawExec(s, token: agent, protocols: "v5.channel.k8s.io", "attach", subresource: "attach?container=app&")
        let messages = (r["messages"] as? [[Any]]) ?? []
        #expect(messages.contains { ($0.first as? Int) == 1 && ($0.last as? String)?.contains("attached-6") == true }, "\(r)")
        #expect((r["close"] as? [Any])?.first as? Int == 1000, "\(r)")
        #expect(execEvents(s.server).contains { ($0["exec"] as? String) == "stdin-closed" }, "\(execEvents(s.server))")
        s.gate.stop()
        let recorded = try kubernetesExchanges(s.gate)
        #expect(recorded.contains { $0.subresource == "attach" }, "\(recorded)")
        let stdin = try chunks(s.gate).filter { $0.stream == .stdin }
        #expect(stdin.map { String(decoding: $0.data, as: UTF8.self) } == ["echo attached-$((2*3))\n", ""], "\(stdin)")
    }

    func kubernetesExchanges(_ gate: GateProcess) throws -> [KubernetesRequest] {
        try events(gate).compactMap { if case .request(.kubernetes(let k)) = $0.payload { k } else { nil } }
    }
}
