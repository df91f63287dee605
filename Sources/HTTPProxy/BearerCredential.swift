/// The client's `Authorization: Bearer <token>` (RFC 6750 §2.1), and the 401 challenge the gate
/// answers when it is missing or not accepted (§3).
public enum BearerCredential {
    public enum Problem: Sendable, Equatable, Error {
        /// No Authorization field: the challenge carries no error (§3.1).
        case missing
        /// An Authorization that is not one Bearer token, or a token the verifier refused.
        case invalid(String)
    }

    public static func token(in head: RequestHead) -> Result<String, Problem> {
        let values = head.fields.values("authorization")
        guard !values.isEmpty else { return .failure(.missing) }
        guard values.count == 1 else { return .failure(.invalid("more than one Authorization field")) }
        let parts = values[0].split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            return .failure(.invalid("the Authorization scheme is not Bearer"))
        }
        let token = parts[1].trimmingOWS()
        // b64token (RFC 6750 §2.1): no spaces, no quotes; a JWT fits.
        guard !token.isEmpty, token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: ",") }) else {
            return .failure(.invalid("the bearer token is malformed"))
        }
        return .success(token)
    }

    /// The WWW-Authenticate value for a 401; the description is quoted with `"` and `\` removed,
    /// since RFC 6750 allows neither in error_description.
    public static func challenge(realm: String, _ problem: Problem) -> String {
        switch problem {
        case .missing:
            return "Bearer realm=\"\(clean(realm))\""
        case .invalid(let why):
            return "Bearer realm=\"\(clean(realm))\", error=\"invalid_token\", error_description=\"\(clean(why))\""
        }
    }

    static func clean(_ s: String) -> String {
        String(s.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" }.map(Character.init))
    }
}
