import Foundation
import TestSupport
import Testing

// The Kubernetes API test server (Fixtures/kube_test_server.py) through real clients, kubectl 1.32 and
// the Python `kubernetes` client, directly (no gate): the fixture the gate's Kubernetes tests rely on
// must answer as the API server does, or those tests prove nothing.

@Suite("Kubernetes API test server", .serialized)
struct KubeTestServerTests {
    let web = "web-7d4b9c-x2x9q"

    /// A long-running kubectl (watch, logs -f) whose output goes to a file the test polls.
    final class Streaming {
        let process = Process()
        let output: URL
        init(_ kubeconfig: URL, _ arguments: [String]) throws {
            output = kubeconfig.deletingLastPathComponent().appendingPathComponent("stream-\(UUID().uuidString).out")
            FileManager.default.createFile(atPath: output.path, contents: nil)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["kubectl"] + arguments
            var env = ProcessInfo.processInfo.environment
            env["KUBECONFIG"] = kubeconfig.path
            env["HOME"] = kubeconfig.deletingLastPathComponent().path
            process.environment = env
            process.standardOutput = try FileHandle(forWritingTo: output)
            process.standardError = process.standardOutput
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }
        var text: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }
        func wait(for needle: String) throws {
            try waitUntil("'\(needle)' from kubectl \(process.arguments ?? []) (so far: \(text))", timeout: .seconds(30)) {
                text.contains(needle)
            }
        }
        deinit { if process.isRunning { process.terminate() } }
    }

    func header(_ request: [String: Any], _ name: String) -> String? {
        (request["headers"] as? [[String]])?.first { $0.first?.lowercased() == name.lowercased() }?.last
    }

    @Test func kubectlGetsPodsOfOneNamespaceWithTheBearerTokenLogged() throws {
        let server = try KubeTestServer()
        let r = try kubectl(try server.kubeconfig(), ["get", "pods", "-n", "dev"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("NAME") && r.stdout.contains("STATUS"), "a Table, as the API server answers kubectl")
        #expect(r.stdout.contains(web) && r.stdout.contains("worker-0") && r.stdout.contains("Running"))
        #expect(!r.stdout.contains("api-5f6d8-q7k2m"), "prod's pod is not in dev")
        let list = server.requests().first { ($0["path"] as? String) == "/api/v1/namespaces/dev/pods" }
        #expect(list.flatMap { header($0, "Authorization") } == "Bearer \(server.token)")
        #expect(list.flatMap { header($0, "Accept") }?.contains("as=Table") == true)
    }

    @Test func aWrongTokenIsUnauthorizedAndStillLogged() throws {
        let server = try KubeTestServer()
        let r = try kubectl(try server.kubeconfig(token: "not-the-token"), ["get", "pods", "-n", "dev"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("provide credentials") || r.stderr.contains("Unauthorized"), "\(r.stderr)")
        let requests = server.requests()
        #expect(!requests.isEmpty && requests.allSatisfy { ($0["authorized"] as? Bool) == false })
    }

    @Test func secretsAsYAMLCarryTheBase64Data() throws {
        let server = try KubeTestServer()
        let r = try kubectl(try server.kubeconfig(), ["get", "secrets", "-n", "dev", "-o", "yaml"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("kind: Secret") && r.stdout.contains("name: db-credentials"))
        #expect(r.stdout.contains(Data("hunter2-Sup3rSecret!".utf8).base64EncodedString()))
        #expect(r.stdout.contains(Data("AKIAIOSFODNN7EXAMPLE".utf8).base64EncodedString()))
    }

    @Test func deploymentsInAllNamespaces() throws {
        let server = try KubeTestServer()
        let r = try kubectl(try server.kubeconfig(), ["get", "deployments", "-A"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(lines.contains { $0.starts(with: ["dev", "web", "1/1"]) }, "\(r.stdout)")
        #expect(lines.contains { $0.starts(with: ["prod", "api", "3/3"]) }, "\(r.stdout)")
        #expect(server.requests().contains { ($0["path"] as? String) == "/apis/apps/v1/deployments" })
    }

    @Test func unknownResourcesAndPortForwardAreNotFound() throws {
        let server = try KubeTestServer()
        let config = try server.kubeconfig()
        let configmaps = try kubectl(config, ["get", "configmaps"])
        #expect(configmaps.status != 0 && configmaps.stderr.contains("doesn't have a resource type \"configmaps\""), "\(configmaps.stderr)")
        let forward = try kubectl(config, ["get", "--raw", "/api/v1/namespaces/dev/pods/\(web)/portforward"])
        #expect(forward.status != 0 && forward.stderr.contains("NotFound"), "\(forward.stderr)")
        let missing = try kubectl(config, ["get", "pod", "nope"])
        #expect(missing.status != 0 && missing.stderr.contains("pods \"nope\" not found"), "\(missing.stderr)")
    }

    @Test func watchReceivesAPushedPod() throws {
        let server = try KubeTestServer()
        let watch = try Streaming(try server.kubeconfig(), ["get", "pods", "-n", "dev", "-w"])
        try watch.wait(for: "worker-0")
        #expect(!watch.text.contains("pushed-pod"))
        try server.push(["op": "add", "resource": "pods", "namespace": "dev", "name": "pushed-pod"])
        try watch.wait(for: "pushed-pod")
        #expect(watch.process.isRunning, "a watch stays open")
        let request = server.requests().first { ($0["query"] as? [String: [String]])?["watch"] == ["true"] }
        #expect(request?["path"] as? String == "/api/v1/namespaces/dev/pods")
    }

    @Test func logsFollowStreamsLinesAndStaysOpen() throws {
        let server = try KubeTestServer()
        let logs = try Streaming(try server.kubeconfig(), ["logs", "-f", web, "-n", "dev"])
        try logs.wait(for: "starting web server")
        try logs.wait(for: "ssn 123-45-6789")
        try logs.wait(for: "GET /healthz 200")
        #expect(logs.text.contains("alice@example.com"))
        #expect(logs.process.isRunning, "logs -f stays open until the client closes")
        let request = server.requests().first { ($0["path"] as? String) == "/api/v1/namespaces/dev/pods/\(web)/log" }
        #expect((request?["query"] as? [String: [String]])?["follow"] == ["true"])
    }

    @Test func execOverWebSocketV5ReturnsBothStreamsAndTheExitCode() throws {
        let server = try KubeTestServer()
        let r = try kubectl(try server.kubeconfig(), ["exec", web, "--", "sh", "-c", "echo hi; echo err >&2; exit 3"])
        #expect(r.status == 3, "kubectl exits with the command's code: \(r.stderr)")
        #expect(r.stdout == "hi\n")
        #expect(r.stderr.contains("err\n") && r.stderr.contains("command terminated with exit code 3"), "\(r.stderr)")
        let upgrade = server.requests().first { ($0["path"] as? String)?.hasSuffix("/exec") == true }
        #expect(upgrade?["method"] as? String == "GET", "kubectl 1.32 execs as a GET upgrade")
        #expect(upgrade.flatMap { header($0, "Upgrade") } == "websocket")
        #expect(server.requests().contains { $0["exec"] as? String == "started" && $0["protocol"] as? String == "v5.channel.k8s.io" })
    }

    @Test func execWithStdinEndsWhenV5ClosesIt() throws {
        let server = try KubeTestServer()
        let r = try kubectl(try server.kubeconfig(), ["exec", "-i", "worker-0", "--", "sh", "-c", "cat; pwd"], stdin: "hello from stdin\n")
        #expect(r.status == 0, "\(r.stderr)")
        let realWorkdir = server.workdir.resolvingSymlinksInPath().path
        #expect(r.stdout == "hello from stdin\n\(realWorkdir)\n" || r.stdout == "hello from stdin\n\(server.workdir.path)\n", "\(r.stdout)")
        #expect(server.requests().contains { $0["exec"] as? String == "stdin-closed" }, "cat ends only through v5's close channel")
    }

    @Test func pythonClientListsAndExecsOverV4() throws {
        let server = try KubeTestServer()
        let config = try server.kubeconfig()
        let client = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/kube_python_client.py").path
        let list = try run("python3", [client, config.path, "list-pods", "dev"])
        #expect(list.status == 0, "\(list.stderr)")
        #expect(list.stdout.contains(web) && list.stdout.contains("worker-0"))
        let exec = try run("python3", [client, config.path, "exec", "v4.channel.k8s.io", "dev", "worker-0", "ping",
                                       "sh", "-c", "read x; echo got $x; echo e >&2; exit 4"])
        #expect(exec.status == 0, "\(exec.stderr)")
        let out = try JSONSerialization.jsonObject(with: Data(exec.stdout.utf8)) as? [String: Any]
        #expect(out?["stdout"] as? String == "got ping\n")
        #expect(out?["stderr"] as? String == "e\n")
        let status = out?["status"] as? [String: Any]
        #expect(status?["reason"] as? String == "NonZeroExitCode")
        let causes = (status?["details"] as? [String: Any])?["causes"] as? [[String: String]]
        #expect(causes == [["reason": "ExitCode", "message": "4"]])
        #expect(server.requests().contains { $0["exec"] as? String == "started" && $0["protocol"] as? String == "v4.channel.k8s.io" })
    }

    @Test func execOnAPtyAppliesTheResize() throws {
        let server = try KubeTestServer()
        let client = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/kube_python_client.py").path
        let r = try run("python3", [client, try server.kubeconfig().path, "exec-tty", "dev", "worker-0", "101", "33"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect((out?["stdout"] as? String)?.contains("33 101") == true, "stty size on the pty: \(r.stdout)")
        #expect(server.requests().contains { $0["exec"] as? String == "resize" && $0["width"] as? Int == 101 && $0["height"] as? Int == 33 })
    }

    @Test func anUnmaskedClientFrameClosesWithProtocolError() throws {
        let server = try KubeTestServer()
        let client = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/kube_python_client.py").path
        let r = try run("python3", [client, try server.kubeconfig().path, "unmasked-frame", "dev", "worker-0"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect((out?["upgrade"] as? String)?.contains("101") == true)
        #expect(out?["close"] as? Int == 1002)
        try waitUntil("the protocol error in the server's log", timeout: .seconds(10)) {
            server.requests().contains { $0["exec"] as? String == "protocol-error" }
        }
    }
}
