import CaptureFormat
import Foundation
import TestSupport
import Testing

/// `sessreplay` of kubectl sessions recorded through the gate (KubernetesGateTests' gate and the
/// Kubernetes test server), replayed against the test server directly over verified TLS: the
/// reads are replayed, the denied list, the refused exec and the watch stream are not, and Secret
/// values stay masked in the replay's capture.
@Suite("sessreplay of Kubernetes captures", .serialized)
struct KubernetesReplayThroughGateTests {
    let kube: KubernetesGateTests
    init() throws { kube = try KubernetesGateTests() }

    @Test func kubectlReadsAreReplayedStreamsAndDenialsAreNotAndSecretsStayMasked() throws {
        let agent = try kube.provider.token("agent@example.com", groups: ["ai-assistants"])
        let s = try kube.start(token: agent)
        #expect(try kubectl(s.kubeconfig, ["get", "pods", "-n", "dev"]).status == 0)
        #expect(try kubectl(s.kubeconfig, ["get", "pods", "-n", "prod"]).status != 0)
        #expect(try kubectl(s.kubeconfig, ["get", "secrets", "-n", "dev", "-o", "yaml"]).status == 0)
        #expect(try kubectl(s.kubeconfig, ["get", "--raw", "/api/v1/namespaces/dev/secrets?watch=1&timeoutSeconds=1"]).status == 0)
        #expect(try kubectl(s.kubeconfig, ["exec", "web-7d4b9c-x2x9q", "-n", "dev", "--", "sh", "-c", "echo ran"]).status != 0)
        s.gate.stop()
        let before = s.server.requests().count

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("httpreplay21-kube-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let key = dir.appendingPathComponent("replay.pem").path
        try #require(try run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key]).status == 0)
        let tokenFile = dir.appendingPathComponent("kube.token")
        try (s.server.token + "\n").write(to: tokenFile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: tokenFile.path)
        let out = dir.appendingPathComponent("out")
        let r = try run(tool("sessreplay").path, ["--fast", "--json", "--token-file", tokenFile.path, "--ca-file", s.server.certificate.path,
                                                  "--target", "https://127.0.0.1:\(s.server.port)", "--signing-key", key, "--out", out.path,
                                                  s.captures], timeout: .seconds(120))
        #expect(r.status == 0, "\(r)")
        let summary = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r)")
        let skipped = summary["skipped"] as? [String: Int] ?? [:]
        // The denied list of prod and the refused exec (kubectl tries it over WebSocket, then SPDY); the watch (a stream).
        #expect((skipped["not-forwarded"] ?? 0) >= 2 && skipped["unsupported"] == 1 && skipped["write"] == nil, "\(summary)")

        let replayed = s.server.requests().dropFirst(before).compactMap { $0["path"] as? String }
        #expect(replayed.contains("/api/v1/namespaces/dev/pods") && replayed.contains("/api/v1/namespaces/dev/secrets"), "\(replayed)")
        #expect(!replayed.contains { $0.contains("/prod/") || $0.hasSuffix("/exec") }, "\(replayed)")
        let sentWatch = s.server.requests().dropFirst(before).contains { "\($0["query"] ?? "")".contains("watch") || "\($0["path"] ?? "")".contains("watch") }
        #expect(!sentWatch, "a watch was replayed")
        #expect(s.server.requests().dropFirst(before).allSatisfy { ($0["authorized"] as? Bool) == true }, "the replay's token was not sent")

        // The replay's captures: Secrets masked as at the gate, and the same bodies as the original's.
        let files = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".sesscap") }.map { out.appendingPathComponent($0).path }
        #expect(!files.isEmpty)
        var maskedSecretSeen = false
        for f in files {
            for e in try allEvents(try CaptureFile(path: f)) {
                guard case .response(.http(let h)) = e.payload else { continue }
                let body = String(decoding: h.body.data, as: UTF8.self)
                #expect(!body.contains(Data(KubernetesGateTests.secretPassword.utf8).base64EncodedString()), "a Secret value in the replay")
                #expect(!body.contains(Data(KubernetesGateTests.awsSecret.utf8).base64EncodedString()), "a Secret value in the replay")
                if body.contains("W1JFREFDVEVEXQ==") { maskedSecretSeen = true }
            }
            let capture = try CaptureFile(path: f)
            let original = try #require(capture.header.attributes.first { $0.key == "replay.of_capture" }?.value)
            // Only the watch differs: recorded as not replayed (a sessreplay deny), so only in A among forwarded requests.
            let diff = try run(tool("sessdiff").path, ["--json", "--forwarded-only", original, f])
            let kinds = diff.stdout.split(separator: "\n").compactMap { line -> String? in
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let kind = o["kind"] as? String else { return nil }
                return "\(kind) \(o["statement"] ?? "")"
            }
            #expect(kinds.allSatisfy { $0.hasPrefix("only-in-a ") && $0.contains("watch=1") }, "\(diff)")
        }
        #expect(maskedSecretSeen, "the replay recorded no Secret")
    }
}
