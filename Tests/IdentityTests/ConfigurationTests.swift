import Foundation
import Identity
import Testing

@Suite struct ConfigurationTests {
    func refusal(_ make: () throws(IdentityError) -> IdentityConfiguration) -> IdentityError? {
        do {
            _ = try make()
            return nil
        } catch {
            return error
        }
    }

    @Test func defaults() throws {
        let configuration = try IdentityConfiguration(issuer: "https://idp.example.com", audiences: ["tollgate"])
        #expect(configuration.groupsClaim == "groups")
        #expect(configuration.subjectClaim == "sub")
        #expect(configuration.clockSkew == .seconds(60))
        #expect(configuration.allowedAlgorithms == [.rs256, .es256, .edDSA])
        #expect(configuration.staticJWKSPath == nil)
        #expect(configuration.jwksCacheTTL == .seconds(3600))
        #expect(configuration.minimumRefetchInterval == .seconds(30))
        #expect(configuration.plainHTTP == .loopbackOnly)
        #expect(configuration.discoveryURL?.absoluteString == "https://idp.example.com/.well-known/openid-configuration")
        let withSlash = try IdentityConfiguration(issuer: "https://idp.example.com/realms/x/", audiences: ["a"])
        #expect(withSlash.discoveryURL?.absoluteString == "https://idp.example.com/realms/x/.well-known/openid-configuration")
    }

    @Test(arguments: ["HS256", "HS384", "HS512", "hs256", "none", "None", "NONE", ""])
    func symmetricAndUnsignedAlgorithmsAreNeverAccepted(_ name: String) {
        let error = refusal { () throws(IdentityError) in
            try IdentityConfiguration(issuer: "https://idp.example.com", audiences: ["tollgate"], allowedAlgorithms: ["RS256", name])
        }
        #expect(error?.reason == .configuration)
        #expect(error?.message.contains("never accepted") == true)
    }

    @Test func otherConfigurationErrors() {
        func reason(_ make: () throws(IdentityError) -> IdentityConfiguration) -> IdentityError.Reason? { refusal(make)?.reason }
        #expect(reason { () throws(IdentityError) in try IdentityConfiguration(issuer: "https://idp.example.com", audiences: ["t"], allowedAlgorithms: ["RS1"]) } == .configuration)
        #expect(reason { () throws(IdentityError) in try IdentityConfiguration(issuer: "https://idp.example.com", audiences: ["t"], allowedAlgorithms: []) } == .configuration)
        #expect(reason { () throws(IdentityError) in try IdentityConfiguration(issuer: "https://idp.example.com", audiences: []) } == .configuration)
        #expect(reason { () throws(IdentityError) in try IdentityConfiguration(issuer: "https://idp.example.com", audiences: [""]) } == .configuration)
        #expect(reason { () throws(IdentityError) in try IdentityConfiguration(issuer: "", audiences: ["t"]) } == .configuration)
        #expect(reason { () throws(IdentityError) in try IdentityConfiguration(issuer: "idp.example.com", audiences: ["t"]) } == .configuration)
        #expect(reason { () throws(IdentityError) in try IdentityConfiguration(issuer: "ftp://idp.example.com", audiences: ["t"]) } == .configuration)
        #expect(reason { () throws(IdentityError) in try IdentityConfiguration(issuer: "https://idp.example.com?x=1", audiences: ["t"]) } == .configuration)
        #expect(reason { () throws(IdentityError) in try IdentityConfiguration(issuer: "https://idp.example.com", audiences: ["t"], groupsClaim: "") } == .configuration)
        #expect(reason { () throws(IdentityError) in try IdentityConfiguration(issuer: "https://idp.example.com", audiences: ["t"], clockSkew: .seconds(-1)) } == .configuration)
        #expect(reason { () throws(IdentityError) in try IdentityConfiguration(issuer: "https://idp.example.com", audiences: ["t"], jwksCacheTTL: .zero) } == .configuration)
        // Air-gapped: the issuer is only compared, never contacted, so it need not be a URL.
        #expect(reason { () throws(IdentityError) in try IdentityConfiguration(issuer: "corp-idp", audiences: ["t"], staticJWKSPath: "/etc/tollgate/jwks.json") } == nil)
    }

    @Test func plainHTTPIsForLoopbackOnlyByDefault() {
        func accepted(_ issuer: String, _ policy: IdentityConfiguration.PlainHTTPPolicy = .loopbackOnly) -> Bool {
            refusal { () throws(IdentityError) in try IdentityConfiguration(issuer: issuer, audiences: ["t"], plainHTTP: policy) } == nil
        }
        #expect(accepted("https://idp.example.com"))
        #expect(accepted("http://127.0.0.1:9400"))
        #expect(accepted("http://127.8.9.10"))
        #expect(accepted("http://localhost:9400"))
        #expect(accepted("http://[::1]:9400"))
        #expect(!accepted("http://idp.example.com"))
        #expect(!accepted("http://10.0.0.1"))
        #expect(!accepted("http://127.0.0.1.nip.io"))
        #expect(!accepted("http://localhost.example.com"))
        #expect(!accepted("http://127.0.0.1", .never))
        #expect(accepted("http://idp.lab", .always))
    }

    @Test func errorsDescribeThemselvesWithoutOperatorDetail() {
        let error = IdentityError(.jwksUnavailable, "the identity provider's signing keys are unavailable",
                                  operatorDetail: "GET https://idp.internal/jwks answered HTTP 500")
        #expect(error.description == "jwksUnavailable: the identity provider's signing keys are unavailable")
        #expect(!"\(error)".contains("idp.internal"))
        #expect(error.isProviderFailure)
        #expect(!IdentityError(.expired, "token expired").isProviderFailure)
    }
}
