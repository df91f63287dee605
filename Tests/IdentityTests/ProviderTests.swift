import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Identity
import Testing

/// Against a real OIDC provider (oidc-provider-mock, run as a subprocess) and tokens from its real
/// authorization-code flow.
@Suite struct ProviderTests {
    static let clientID = "tollgate"

    static func configuration(issuer: String, audiences: [String] = [clientID], subjectClaim: String = "sub",
                              minimumRefetchInterval: Duration = .seconds(30)) throws -> IdentityConfiguration {
        try IdentityConfiguration(issuer: issuer, audiences: audiences, subjectClaim: subjectClaim,
                                  minimumRefetchInterval: minimumRefetchInterval, httpTimeout: .seconds(5))
    }

    @Test func pythonAndTheProviderPackageAreInstalled() async throws {
        try await Fixture.requirePython()
    }

    @Test func providerTokensAreAccepted() async throws {
        try await withServer(FixtureServer.provider) { provider in
            let login = try await ProviderLogin.run(
                provider: provider, subject: "alice", clientID: Self.clientID,
                claims: ["groups": ["dba", "ai-assistants"], "email": "alice@example.com", "name": "Alice Example"])
            let verifier = OIDCVerifier(configuration: try Self.configuration(issuer: provider.base))

            let identity = try await verifier.verify(token: login.idToken)
            #expect(identity.subject == "alice")
            #expect(identity.groups == ["dba", "ai-assistants"])
            #expect(identity.issuer == provider.base)
            #expect(identity.audience == Self.clientID)
            #expect(identity.email == "alice@example.com")
            #expect(identity.name == "Alice Example")
            #expect(identity.algorithm == .rs256)
            #expect(identity.keyID == nil, "the mock's ID tokens carry no kid: the JWKS's single key is used")
            #expect(identity.expiresAt > Date())

            // Cached: a second verification fetches nothing.
            _ = try await verifier.verify(token: login.idToken)
            #expect(await verifier.statistics.keySetLoads == 1)
            let counts = try await provider.requestCounts()
            #expect(counts["GET /.well-known/openid-configuration"] == 1)
            #expect(counts["GET /jwks"] == 1)

            // The mock issues opaque access tokens (not JWTs): they are refused as malformed, not
            // mistaken for something verifiable. Were it a JWT, it must verify like the ID token.
            if JWT.segments(login.accessToken).count == 3 {
                #expect(try await verifier.verify(token: login.accessToken).subject == "alice")
            } else {
                await expectRefusal(verifier, login.accessToken, .malformedToken)
            }

            // Another subject claim, and a groups claim that is a single string.
            let bob = try await ProviderLogin.run(provider: provider, subject: "bob", clientID: Self.clientID,
                                                  claims: ["groups": "dba", "email": "bob@example.com"])
            let byEmail = OIDCVerifier(configuration: try Self.configuration(issuer: provider.base, subjectClaim: "email"))
            let bobIdentity = try await byEmail.verify(token: bob.idToken)
            #expect(bobIdentity.subject == "bob@example.com")
            #expect(bobIdentity.groups == ["dba"])
            #expect(bobIdentity.name == nil)
        }
    }

    @Test func wrongAudienceAndWrongIssuerAreRefused() async throws {
        try await withServer(FixtureServer.provider) { provider in
            let login = try await ProviderLogin.run(provider: provider, subject: "alice", clientID: Self.clientID,
                                                    claims: ["groups": ["dba"]])
            // Same provider, same keys, but the gate is another client.
            let otherAudience = OIDCVerifier(configuration: try Self.configuration(issuer: provider.base, audiences: ["billing-api"]))
            await expectRefusal(otherAudience, login.idToken, .wrongAudience, secrets: [Self.clientID])
            // Several configured audiences: one match is enough.
            let several = OIDCVerifier(configuration: try Self.configuration(issuer: provider.base, audiences: ["billing-api", Self.clientID]))
            #expect(try await several.verify(token: login.idToken).audience == Self.clientID)

            // The same server reached as "localhost" is, for OIDC, another issuer: its discovery
            // document says http://localhost:PORT and serves the very same keys, so only the token's
            // `iss` (http://127.0.0.1:PORT) can tell. The signature is valid; the issuer is not.
            let localhost = "http://localhost:\(provider.port)"
            let otherIssuer = OIDCVerifier(configuration: try Self.configuration(issuer: localhost))
            try await otherIssuer.refresh()
            await expectRefusal(otherIssuer, login.idToken, .wrongIssuer, secrets: [provider.base])

            // The configured issuer must match the discovery document exactly: a trailing slash is
            // another issuer, and discovery fails before any key is trusted.
            let slash = OIDCVerifier(configuration: try Self.configuration(issuer: provider.base + "/"))
            let error = await expectRefusal(slash, login.idToken, .discoveryFailed)
            #expect(error?.isProviderFailure == true)
            #expect(error?.operatorDetail?.contains("names issuer") == true)
        }
    }

    @Test func forgedTokensAreRefused() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let keys = try await TestKeys.make(["rogue:rsa"], in: directory)

        try await withServer(FixtureServer.provider) { provider in
            let login = try await ProviderLogin.run(provider: provider, subject: "mallory", clientID: Self.clientID,
                                                    claims: ["groups": ["interns"]])
            let verifier = OIDCVerifier(configuration: try Self.configuration(issuer: provider.base))
            let original = JWT.object(JWT.segments(login.idToken)[1])

            let (jwksData, _) = try await URLSession.shared.data(from: URL(string: provider.base + "/jwks")!)
            let providerKey = try #require((try JSONSerialization.jsonObject(with: jwksData) as? [String: Any])?["keys"] as? [[String: Any]]).first
            let jwksRequestsBefore = try await provider.requestCounts()["GET /jwks"]

            // alg none and HMAC are refused before any key is looked up: nothing is fetched.
            let unsigned = [JWT.encode(["alg": "none", "typ": "JWT"]), JWT.segments(login.idToken)[1], ""].joined(separator: ".")
            await expectRefusal(verifier, unsigned, .unsupportedAlgorithm, secrets: ["mallory"])
            let unsignedKeepingSignature = JWT.replacingHeader(login.idToken, ["alg": "None"])
            await expectRefusal(verifier, unsignedKeepingSignature, .unsupportedAlgorithm)

            // The classic confusion: HS256 with the provider's RSA public key (its PEM) as the secret.
            var elevated = original
            elevated["groups"] = ["dba"]
            let confused = try await sign(SignSpec(alg: "HS256", claims: elevated, hmacSecretJWK: providerKey))
            await expectRefusal(verifier, confused, .unsupportedAlgorithm, secrets: ["mallory", "dba"])
            // An allowed-looking but not configured algorithm: refused the same way.
            await expectRefusal(verifier, JWT.replacingHeader(login.idToken, ["alg": "RS512", "typ": "JWT"]), .unsupportedAlgorithm)

            #expect(await verifier.statistics.keySetLoads == 0)
            #expect(try await provider.requestCounts()["GET /jwks"] == jwksRequestsBefore)

            // Tampered payload, signature kept.
            let tampered = JWT.tamperingPayload(login.idToken) { $0["groups"] = ["dba"]; $0["sub"] = "root" }
            await expectRefusal(verifier, tampered, .invalidSignature, secrets: ["mallory", "root", "dba"])
            let laterExpiry = JWT.tamperingPayload(login.idToken) { $0["exp"] = (original["exp"] as! Int) + 86_400 }
            await expectRefusal(verifier, laterExpiry, .invalidSignature)

            // Signed by a key the provider does not have, without a kid: the JWKS's only RS256 key
            // is the candidate, and the signature does not match it.
            var claims = original
            claims["sub"] = "root"
            let rogueNoKid = try await sign(SignSpec(key: keys.privateKeyPath("rogue"), alg: "RS256", claims: claims))
            await expectRefusal(verifier, rogueNoKid, .invalidSignature, secrets: ["root"])

            // And the genuine token still works.
            #expect(try await verifier.verify(token: login.idToken).subject == "mallory")
        }
    }

    @Test func unknownKeyIsRefusedAfterOneRateLimitedRefetch() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let keys = try await TestKeys.make(["rogue-kid:rsa"], in: directory)

        try await withServer(FixtureServer.provider) { provider in
            let login = try await ProviderLogin.run(provider: provider, subject: "alice", clientID: Self.clientID,
                                                    claims: ["groups": ["dba"]])
            let clock = TestClock(Date())
            let verifier = OIDCVerifier(configuration: try Self.configuration(issuer: provider.base), clock: clock.closure)

            // A cold verifier under 20 concurrent verifications loads the key set once.
            let accepted = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<20 { group.addTask { (try? await verifier.verify(token: login.idToken)) != nil } }
                return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(accepted == 20)
            #expect(await verifier.statistics.keySetLoads == 1)
            #expect(try await provider.requestCounts()["GET /jwks"] == 1)

            // Signed by our own key, with a kid the provider does not publish; otherwise perfect.
            var claims = JWT.object(JWT.segments(login.idToken)[1])
            claims["sub"] = "root"
            let rogue = try await sign(SignSpec(key: keys.privateKeyPath("rogue-kid"), alg: "RS256",
                                                header: ["kid": "rogue-kid"], claims: claims))

            // The key set was loaded less than the minimum interval ago: no refetch, refused.
            await expectRefusal(verifier, rogue, .unknownKey, secrets: ["rogue-kid", "root"])
            #expect(await verifier.statistics.suppressedRefetches == 1)
            #expect(try await provider.requestCounts()["GET /jwks"] == 1)

            // Past the interval: one refetch, shared by 10 concurrent verifications, then refused.
            clock.advance(31)
            let reasons = await withTaskGroup(of: IdentityError.Reason?.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        do { _ = try await verifier.verify(token: rogue); return nil } catch { return (error as? IdentityError)?.reason }
                    }
                }
                return await group.reduce(into: [IdentityError.Reason?]()) { $0.append($1) }
            }
            #expect(reasons == Array(repeating: .unknownKey, count: 10))
            let statistics = await verifier.statistics
            #expect(statistics.unknownKeyRefetches == 1)
            #expect(statistics.keySetLoads == 2)
            #expect(try await provider.requestCounts()["GET /jwks"] == 2)

            // Right after, the same unknown kid cannot make the gate fetch again.
            await expectRefusal(verifier, rogue, .unknownKey)
            #expect(try await provider.requestCounts()["GET /jwks"] == 2)
            #expect(await verifier.statistics.keySetLoads == 2)

            // The genuine token is unaffected.
            #expect(try await verifier.verify(token: login.idToken).subject == "alice")
        }
    }
}
