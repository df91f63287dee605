/// The JWS algorithms the verifier can accept: asymmetric only.
///
/// HS256/384/512 are not representable on purpose: a verifier that accepts HMAC can be fooled into
/// using a public key as the HMAC secret (key confusion), and an OIDC gate never shares a secret
/// with the provider. `none` is not representable either.
public enum SigningAlgorithm: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
    case ps256 = "PS256", ps384 = "PS384", ps512 = "PS512"
    case es256 = "ES256", es384 = "ES384", es512 = "ES512"
    case edDSA = "EdDSA"

    /// The default set: what mainstream providers sign with.
    public static let defaultAllowed: Set<SigningAlgorithm> = [.rs256, .es256, .edDSA]

    public var description: String { rawValue }

    /// Names that are refused even when configured, whatever their spelling in the configuration.
    static func isForbiddenName(_ name: String) -> Bool {
        let upper = name.uppercased()
        return upper == "NONE" || upper.hasPrefix("HS") || upper.isEmpty
    }

    /// Well-known JOSE algorithm names: the only `alg` values an error message may repeat back
    /// (anything else the client sent is attacker-chosen text and is not echoed).
    static let knownJOSENames: Set<String> = [
        "none", "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512", "ES256K", "EdDSA", "Ed25519", "Ed448",
    ]

    enum KeyKind: Equatable { case rsa, ec(curve: String), okp(curve: String) }

    /// The JWK key type (and curve) this algorithm needs.
    var keyKind: KeyKind {
        switch self {
        case .rs256, .rs384, .rs512, .ps256, .ps384, .ps512: .rsa
        case .es256: .ec(curve: "P-256")
        case .es384: .ec(curve: "P-384")
        case .es512: .ec(curve: "P-521")
        case .edDSA: .okp(curve: "Ed25519")
        }
    }
}
