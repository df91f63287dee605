import Foundation
import TestSupport

// The Kubernetes API test server (Fixtures/kube_test_server.py) in a child process, over TLS with a
// certificate made here, with a kubeconfig for kubectl and the Python client. No Kubernetes API
// server can run here: the fixture is a faithful server for exactly the subset the tests use.

final class KubeTestServer {
    let directory: URL
    let process: Process
    let port: Int
    let token: String
    /// The server's certificate (PEM), the CA a kubeconfig trusts.
    let certificate: URL
    /// Every request the server received (method, path, query, headers) and exec event, as JSON lines.
    let requestLog: URL
    /// Where exec runs commands.
    let workdir: URL
    private let control: Pipe

    init(token: String = "kube-fixture-\(UUID().uuidString)") throws {
        self.token = token
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kube-\(UUID().uuidString)")
        workdir = directory.appendingPathComponent("work")
        try FileManager.default.createDirectory(at: workdir, withIntermediateDirectories: true)
        certificate = directory.appendingPathComponent("server.pem")
        let key = directory.appendingPathComponent("server.key")
        let made = try run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                       "-keyout", key.path, "-out", certificate.path, "-days", "2", "-subj", "/CN=127.0.0.1",
                                       "-addext", "subjectAltName=IP:127.0.0.1"])
        guard made.status == 0 else { throw HarnessError(description: "openssl: \(made.stderr)") }
        requestLog = directory.appendingPathComponent("requests.jsonl")
        let portFile = directory.appendingPathComponent("port.json")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/kube_test_server.py").path,
                       "--port-file", portFile.path, "--token", token, "--log", requestLog.path, "--workdir", workdir.path,
                       "--tls-cert", certificate.path, "--tls-key", key.path]
        control = Pipe()
        p.standardInput = control
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        process = p
        try waitUntil("the Kubernetes test server's port file", timeout: .seconds(20)) {
            FileManager.default.fileExists(atPath: portFile.path) || !p.isRunning
        }
        guard p.isRunning, let data = try? Data(contentsOf: portFile),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let port = object["port"] as? Int else {
            throw HarnessError(description: "kube_test_server.py did not start")
        }
        self.port = port
    }

    deinit {
        // Closing its stdin stops the server (it also stops when this process is gone).
        try? control.fileHandleForWriting.close()
    }

    /// A change the server applies and pushes to its watches: e.g. `["op": "add", "resource": "pods", ...]`.
    func push(_ change: [String: String]) throws {
        var line = try JSONSerialization.data(withJSONObject: change)
        line.append(0x0A)
        control.fileHandleForWriting.write(line)
    }

    /// A gate's `kind: kubernetes` target in front of this fixture, listening on `port`: verified TLS
    /// to it, its token (in a file) as the target's credential, its certificate as the listener's.
    /// The target's settings, indented for the line after `  NAME:` under `targets:`.
    func gateTarget(listen port: Int) throws -> String {
        let tokenFile = directory.appendingPathComponent("upstream.token")
        try (token + "\n").write(to: tokenFile, atomically: true, encoding: .utf8)
        return """
                protocol: http
                kind: kubernetes
                listen: 127.0.0.1:\(port)
                upstream: 127.0.0.1:\(self.port)
                upstream_tls: verify-full
                upstream_ca_file: \(certificate.path)
                credentials: {token_file: \(tokenFile.path)}
                tls: {certificate: \(certificate.path), key: \(directory.appendingPathComponent("server.key").path)}
            """
    }

    /// A kubeconfig for `server` (by default this fixture) with `token`, trusting this fixture's certificate.
    func kubeconfig(server: String? = nil, token: String? = nil, namespace: String = "dev") throws -> URL {
        let url = directory.appendingPathComponent("kubeconfig-\(UUID().uuidString)")
        let yaml = """
            apiVersion: v1
            kind: Config
            clusters:
            - name: fixture
              cluster:
                server: \(server ?? "https://127.0.0.1:\(port)")
                certificate-authority: \(certificate.path)
            users:
            - name: tester
              user:
                token: \(token ?? self.token)
            contexts:
            - name: fixture
              context: {cluster: fixture, user: tester, namespace: \(namespace)}
            current-context: fixture
            """
        try yaml.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// The request log's entries so far.
    func requests() -> [[String: Any]] {
        guard let text = try? String(contentsOf: requestLog, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
}

/// kubectl 1.32 with `kubeconfig`, its own HOME (discovery cache) and a time limit.
func kubectl(_ kubeconfig: URL, _ arguments: [String], stdin: String? = nil, timeout: Duration = .seconds(60)) throws -> Output {
    try run("kubectl", arguments, environment: ["KUBECONFIG": kubeconfig.path, "HOME": kubeconfig.deletingLastPathComponent().path],
            stdin: stdin, timeout: timeout)
}
