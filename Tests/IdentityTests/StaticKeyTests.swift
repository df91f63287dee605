import Foundation
import Identity
import Testing

/// Air-gapped mode (a static JWKS file) with tokens the tests sign themselves (Python
/// `cryptography`): algorithms, time claims, claim checks, key selection, rotation by file.
@Suite struct StaticKeyTests {
    static let issuer = "https://idp.example.test"  // never contacted: the keys come from the file
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z
    static let t0Seconds = 1_800_000_000

    static func claims(_ changes: [String: Any?] = [:]) -> [String: Any] {
        var claims: [String: Any] = [
            "iss": issuer, "aud": "tollgate", "sub": "alice", "groups": ["dba", "ai-assistants"],
            "iat": t0Seconds - 10, "exp": t0Seconds + 600, "email": "alice@example.com", "name": "Alice", "jti": "token-1",
        ]
        for (name, value) in changes { claims[name] = value }
        return claims
    }

    static func configuration(_ jwks: URL, allowedAlgorithms: [String] = ["RS256", "ES256", "EdDSA"],
                              groupsClaim: String = "groups") throws -> IdentityConfiguration {
        try IdentityConfiguration(issuer: issuer, audiences: ["tollgate"], groupsClaim: groupsClaim,
                                  allowedAlgorithms: allowedAlgorithms, staticJWKSPath: jwks.path)
    }

    /// Keys, a JWKS of them, and a verifier at `t0`.
    struct Setup {
        let directory: URL
        let keys: TestKeys
        let jwks: URL
        let clock = TestClock(StaticKeyTests.t0)

        init(_ specs: [String], published: [String]? = nil) async throws {
            directory = try temporaryDirectory()
            keys = try await TestKeys.make(specs, in: directory)
            jwks = directory.appendingPathComponent("jwks.json")
            try keys.writeJWKS(published ?? specs.map { String($0.split(separator: ":")[0]) }, to: jwks)
        }

        func verifier(_ configuration: IdentityConfiguration? = nil) throws -> OIDCVerifier {
            OIDCVerifier(configuration: try configuration ?? StaticKeyTests.configuration(jwks), clock: clock.closure)
        }

        func token(_ key: String, _ alg: String, kid: String?? = .none, claims: [String: Any] = StaticKeyTests.claims()) async throws -> String {
            let header: [String: Any] = switch kid {
            case .none: ["kid": key]
            case .some(nil): [:]
            case .some(let kid?): ["kid": kid]
            }
            return try await sign(SignSpec(key: keys.privateKeyPath(key), alg: alg, header: header, claims: claims))
        }

        /// Many tokens from one key in one signing run (one Python start instead of many).
        func tokens(_ key: String, _ alg: String, _ claimSets: [[String: Any]]) async throws -> [String] {
            try await sign(claimSets.map { SignSpec(key: keys.privateKeyPath(key), alg: alg, header: ["kid": key], claims: $0) })
        }

        func cleanUp() { try? FileManager.default.removeItem(at: directory) }
    }

    @Test func edDSAES256AndRS256TokensAreAccepted() async throws {
        let setup = try await Setup(["rsa-1:rsa", "rsa-2:rsa", "ec-1:ec", "ed-1:ed"])
        defer { setup.cleanUp() }
        let verifier = try setup.verifier()

        for (key, alg, expected) in [("rsa-1", "RS256", SigningAlgorithm.rs256), ("ec-1", "ES256", .es256), ("ed-1", "EdDSA", .edDSA)] {
            let identity = try await verifier.verify(token: try await setup.token(key, alg))
            #expect(identity == VerifiedIdentity(
                subject: "alice", groups: ["dba", "ai-assistants"], issuer: Self.issuer, audience: "tollgate",
                expiresAt: Self.t0 + 600, issuedAt: Self.t0 - 10, email: "alice@example.com", name: "Alice",
                tokenID: "token-1", algorithm: expected, keyID: key))
        }
        // Without a kid: accepted only where exactly one key can verify the algorithm.
        #expect(try await verifier.verify(token: try await setup.token("ed-1", "EdDSA", kid: .some(nil))).algorithm == .edDSA)
        #expect(try await verifier.verify(token: try await setup.token("ec-1", "ES256", kid: .some(nil))).keyID == nil)
        let ambiguous = await expectRefusal(verifier, try await setup.token("rsa-1", "RS256", kid: .some(nil)), .unknownKey)
        #expect(ambiguous?.message.contains("several RS256 keys") == true)

        // A kid naming a key of another type does not select it.
        await expectRefusal(verifier, try await setup.token("ec-1", "ES256", kid: "ed-1"), .unknownKey)
        // Signed by one published key, claiming to be another.
        await expectRefusal(verifier, try await setup.token("rsa-2", "RS256", kid: "rsa-1"), .invalidSignature)

        // PS256 only when configured.
        let ps = try await setup.token("rsa-1", "PS256")
        await expectRefusal(verifier, ps, .unsupportedAlgorithm)
        let psVerifier = try setup.verifier(Self.configuration(setup.jwks, allowedAlgorithms: ["PS256"]))
        #expect(try await psVerifier.verify(token: ps).algorithm == .ps256)
        // The file was read once and nothing was contacted (the issuer's host does not exist).
        #expect(await verifier.statistics.keySetLoads == 1)
        #expect(await verifier.knownKeyIDs == ["ec-1", "ed-1", "rsa-1", "rsa-2"])
    }

    @Test func timeClaimsAreCheckedWithClockSkew() async throws {
        let setup = try await Setup(["ed-1:ed"])
        defer { setup.cleanUp() }
        let verifier = try setup.verifier()
        let t = Self.t0Seconds
        let cases: [(changes: [String: Any?], refusal: IdentityError.Reason?)] = [
            (["exp": t - 3600], .expired),
            (["exp": t - 61], .expired),
            (["exp": t - 59], nil),                       // within the 60 s skew
            (["nbf": t + 3600], .notYetValid),
            (["nbf": t + 61], .notYetValid),
            (["nbf": t + 59], nil),
            (["iat": t + 3600], .notYetValid),            // issued in the future
            (["iat": t + 59], nil),
            (["iat": nil], nil),                          // iat and nbf are optional,
            (["exp": nil], .malformedToken),              // exp is not
            (["exp": "\(t + 600)"], .malformedToken),
            (["exp": 1e300], .malformedToken),
            (["nbf": true], .malformedToken),
            (["exp": Double(t) + 600.5], nil),            // fractional NumericDate
            ([:], nil),
        ]
        let tokens = try await setup.tokens("ed-1", "EdDSA", cases.map { Self.claims($0.changes) })
        for (index, (changes, refusal)) in cases.enumerated() {
            if let refusal {
                await expectRefusal(verifier, tokens[index], refusal)
            } else {
                await #expect(throws: Never.self, "\(changes)") { _ = try await verifier.verify(token: tokens[index]) }
            }
        }
        // Client-safe messages name the time, nothing else.
        #expect(await expectRefusal(verifier, tokens[0], .expired)?.message == "token expired at 2027-01-15T07:00:00Z")
        #expect(await expectRefusal(verifier, tokens[3], .notYetValid)?.message == "token is not valid before 2027-01-15T09:00:00Z")
        #expect(try await verifier.verify(token: tokens[5]).notBefore == Self.t0 + 59)
        #expect(try await verifier.verify(token: tokens[7]).issuedAt == Self.t0 + 59)
        #expect(try await verifier.verify(token: tokens[13]).expiresAt == Self.t0 + 600.5)

        // The same token, later: accepted until exp + skew, refused after.
        let token = tokens[14]
        setup.clock.advance(600 + 59)
        #expect(try await verifier.verify(token: token).subject == "alice")
        setup.clock.advance(2)
        await expectRefusal(verifier, token, .expired)

        // Skew is configurable (zero here).
        let strict = try setup.verifier(IdentityConfiguration(issuer: Self.issuer, audiences: ["tollgate"], clockSkew: .zero,
                                                              staticJWKSPath: setup.jwks.path))
        setup.clock.advance(-60)  // back to t0 + 601
        await expectRefusal(strict, token, .expired)
    }

    @Test func issuerAudienceSubjectAndGroupsAreChecked() async throws {
        let setup = try await Setup(["ec-1:ec"])
        defer { setup.cleanUp() }
        let verifier = try setup.verifier()
        let cases: [(changes: [String: Any?], refusal: IdentityError.Reason?, secrets: [String])] = [
            (["iss": "https://evil.example"], .wrongIssuer, ["evil.example"]),
            (["iss": Self.issuer + "/"], .wrongIssuer, []),
            (["iss": nil], .wrongIssuer, []),
            (["aud": ["billing", "tollgate"]], nil, []),
            (["aud": ["billing", "reports-secret-audience"]], .wrongAudience, ["reports-secret-audience"]),
            (["aud": nil], .wrongAudience, []),
            (["aud": "Tollgate"], .wrongAudience, []),
            (["sub": nil], .missingSubject, []),
            (["sub": ""], .missingSubject, []),
            (["sub": "   "], .missingSubject, []),
            (["sub": 42], .missingSubject, []),
            (["sub": "alice\nINFO forged log line"], .malformedToken, ["forged"]),
            (["groups": nil], nil, []),
            (["groups": "dba"], nil, []),
            (["groups": ["dba", 7]], .malformedToken, []),
            (["groups": ["admin": true]], .malformedToken, []),
            (["email": nil, "name": nil, "jti": nil, "iat": nil], nil, []),
            (["roles": ["reader"]], nil, []),
            (["email": nil], nil, []),
        ]
        let tokens = try await setup.tokens("ec-1", "ES256", cases.map { Self.claims($0.changes) })
        for (index, (changes, refusal, secrets)) in cases.enumerated() {
            if let refusal {
                await expectRefusal(verifier, tokens[index], refusal, secrets: secrets)
            } else {
                await #expect(throws: Never.self, "\(changes)") { _ = try await verifier.verify(token: tokens[index]) }
            }
        }
        #expect(try await verifier.verify(token: tokens[3]).audience == "tollgate")
        #expect(try await verifier.verify(token: tokens[12]).groups == [])
        #expect(try await verifier.verify(token: tokens[13]).groups == ["dba"])
        let minimal = try await verifier.verify(token: tokens[16])
        #expect(minimal.email == nil && minimal.name == nil && minimal.tokenID == nil && minimal.issuedAt == nil)

        // Other claim names: groups from "roles", the subject from "email".
        let roles = try setup.verifier(IdentityConfiguration(issuer: Self.issuer, audiences: ["tollgate"], groupsClaim: "roles",
                                                             subjectClaim: "email", staticJWKSPath: setup.jwks.path))
        let identity = try await roles.verify(token: tokens[17])
        #expect(identity.groups == ["reader"])
        #expect(identity.subject == "alice@example.com")
        await expectRefusal(roles, tokens[18], .missingSubject)
    }

    @Test func keysRotateByReplacingTheFile() async throws {
        let setup = try await Setup(["old:rsa", "new:ed"], published: ["old"])
        defer { setup.cleanUp() }
        let verifier = try setup.verifier()
        let far = Self.claims(["exp": Self.t0Seconds + 86_400])
        let oldToken = try await setup.token("old", "RS256", claims: far)
        let newToken = try await setup.token("new", "EdDSA", claims: far)

        #expect(try await verifier.verify(token: oldToken).keyID == "old")
        // The new key is not published yet; the file was read moments ago, so it is not re-read.
        await expectRefusal(verifier, newToken, .unknownKey)
        #expect(await verifier.statistics.suppressedRefetches == 1)

        try setup.keys.writeJWKS(["old", "new"], to: setup.jwks)
        await expectRefusal(verifier, newToken, .unknownKey)  // still within the minimum interval
        setup.clock.advance(31)
        #expect(try await verifier.verify(token: newToken).keyID == "new")  // one refetch
        #expect(await verifier.statistics.unknownKeyRefetches == 1)

        // The old key is withdrawn: it keeps working until the cache's TTL, not after.
        try setup.keys.writeJWKS(["new"], to: setup.jwks)
        #expect(try await verifier.verify(token: oldToken).keyID == "old")
        setup.clock.advance(3600)
        await expectRefusal(verifier, oldToken, .unknownKey)
        #expect(try await verifier.verify(token: newToken).keyID == "new")
        #expect(await verifier.knownKeyIDs == ["new"])
        #expect(await verifier.statistics.keySetLoads == 3)
    }

    @Test func unusableKeysAreSkippedNotTrusted() async throws {
        let setup = try await Setup(["good:ed", "small:rsa1024", "enc:rsa", "pinned:rsa"], published: ["good"])
        defer { setup.cleanUp() }
        var encryption = try setup.keys.publicJWK("enc")
        encryption["use"] = "enc"
        var pinned = try setup.keys.publicJWK("pinned")
        pinned["alg"] = "RS512"
        let extra: [[String: Any]] = [
            ["kty": "oct", "kid": "shared-secret", "k": "c2VjcmV0"],
            try setup.keys.publicJWK("small"), encryption, pinned,
            ["kty": "OKP", "kid": "x25519", "crv": "X25519", "x": "AAAA"],
            ["kty": "EC", "kid": "broken", "crv": "P-256", "x": "AAAA", "y": "AAAA"],
            ["kid": "no-kty"],
        ]
        try setup.keys.writeJWKS(["good"], to: setup.jwks, extra: extra)
        let verifier = try setup.verifier()

        #expect(try await verifier.verify(token: try await setup.token("good", "EdDSA")).subject == "alice")
        #expect(await verifier.knownKeyIDs == ["good"])
        await expectRefusal(verifier, try await setup.token("small", "RS256"), .unknownKey)  // RSA < 2048 bits
        await expectRefusal(verifier, try await setup.token("enc", "RS256"), .unknownKey)    // use: enc
        await expectRefusal(verifier, try await setup.token("pinned", "RS256"), .unknownKey) // alg: RS512 only
        // HMAC with the "oct" key's kid is refused at the algorithm, before any key is considered.
        let hmac = [JWT.encode(["alg": "HS256", "kid": "shared-secret"]), JWT.encode(Self.claims()), "c2ln"].joined(separator: ".")
        await expectRefusal(verifier, hmac, .unsupportedAlgorithm)
    }

    @Test func malformedTokensAreRefused() async throws {
        let setup = try await Setup(["ed-1:ed"])
        defer { setup.cleanUp() }
        let verifier = try setup.verifier()
        let good = try await setup.token("ed-1", "EdDSA")
        let parts = JWT.segments(good)
        let payload = JWT.encode(Self.claims())

        let malformed = [
            "", "not-a-token", parts[0] + "." + parts[1], good + ".extra.parts", "Bearer " + good,
            "!!!." + parts[1] + "." + parts[2], parts[0] + "=." + parts[1] + "." + parts[2],
            JWT.encode(Data("not json".utf8)) + "." + payload + ".c2ln",
            JWT.encode(["typ": "JWT"]) + "." + payload + ".c2ln",
            JWT.encode(["alg": 256]) + "." + payload + ".c2ln",
            JWT.encode(["alg": "EdDSA", "kid": 7]) + "." + payload + ".c2ln",
            JWT.encode(["alg": "EdDSA", "kid": "ed-1", "crit": ["exp"]]) + "." + payload + ".c2ln",
            String(repeating: "A", count: 70_000) + "." + payload + ".c2ln",
        ]
        for token in malformed {
            await expectRefusal(verifier, token, .malformedToken)
        }
        // A correctly signed payload that is not a claims object.
        let array = try await sign(SignSpec(key: setup.keys.privateKeyPath("ed-1"), alg: "EdDSA", header: ["kid": "ed-1"], claims: [1, 2]))
        await expectRefusal(verifier, array, .malformedToken)
        // Nothing above needed the key set: refused while parsing.
        #expect(await verifier.statistics.keySetLoads == 1)
        #expect(await verifier.statistics.refused == malformed.count + 1)
    }

    @Test func aMissingStaticFileFailsClosed() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let verifier = OIDCVerifier(configuration: try Self.configuration(directory.appendingPathComponent("absent.json")))
        let token = [JWT.encode(["alg": "EdDSA", "kid": "k"]), JWT.encode(Self.claims()), "c2ln"].joined(separator: ".")
        let error = await expectRefusal(verifier, token, .jwksUnavailable)
        #expect(error?.isProviderFailure == true)
        #expect(error?.operatorDetail?.contains("absent.json") == true)
        #expect(error?.message.contains("absent.json") == false)
        await #expect(throws: IdentityError.self) { try await verifier.refresh() }
        try Data("{\"keys\": 5}".utf8).write(to: directory.appendingPathComponent("absent.json"))
        await expectRefusal(OIDCVerifier(configuration: try Self.configuration(directory.appendingPathComponent("absent.json"))),
                            token, .jwksUnavailable)
    }
}
