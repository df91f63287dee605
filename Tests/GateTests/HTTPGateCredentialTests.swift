import CaptureFormat
import Foundation
import TestSupport
import Testing

/// Upstream credentials beyond a token (issue 20): a client certificate the gate presents to an
/// nginx that requires one (`ssl_verify_client on`, a CA made here with openssl).
@Suite("HTTP gate: client certificate upstream", .serialized)
struct HTTPGateCredentialTests {
    let provider: OIDCProvider

    init() throws { provider = try sharedProvider.get() }

    /// A CA, nginx's server certificate (from `makeTestCertificates`) and a client certificate the CA signed.
    static func certificates() throws -> (ca: String, cert: String, key: String, clientCert: String, clientKey: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("k8smore20-mtls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let server = try makeTestCertificates(in: dir, caName: "k8smore20 CA")
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        for args in [["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=tollgate-gate", "-keyout", path("client.key"), "-out", path("client.csr")],
                     ["x509", "-req", "-in", path("client.csr"), "-CA", server.ca, "-CAkey", path("ca.key"), "-CAcreateserial", "-days", "2",
                      "-out", path("client.crt")]] {
            let r = try run("openssl", args)
            guard r.status == 0 else { throw HarnessError(description: "openssl \(args[0]): \(r.stderr)") }
        }
        return (server.ca, server.cert, server.key, path("client.crt"), path("client.key"))
    }

    func gate(upstream nginx: NginxServer, ca: String, credentials: String) throws -> GateProcess {
        let port = try freePort()
        let yaml = """
            \(gateConfigHead(id: "k8smore20-gate", issuer: provider.issuer))
            targets:
              api:
                protocol: http
                listen: 127.0.0.1:\(port)
                upstream: 127.0.0.1:\(nginx.port)
                upstream_tls: verify-full
                upstream_ca_file: \(ca)
                upstream_server_name: localhost
                credentials: \(credentials)
            policies:
              - name: api-agents
                who: {groups: [ai-assistants]}
                target: api
                rules:
                  - {name: reads, when: {method: [GET]}, then: allow}

            """
        return try GateProcess(config: yaml, ports: ["api": port])
    }

    @Test func theGatePresentsTheTargetsClientCertificateToAnUpstreamThatRequiresOne() throws {
        let c = try Self.certificates()
        let nginx = try NginxServer(files: ["ok.json": #"{"ok": true}"#], tls: (c.cert, c.key),
                                    extraServer: "ssl_client_certificate \(c.ca); ssl_verify_client on;")
        defer { nginx.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])

        let withCert = try gate(upstream: nginx, ca: c.ca, credentials: "{certificate_file: \(c.clientCert), key_file: \(c.clientKey)}")
        defer { withCert.stop() }
        let ok = try run("curl", ["-sS", "--max-time", "60", "-w", "\n%{http_code}", "-H", "Authorization: Bearer \(agent)",
                                  "http://127.0.0.1:\(withCert.port("api"))/ok.json"])
        #expect(ok.stdout == "{\"ok\": true}\n200", "\(ok)")
        // The certificate is the credential: no Authorization went upstream.
        #expect(nginx.accessLog.count == 1 && nginx.accessLog[0].contains("status=200") && nginx.accessLog[0].contains("auth=[-]"), "\(nginx.accessLog)")

        // The same upstream through a gate with a token only: nginx refuses it for want of a certificate.
        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("k8smore20-token-\(UUID().uuidString)")
        try "a-token\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        let withoutCert = try gate(upstream: nginx, ca: c.ca, credentials: "{token_file: \(tokenFile.path)}")
        defer { withoutCert.stop() }
        let refused = try run("curl", ["-sS", "--max-time", "60", "-w", "\n%{http_code}", "-H", "Authorization: Bearer \(agent)",
                                       "http://127.0.0.1:\(withoutCert.port("api"))/ok.json"])
        #expect(refused.stdout.hasSuffix("\n400") && refused.stdout.contains("No required SSL certificate was sent"), "\(refused)")
        try withCert.expectNoSecrets([agent])
    }
}
