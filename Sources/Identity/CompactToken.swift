import Foundation

/// The parts of a compact JWS read before any key is chosen: the header, decoded but not trusted.
///
/// Only `alg`, `kid` and `crit` are looked at. `jku`, `x5u`, `jwk` and `x5c` are ignored on purpose:
/// keys come from the configured issuer only, never from the token that wants to be verified.
struct CompactToken: Sendable {
    let algorithmName: String
    let keyID: String?

    init(_ token: String, maximumSize: Int) throws(IdentityError) {
        guard token.utf8.count <= maximumSize else {
            throw IdentityError(.malformedToken, "token is larger than \(maximumSize) bytes")
        }
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3 else {
            // Five segments would be a JWE (encrypted token): not something a gate can verify.
            throw IdentityError(.malformedToken, "token is not a signed JWT (expected three dot-separated parts)")
        }
        guard !segments[0].isEmpty, !segments[1].isEmpty else {
            throw IdentityError(.malformedToken, "token header or payload is empty")
        }
        guard let headerBytes = Base64URL.decode(segments[0]), let header = JSONValue.object(from: headerBytes) else {
            throw IdentityError(.malformedToken, "token header is not base64url-encoded JSON")
        }
        guard Base64URL.decode(segments[1]) != nil, segments[2].isEmpty || Base64URL.decode(segments[2]) != nil else {
            throw IdentityError(.malformedToken, "token payload or signature is not base64url-encoded")
        }
        guard case .string(let alg)? = header["alg"] else {
            throw IdentityError(.malformedToken, "token header has no algorithm")
        }
        // RFC 7515 §4.1.11: extensions listed in `crit` must be understood; we understand none.
        if header["crit"] != nil {
            throw IdentityError(.malformedToken, "token header lists critical extensions, which are not supported")
        }
        switch header["kid"] {
        case nil, .null?: keyID = nil
        case .string(let kid)?: keyID = kid
        default: throw IdentityError(.malformedToken, "token key id is not a string")
        }
        algorithmName = alg
    }

    /// The accepted algorithm, or the refusal. Runs before any key lookup, so `none`, HMAC and
    /// anything else not allowed never reach the key set (and cannot trigger a refetch).
    func algorithm(allowed: Set<SigningAlgorithm>) throws(IdentityError) -> SigningAlgorithm {
        let shown = SigningAlgorithm.knownJOSENames.contains(algorithmName) ? algorithmName : "in the token header"
        if SigningAlgorithm.isForbiddenName(algorithmName) {
            throw IdentityError(.unsupportedAlgorithm,
                                "algorithm \(shown) is never accepted: tokens must be signed with an asymmetric key")
        }
        guard let algorithm = SigningAlgorithm(rawValue: algorithmName), allowed.contains(algorithm) else {
            throw IdentityError(.unsupportedAlgorithm, "algorithm \(shown) is not accepted; accepted: "
                                + allowed.map(\.rawValue).sorted().joined(separator: ", "))
        }
        return algorithm
    }
}
