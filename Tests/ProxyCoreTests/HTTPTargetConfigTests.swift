import Foundation
import ProxyCore
import Testing

/// `protocol: http` targets as the configuration spells them: credential, limits, upstream TLS.
@Suite("HTTP targets in the configuration")
struct HTTPTargetConfigTests {
    func target(_ body: String, environment: [String: String] = [:]) throws -> TargetConfig {
        let yaml = """
            proxy: {id: t, captures: /nonexistent, signing_key: /nonexistent}
            identity: {issuer: "http://127.0.0.1:9400", audiences: [tollgate]}
            targets:
              api: {protocol: http, listen: 127.0.0.1:8499, upstream: 127.0.0.1:8500, \(body)}
            """
        return try GateConfig.parse(yaml: yaml, file: "t.yaml", environment: environment).targets[0]
    }

    @Test func aBearerTokenFromTheEnvironmentAndLimits() throws {
        let t = try target("upstream_tls: disable, credentials: {token_env: API_TOKEN}, limits: {max_header_bytes: 8k, max_body_bytes: 1m}",
                           environment: ["API_TOKEN": "s3cret"])
        #expect(t.protocolKind == .http && t.http?.credential == .bearer("s3cret") && t.http?.credentialSource == "env API_TOKEN")
        #expect(t.http?.maxHeaderBytes == 8 * 1024 && t.http?.maxBodyBytes == 1 << 20)
    }

    @Test func basicAuthAndNoCredentialAtAll() throws {
        let b = try target("upstream_tls: disable, credentials: {user: svc, password_env: PW}", environment: ["PW": "pw"])
        #expect(b.http?.credential == .basic(user: "svc", password: "pw"))
        #expect(try target("upstream_tls: disable").http?.credential == HTTPTargetSettings.Credential.none)
    }

    @Test func upstreamTLSVerifiesByDefaultAndAnInlineTokenIsRefused() throws {
        // verify-full is the default: without a CA file the target is refused, not left unverified.
        #expect(throws: ConfigError.self) { try target("credentials: {token_env: X}", environment: ["X": "x"]) }
        #expect(throws: ConfigError.self) { try target("upstream_tls: disable, credentials: {token: inline}") }
        #expect(throws: ConfigError.self) { try target("upstream_tls: require") }
        // Strict recording is taken for HTTP targets as for PostgreSQL.
        #expect(try target("upstream_tls: disable, recording: {durability: strict}").recordDurability == .strict)
    }
}
