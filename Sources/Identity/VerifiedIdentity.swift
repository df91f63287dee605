import Foundation

/// Who the token says the caller is, after signature and claims were checked.
///
/// It carries no token material: it may be logged, recorded in a capture and shown to approvers.
public struct VerifiedIdentity: Sendable, Equatable, Hashable {
    /// The configured subject claim's value (`sub` unless configured otherwise).
    public let subject: String
    /// The groups claim: empty when the token has none.
    public let groups: [String]
    public let issuer: String
    /// The configured audience the token's `aud` matched.
    public let audience: String
    public let expiresAt: Date
    public let issuedAt: Date?
    public let notBefore: Date?
    public let email: String?
    public let name: String?
    /// `jti`, for correlating with the provider's logs (and replay detection, if the proxy wants it).
    public let tokenID: String?
    public let algorithm: SigningAlgorithm
    /// The `kid` of the key that verified the signature, if the token named one.
    public let keyID: String?

    public init(subject: String, groups: [String], issuer: String, audience: String, expiresAt: Date,
                issuedAt: Date? = nil, notBefore: Date? = nil, email: String? = nil, name: String? = nil,
                tokenID: String? = nil, algorithm: SigningAlgorithm, keyID: String? = nil) {
        self.subject = subject
        self.groups = groups
        self.issuer = issuer
        self.audience = audience
        self.expiresAt = expiresAt
        self.issuedAt = issuedAt
        self.notBefore = notBefore
        self.email = email
        self.name = name
        self.tokenID = tokenID
        self.algorithm = algorithm
        self.keyID = keyID
    }
}

/// The checks made on a payload whose signature has been verified. Pure (the time is passed in),
/// so every boundary is testable without a provider.
enum ClaimsValidator {
    static func identity(from claims: [String: JSONValue], configuration: IdentityConfiguration, now: Date,
                         algorithm: SigningAlgorithm, keyID: String?) throws(IdentityError) -> VerifiedIdentity {
        // The claim values the token carried are not repeated in these messages: only the fact.
        guard case .string(let issuer)? = claims["iss"] else {
            throw IdentityError(.wrongIssuer, "token has no issuer")
        }
        guard issuer == configuration.issuer else {
            throw IdentityError(.wrongIssuer, "token was not issued by the configured identity provider")
        }

        let tokenAudiences: [String]
        switch claims["aud"] {
        case .string(let one)?: tokenAudiences = [one]
        case .array(let many)?: tokenAudiences = many.compactMap(\.stringValue)
        default: throw IdentityError(.wrongAudience, "token has no audience")
        }
        guard let audience = configuration.audiences.first(where: tokenAudiences.contains) else {
            throw IdentityError(.wrongAudience, "token is not intended for this gate (audience mismatch)")
        }

        let skew = configuration.clockSkew.timeInterval
        guard let expiresAt = try date(claims, "exp") else {
            throw IdentityError(.malformedToken, "token has no expiry (exp)")
        }
        guard now.timeIntervalSince(expiresAt) <= skew else {
            throw IdentityError(.expired, "token expired at \(iso(expiresAt))")
        }
        let notBefore = try date(claims, "nbf")
        if let notBefore, notBefore.timeIntervalSince(now) > skew {
            throw IdentityError(.notYetValid, "token is not valid before \(iso(notBefore))")
        }
        let issuedAt = try date(claims, "iat")
        if let issuedAt, issuedAt.timeIntervalSince(now) > skew {
            throw IdentityError(.notYetValid, "token was issued in the future (\(iso(issuedAt)))")
        }

        guard case .string(let subject)? = claims[configuration.subjectClaim],
              !subject.allSatisfy(\.isWhitespace) else {
            throw IdentityError(.missingSubject, "token has no usable \(configuration.subjectClaim) claim")
        }
        // Identities end up in logs, capture files and approval pages: control characters would
        // let a token forge lines there.
        guard !hasControlCharacters(subject) else {
            throw IdentityError(.malformedToken, "token's \(configuration.subjectClaim) claim contains control characters")
        }

        let groups: [String]
        switch claims[configuration.groupsClaim] {
        case nil, .null?: groups = []
        case .string(let one)?: groups = [one]
        case .array(let many)?:
            let strings = many.compactMap(\.stringValue)
            guard strings.count == many.count else {
                throw IdentityError(.malformedToken, "token's \(configuration.groupsClaim) claim must hold strings only")
            }
            groups = strings
        default:
            throw IdentityError(.malformedToken, "token's \(configuration.groupsClaim) claim must be a string or an array of strings")
        }
        guard !groups.contains(where: hasControlCharacters) else {
            throw IdentityError(.malformedToken, "token's \(configuration.groupsClaim) claim contains control characters")
        }

        func optionalString(_ name: String) -> String? {
            guard let value = claims[name]?.stringValue, !hasControlCharacters(value) else { return nil }
            return value
        }
        return VerifiedIdentity(subject: subject, groups: groups, issuer: issuer, audience: audience,
                                expiresAt: expiresAt, issuedAt: issuedAt, notBefore: notBefore,
                                email: optionalString("email"), name: optionalString("name"),
                                tokenID: optionalString("jti"), algorithm: algorithm, keyID: keyID)
    }

    /// A NumericDate claim (RFC 7519 §2): seconds since the epoch, possibly fractional.
    private static func date(_ claims: [String: JSONValue], _ name: String) throws(IdentityError) -> Date? {
        switch claims[name] {
        case nil, .null?: return nil
        // Bounded so that absurd values cannot overflow date arithmetic or formatting.
        case .number(let seconds)? where seconds.isFinite && abs(seconds) < 1e11:
            return Date(timeIntervalSince1970: seconds)
        default:
            throw IdentityError(.malformedToken, "token's \(name) claim is not a valid time")
        }
    }

    static func iso(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle())
    }

    static func hasControlCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}
