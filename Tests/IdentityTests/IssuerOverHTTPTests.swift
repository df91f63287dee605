import Foundation
import Identity
import Testing

/// Discovery and JWKS over HTTP from an issuer whose documents the test writes (a loopback server
/// run by the fixture script): rotation, outage, and what discovery may point to.
@Suite struct IssuerOverHTTPTests {
    static let t0 = StaticKeyTests.t0

    struct Issuer {
        let server: FixtureServer
        let root: URL
        var base: String { server.base }
        var jwks: URL { root.appendingPathComponent("jwks.json") }

        func writeDiscovery(issuer: String? = nil, jwksURI: String? = nil) throws {
            let wellKnown = root.appendingPathComponent(".well-known")
            try FileManager.default.createDirectory(at: wellKnown, withIntermediateDirectories: true)
            let document = ["issuer": issuer ?? base, "jwks_uri": jwksURI ?? base + "/jwks.json"]
            try JSONSerialization.data(withJSONObject: document)
                .write(to: wellKnown.appendingPathComponent("openid-configuration"), options: .atomic)
        }

        func jwksRequests() async throws -> Int { try await server.requestCounts()["GET /jwks.json"] ?? 0 }
    }

    static func claims(issuer: String) -> [String: Any] {
        var claims = StaticKeyTests.claims(["exp": StaticKeyTests.t0Seconds + 86_400])
        claims["iss"] = issuer
        return claims
    }

    @Test func rotationAndOutage() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let root = directory.appendingPathComponent("www")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let keys = try await TestKeys.make(["k1:rsa", "k2:ec"], in: directory.appendingPathComponent("keys"))

        try await withServer({ try await FixtureServer.staticIssuer(root) }) { server in
            let issuer = Issuer(server: server, root: root)
            try issuer.writeDiscovery()
            try keys.writeJWKS(["k1"], to: issuer.jwks)
            let clock = TestClock(Self.t0)
            let verifier = OIDCVerifier(configuration: try IdentityConfiguration(issuer: issuer.base, audiences: ["tollgate"]),
                                        clock: clock.closure)
            let claims = Self.claims(issuer: issuer.base)
            let token1 = try await sign(SignSpec(key: keys.privateKeyPath("k1"), alg: "RS256", header: ["kid": "k1"], claims: claims))
            let token2 = try await sign(SignSpec(key: keys.privateKeyPath("k2"), alg: "ES256", header: ["kid": "k2"], claims: claims))

            try await verifier.refresh()
            #expect(try await verifier.verify(token: token1).keyID == "k1")
            #expect(try await issuer.jwksRequests() == 1)
            #expect(try await server.requestCounts()["GET /.well-known/openid-configuration"] == 1)

            // A new key appears: found by the refetch an unknown kid triggers.
            try keys.writeJWKS(["k1", "k2"], to: issuer.jwks)
            clock.advance(31)
            #expect(try await verifier.verify(token: token2).keyID == "k2")
            #expect(try await issuer.jwksRequests() == 2)

            // k1 is withdrawn: refused once the TTL has passed and the set was refreshed.
            try keys.writeJWKS(["k2"], to: issuer.jwks)
            #expect(try await verifier.verify(token: token1).keyID == "k1")
            clock.advance(3600)
            await expectRefusal(verifier, token1, .unknownKey)
            #expect(try await verifier.verify(token: token2).keyID == "k2")
            #expect(try await issuer.jwksRequests() == 3)

            // Outage: the JWKS disappears. Within the staleness allowance the expired set is used,
            // and the failing provider is not asked again before the minimum interval.
            try FileManager.default.removeItem(at: issuer.jwks)
            clock.advance(3600)
            #expect(try await verifier.verify(token: token2).keyID == "k2")
            #expect(try await verifier.verify(token: token2).keyID == "k2")
            var statistics = await verifier.statistics
            #expect(statistics.keySetLoadFailures == 1)
            #expect(statistics.staleKeySetUses == 2)
            #expect(try await issuer.jwksRequests() == 4)
            await #expect(throws: IdentityError.self) { try await verifier.refresh() }

            // Past the allowance: fail closed, as a provider failure (not the client's fault).
            clock.advance(601)
            let error = await expectRefusal(verifier, token2, .jwksUnavailable)
            #expect(error?.isProviderFailure == true)
            #expect(error?.operatorDetail?.contains("HTTP 404") == true)

            // Recovery.
            try keys.writeJWKS(["k2"], to: issuer.jwks)
            clock.advance(31)
            #expect(try await verifier.verify(token: token2).keyID == "k2")
            statistics = await verifier.statistics
            #expect(statistics.keySetLoads == 4)
        }
    }

    @Test func discoveryIsChecked() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withServer({ try await FixtureServer.staticIssuer(directory) }) { server in
            let issuer = Issuer(server: server, root: directory)
            func reason() async -> IdentityError? {
                do {
                    try await OIDCVerifier(configuration: try IdentityConfiguration(issuer: issuer.base, audiences: ["tollgate"])).refresh()
                    return nil
                } catch {
                    return error
                }
            }
            // No discovery document.
            #expect(await reason()?.reason == .discoveryFailed)
            // A document for another issuer.
            try issuer.writeDiscovery(issuer: "https://someone-else.example")
            #expect(await reason()?.reason == .discoveryFailed)
            // Keys over plain http from a non-loopback host.
            try issuer.writeDiscovery(jwksURI: "http://keys.example.com/jwks.json")
            let plain = await reason()
            #expect(plain?.reason == .discoveryFailed)
            #expect(plain?.operatorDetail?.contains("plain http") == true)
            // A JWKS that is not one.
            try issuer.writeDiscovery()
            try Data("<html>".utf8).write(to: issuer.jwks)
            #expect(await reason()?.reason == .jwksUnavailable)
            try Data("{\"keys\": []}".utf8).write(to: issuer.jwks)
            #expect(await reason() == nil)
        }
    }
}
