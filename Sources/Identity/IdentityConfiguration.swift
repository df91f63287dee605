import Foundation

/// How the gate verifies OIDC tokens: which issuer, for which audiences, with which keys.
///
/// Every property is immutable and checked by the initializer, so a value that exists is a valid
/// configuration: nothing can later switch on HMAC or `none`.
public struct IdentityConfiguration: Sendable, Equatable {
    /// Whether the issuer (and the `jwks_uri` it advertises) may be plain `http://`.
    public enum PlainHTTPPolicy: String, Sendable, Equatable {
        /// Only `https://`.
        case never
        /// `http://` only for loopback hosts (a provider on the same machine, tests); the default.
        case loopbackOnly
        /// Any `http://` URL. Tokens are bearer secrets and keys fetched over plain HTTP can be
        /// replaced in transit, so this exists only for closed lab networks.
        case always
    }

    /// Compared byte for byte with the token's `iss` and with the discovery document's `issuer`.
    public let issuer: String
    /// The token's `aud` (a string or an array) must contain at least one of these.
    public let audiences: [String]
    /// Claim holding the user's groups: an array of strings or a single string.
    public let groupsClaim: String
    /// Claim naming the user (`sub` by default; `email` or `preferred_username` are common).
    public let subjectClaim: String
    /// Tolerance applied to `exp`, `nbf` and `iat` for clock drift between provider and gate.
    public let clockSkew: Duration
    public let allowedAlgorithms: Set<SigningAlgorithm>
    /// Air-gapped mode: the key set is read from this file; there is no discovery and no network.
    /// The file is re-read on the same schedule a fetched key set would be refetched, so keys
    /// can be rotated by replacing the file.
    public let staticJWKSPath: String?
    /// How long a fetched key set is used before it is refreshed (removed keys stop working then).
    public let jwksCacheTTL: Duration
    /// The least time between two key-set loads caused by an unknown `kid` or by a failed load.
    /// Bounds what a client spraying random `kid`s can make the gate send to the provider.
    public let minimumRefetchInterval: Duration
    /// How long an expired key set may still be used while refreshes fail (provider outage):
    /// availability for a bounded time, then verification fails closed.
    public let jwksMaxStaleness: Duration
    /// Timeout of each HTTP request to the provider.
    public let httpTimeout: Duration
    public let plainHTTP: PlainHTTPPolicy
    /// Largest accepted token, in bytes (bounds parsing work per request).
    public let maximumTokenSize: Int

    /// - Parameter allowedAlgorithms: JOSE names, as written in a configuration file. `none` and
    ///   `HS256/384/512` are refused with a `.configuration` error even if listed.
    public init(
        issuer: String,
        audiences: [String],
        groupsClaim: String = "groups",
        subjectClaim: String = "sub",
        clockSkew: Duration = .seconds(60),
        allowedAlgorithms: [String] = ["RS256", "ES256", "EdDSA"],
        staticJWKSPath: String? = nil,
        jwksCacheTTL: Duration = .seconds(3600),
        minimumRefetchInterval: Duration = .seconds(30),
        jwksMaxStaleness: Duration = .seconds(600),
        httpTimeout: Duration = .seconds(10),
        plainHTTP: PlainHTTPPolicy = .loopbackOnly,
        maximumTokenSize: Int = 64 * 1024
    ) throws(IdentityError) {
        func refuse(_ message: String) -> IdentityError { IdentityError(.configuration, message) }

        guard !issuer.isEmpty else { throw refuse("issuer is empty") }
        if staticJWKSPath == nil {
            // The issuer is contacted, so it must be a URL we are willing to fetch from.
            guard let url = URL(string: issuer), let scheme = url.scheme?.lowercased(),
                  let host = url.host, !host.isEmpty else {
                throw refuse("issuer \(issuer) is not an absolute URL")
            }
            guard url.query == nil, url.fragment == nil else {
                throw refuse("issuer \(issuer) must not have a query or fragment")
            }
            try Self.checkScheme(scheme: scheme, host: host, policy: plainHTTP, what: "issuer \(issuer)")
        } else if staticJWKSPath!.isEmpty {
            throw refuse("static JWKS path is empty")
        }

        let audiences = audiences.filter { !$0.isEmpty }
        guard !audiences.isEmpty else { throw refuse("at least one non-empty audience is required") }
        guard !groupsClaim.isEmpty else { throw refuse("groups claim name is empty") }
        guard !subjectClaim.isEmpty else { throw refuse("subject claim name is empty") }

        var algorithms: Set<SigningAlgorithm> = []
        for name in allowedAlgorithms {
            if SigningAlgorithm.isForbiddenName(name) {
                throw refuse("algorithm \(name) is never accepted: only asymmetric signatures (RS, PS, ES, EdDSA) are")
            }
            guard let algorithm = SigningAlgorithm(rawValue: name) else {
                throw refuse("unknown signing algorithm \(name); supported: "
                             + SigningAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))
            }
            algorithms.insert(algorithm)
        }
        guard !algorithms.isEmpty else { throw refuse("no signing algorithm allowed") }

        guard clockSkew >= .zero, clockSkew <= .seconds(600) else { throw refuse("clock skew must be between 0 and 600 s") }
        guard jwksCacheTTL > .zero else { throw refuse("JWKS cache TTL must be positive") }
        guard minimumRefetchInterval >= .zero else { throw refuse("minimum refetch interval must not be negative") }
        guard jwksMaxStaleness >= .zero else { throw refuse("JWKS maximum staleness must not be negative") }
        guard httpTimeout > .zero else { throw refuse("HTTP timeout must be positive") }
        guard maximumTokenSize >= 512 else { throw refuse("maximum token size must be at least 512 bytes") }

        self.issuer = issuer
        self.audiences = audiences
        self.groupsClaim = groupsClaim
        self.subjectClaim = subjectClaim
        self.clockSkew = clockSkew
        self.allowedAlgorithms = algorithms
        self.staticJWKSPath = staticJWKSPath
        self.jwksCacheTTL = jwksCacheTTL
        self.minimumRefetchInterval = minimumRefetchInterval
        self.jwksMaxStaleness = jwksMaxStaleness
        self.httpTimeout = httpTimeout
        self.plainHTTP = plainHTTP
        self.maximumTokenSize = maximumTokenSize
    }

    /// The discovery document's URL: `{issuer}/.well-known/openid-configuration` (OIDC Discovery §4,
    /// which says to remove a trailing slash from the issuer before appending).
    public var discoveryURL: URL? {
        guard staticJWKSPath == nil else { return nil }
        var base = issuer
        if base.hasSuffix("/") { base.removeLast() }
        return URL(string: base + "/.well-known/openid-configuration")
    }

    static func checkScheme(scheme: String, host: String, policy: PlainHTTPPolicy, what: String) throws(IdentityError) {
        switch scheme {
        case "https": return
        case "http":
            switch policy {
            case .always: return
            case .loopbackOnly where isLoopback(host): return
            default:
                throw IdentityError(.configuration, "\(what) uses plain http; only https is allowed"
                                    + (policy == .loopbackOnly ? " (plain http is allowed for loopback hosts only)" : ""))
            }
        default:
            throw IdentityError(.configuration, "\(what) must be an http(s) URL")
        }
    }

    /// Loopback by name or address: `localhost`, 127.0.0.0/8, ::1.
    static func isLoopback(_ host: String) -> Bool {
        var h = host.lowercased()
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) else { return false }
        return parts[0] == "127"
    }
}

extension Duration {
    /// Seconds as a `TimeInterval`, for arithmetic with `Date`.
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
