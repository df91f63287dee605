import Foundation
import JWTKit

/// One verification key from a JWKS, ready for the algorithms it may be used with.
struct VerificationKey: Sendable {
    let keyID: String?
    /// One `JWTKeyCollection` per usable algorithm, each holding this key alone. jwt-kit picks the
    /// collection's default key when a token's `kid` is unknown to it; with a single key per
    /// collection that default is the key this verifier chose, so the fallback cannot pick another.
    let verifiers: [SigningAlgorithm: JWTKeyCollection]
}

/// An immutable snapshot of the issuer's keys, indexed by `kid`.
struct KeySet: Sendable {
    let keys: [VerificationKey]
    /// Entries the JWKS had that cannot be used (unsupported type or curve, encryption keys,
    /// RSA shorter than 2048 bits, bad encoding). Reported to the operator, never fatal: providers
    /// publish such keys alongside the signing keys.
    let skipped: [String]

    static let maximumDocumentSize = 1 << 20

    /// Parses a JWKS leniently per key (one odd key must not hide the others) but strictly per
    /// document (it must be a JSON object with a `keys` array).
    static func parse(_ data: Data, allowed: Set<SigningAlgorithm>) async throws(IdentityError) -> KeySet {
        guard data.count <= maximumDocumentSize else {
            throw IdentityError(.jwksUnavailable, "the identity provider's signing keys are unavailable",
                                operatorDetail: "JWKS is larger than \(maximumDocumentSize) bytes")
        }
        guard let document = JSONValue.object(from: data), case .array(let entries)? = document["keys"] else {
            throw IdentityError(.jwksUnavailable, "the identity provider's signing keys are unavailable",
                                operatorDetail: "JWKS is not a JSON object with a \"keys\" array")
        }
        var keys: [VerificationKey] = []
        var skipped: [String] = []
        for (index, entry) in entries.enumerated() {
            guard case .object(let jwk) = entry else { skipped.append("key \(index): not an object"); continue }
            let label = "key \(index)" + (jwk["kid"]?.stringValue.map { " (kid \($0))" } ?? "")
            switch await makeKey(jwk, allowed: allowed) {
            case .success(let key): keys.append(key)
            case .failure(let why): skipped.append("\(label): \(why.text)")
            }
        }
        return KeySet(keys: keys, skipped: skipped)
    }

    struct Skip: Error { let text: String }

    private static func makeKey(_ jwk: [String: JSONValue], allowed: Set<SigningAlgorithm>) async -> Result<VerificationKey, Skip> {
        guard let kty = jwk["kty"]?.stringValue else { return .failure(Skip(text: "no kty")) }
        let kid: String?
        switch jwk["kid"] {
        case nil, .null?: kid = nil
        case .string(let value)?: kid = value
        default: return .failure(Skip(text: "kid is not a string"))
        }
        // A key published for encryption must not verify signatures (RFC 7517 §4.2, §4.3).
        if let use = jwk["use"]?.stringValue, use != "sig" { return .failure(Skip(text: "use is \(use), not sig")) }
        if case .array(let ops)? = jwk["key_ops"], !ops.contains(.string("verify")) {
            return .failure(Skip(text: "key_ops does not include verify"))
        }
        // A key pinned to one algorithm by its `alg` is used for that algorithm only.
        let pinned: SigningAlgorithm?
        if let name = jwk["alg"]?.stringValue {
            guard let algorithm = SigningAlgorithm(rawValue: name) else {
                return .failure(Skip(text: "alg \(name) is not a supported signature algorithm"))
            }
            pinned = algorithm
        } else {
            pinned = nil
        }
        let crv = jwk["crv"]?.stringValue
        let kind: SigningAlgorithm.KeyKind
        switch kty {
        case "RSA": kind = .rsa
        case "EC": kind = .ec(curve: crv ?? "")
        case "OKP": kind = .okp(curve: crv ?? "")
        default: return .failure(Skip(text: "kty \(kty) is not supported"))
        }
        let candidates = allowed.filter { $0.keyKind == kind && (pinned == nil || pinned == $0) }
        guard !candidates.isEmpty else {
            return .failure(Skip(text: "no allowed algorithm uses a \(kty)\(crv.map { " " + $0 } ?? "") key"
                                 + (pinned.map { " pinned to \($0)" } ?? "")))
        }

        var verifiers: [SigningAlgorithm: JWTKeyCollection] = [:]
        for algorithm in candidates {
            // Only public members are copied into jwt-kit's JWK: private material (`d`, primes) that a
            // careless JWKS might contain is never loaded.
            guard let publicJWK = publicJWK(jwk, algorithm: algorithm) else {
                return .failure(Skip(text: "missing key parameters"))
            }
            do {
                let collection = JWTKeyCollection()
                try await collection.add(jwk: publicJWK, isDefault: true)
                verifiers[algorithm] = collection
            } catch {
                return .failure(Skip(text: "unusable key (\(String(describing: error).prefix(160)))"))
            }
        }
        return .success(VerificationKey(keyID: kid, verifiers: verifiers))
    }

    /// The label jwt-kit stores our single key under; never compared with a token's `kid`.
    private static let collectionKeyID = JWKIdentifier(string: "tollgate-selected-key")

    private static func publicJWK(_ jwk: [String: JSONValue], algorithm: SigningAlgorithm) -> JWK? {
        switch algorithm.keyKind {
        case .rsa:
            guard let n = jwk["n"]?.stringValue, let e = jwk["e"]?.stringValue else { return nil }
            let alg: JWK.Algorithm = switch algorithm {
            case .rs384: .rs384
            case .rs512: .rs512
            case .ps256: .ps256
            case .ps384: .ps384
            case .ps512: .ps512
            default: .rs256
            }
            return .rsa(alg, identifier: collectionKeyID, modulus: n, exponent: e)
        case .ec(let curve):
            guard let x = jwk["x"]?.stringValue, let y = jwk["y"]?.stringValue,
                  let ecCurve = ECDSACurve(rawValue: curve) else { return nil }
            let alg: JWK.Algorithm = switch algorithm {
            case .es384: .es384
            case .es512: .es512
            default: .es256
            }
            return .ecdsa(alg, identifier: collectionKeyID, x: x, y: y, curve: ecCurve)
        case .okp:
            guard let x = jwk["x"]?.stringValue else { return nil }
            return .octetKeyPair(.eddsa, identifier: collectionKeyID, x: x, y: nil, curve: .ed25519)
        }
    }

    enum Selection {
        case key(JWTKeyCollection)
        /// No key for this `kid` (or, without `kid`, none for the algorithm): a refetch may help.
        case unknown
        /// Several candidates and nothing to choose between them: a refetch will not help.
        case ambiguous(String)
    }

    /// Chooses the key for a token, by `kid` when it has one. Without a `kid` the token is accepted
    /// only when exactly one key can verify its algorithm, so that no key is ever guessed.
    func select(keyID: String?, algorithm: SigningAlgorithm) -> Selection {
        let usable = keys.compactMap { key in key.verifiers[algorithm].map { (key.keyID, $0) } }
        if let keyID {
            let matches = usable.filter { $0.0 == keyID }
            switch matches.count {
            case 0: return .unknown
            case 1: return .key(matches[0].1)
            default: return .ambiguous("the identity provider publishes several keys with this key id")
            }
        }
        switch usable.count {
        case 0: return .unknown
        case 1: return .key(usable[0].1)
        default: return .ambiguous("token has no key id and the identity provider has several \(algorithm) keys")
        }
    }

    var keyIDs: [String] { keys.compactMap(\.keyID) }
}
