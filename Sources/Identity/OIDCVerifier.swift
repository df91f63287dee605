import Foundation
import JWTKit

/// Verifies OIDC tokens (ID tokens, or JWT access tokens) for one issuer.
///
/// One verifier per configured issuer, shared by every session: it holds the key-set cache, and
/// sharing it is what keeps concurrent verifications from each fetching the JWKS.
public actor OIDCVerifier {
    /// Counters for the admin API and for tests.
    public struct Statistics: Sendable, Equatable {
        /// Key sets loaded successfully (first load, TTL refreshes, refetches).
        public var keySetLoads = 0
        public var keySetLoadFailures = 0
        /// Loads started because a token named a key the cached set did not have.
        public var unknownKeyRefetches = 0
        /// Unknown keys that did not cause a load because one happened less than the minimum
        /// refetch interval ago.
        public var suppressedRefetches = 0
        /// Verifications that used an expired key set because refreshing it failed.
        public var staleKeySetUses = 0
        public var verified = 0
        public var refused = 0
    }

    public nonisolated let configuration: IdentityConfiguration
    private let loader: KeySetLoader
    private let now: @Sendable () -> Date

    private var keySet: KeySet?
    /// Incremented at every successful load, so a caller can tell that the set changed while it waited.
    private var generation = 0
    private var loadedAt: Date?
    private var lastAttemptAt: Date?
    private var lastFailure: IdentityError?
    /// The load in progress: every caller that needs keys meanwhile awaits this one (no stampede).
    private var inflight: Task<Result<KeySet, IdentityError>, Never>?
    private var stats = Statistics()

    /// - Parameter clock: the current time; injectable so tests can cross TTLs and refetch intervals
    ///   without sleeping.
    public init(configuration: IdentityConfiguration, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.configuration = configuration
        self.loader = KeySetLoader(configuration: configuration)
        self.now = clock
    }

    deinit { loader.invalidate() }

    public var statistics: Statistics { stats }

    /// The `kid`s of the cached key set (for the admin API; no key material).
    public var knownKeyIDs: [String] { keySet?.keyIDs.sorted() ?? [] }

    /// Loads the key set now (discovery and JWKS, or the static file). Call it at startup to fail
    /// fast on a misconfigured issuer; verification loads lazily otherwise.
    public func refresh() async throws(IdentityError) {
        if case .failure(let error) = await load() { throw error }
    }

    /// Verifies a compact JWS and returns the identity it proves.
    ///
    /// Order matters: the header is parsed without trusting it, the algorithm is refused before any
    /// key lookup, the key is chosen by this verifier (never by jwt-kit's default-key fallback),
    /// jwt-kit checks the signature, and only then are the claims read.
    public func verify(token: String) async throws(IdentityError) -> VerifiedIdentity {
        do {
            let identity = try await verifyUncounted(token)
            stats.verified += 1
            return identity
        } catch {
            stats.refused += 1
            throw error
        }
    }

    private func verifyUncounted(_ token: String) async throws(IdentityError) -> VerifiedIdentity {
        let parsed = try CompactToken(token, maximumSize: configuration.maximumTokenSize)
        let algorithm = try parsed.algorithm(allowed: configuration.allowedAlgorithms)
        let collection = try await key(for: parsed.keyID, algorithm: algorithm)

        let payload: RawClaims
        do {
            payload = try await collection.verify(token, as: RawClaims.self)
        } catch let error as JWTError where error.errorType == .malformedToken {
            throw IdentityError(.malformedToken, "token payload is not a JSON object")
        } catch {
            throw IdentityError(.invalidSignature, "token signature is not valid")
        }
        return try ClaimsValidator.identity(from: payload.claims, configuration: configuration, now: now(),
                                            algorithm: algorithm, keyID: parsed.keyID)
    }

    /// The key for this token; an unknown key causes at most one shared, rate-limited refetch.
    private func key(for keyID: String?, algorithm: SigningAlgorithm) async throws(IdentityError) -> JWTKeyCollection {
        let (current, seenGeneration) = try await currentKeySet()
        switch current.select(keyID: keyID, algorithm: algorithm) {
        case .key(let collection): return collection
        case .ambiguous(let why): throw IdentityError(.unknownKey, why)
        case .unknown: break
        }
        let newer = await refetchForUnknownKey(seenGeneration: seenGeneration)
        if let newer {
            switch newer.select(keyID: keyID, algorithm: algorithm) {
            case .key(let collection): return collection
            case .ambiguous(let why): throw IdentityError(.unknownKey, why)
            case .unknown: break
            }
        }
        throw IdentityError(.unknownKey, keyID == nil
                            ? "the identity provider has no \(algorithm) key for this token"
                            : "token was signed with a key the identity provider does not publish")
    }

    /// The cached key set if fresh; otherwise a refresh, falling back to the stale set for at most
    /// `jwksMaxStaleness` while the provider is unreachable.
    private func currentKeySet() async throws(IdentityError) -> (KeySet, Int) {
        let time = now()
        if let keySet, let loadedAt, time.timeIntervalSince(loadedAt) < configuration.jwksCacheTTL.timeInterval {
            return (keySet, generation)
        }
        // A load failed moments ago: answer from that failure instead of asking the provider again.
        if inflight == nil, let lastFailure, let lastAttemptAt,
           time.timeIntervalSince(lastAttemptAt) < configuration.minimumRefetchInterval.timeInterval {
            return try staleOrThrow(lastFailure, at: time)
        }
        switch await load() {
        case .success(let fresh): return (fresh, generation)
        case .failure(let error): return try staleOrThrow(error, at: time)
        }
    }

    private func staleOrThrow(_ error: IdentityError, at time: Date) throws(IdentityError) -> (KeySet, Int) {
        let limit = (configuration.jwksCacheTTL + configuration.jwksMaxStaleness).timeInterval
        if let keySet, let loadedAt, time.timeIntervalSince(loadedAt) < limit {
            stats.staleKeySetUses += 1
            return (keySet, generation)
        }
        throw error
    }

    /// A fresher key set after an unknown key, or nil when none may be fetched (rate limit) or the
    /// fetch failed. Concurrent callers share one load.
    private func refetchForUnknownKey(seenGeneration: Int) async -> KeySet? {
        if let inflight {
            if case .success(let set) = await inflight.value { return set }
            return nil
        }
        // Someone else's load completed while this caller was choosing its key: use that one.
        if generation != seenGeneration, let keySet { return keySet }
        if let lastAttemptAt, now().timeIntervalSince(lastAttemptAt) < configuration.minimumRefetchInterval.timeInterval {
            stats.suppressedRefetches += 1
            return nil
        }
        stats.unknownKeyRefetches += 1
        if case .success(let set) = await load() { return set }
        return nil
    }

    /// Starts a load, or joins the one in progress. Only the caller that started it records its outcome.
    private func load() async -> Result<KeySet, IdentityError> {
        if let inflight { return await inflight.value }
        lastAttemptAt = now()
        let loader = self.loader
        let task = Task { await loader.load() }
        inflight = task
        let result = await task.value
        inflight = nil
        switch result {
        case .success(let set):
            keySet = set
            generation += 1
            loadedAt = now()
            lastFailure = nil
            stats.keySetLoads += 1
        case .failure(let error):
            lastFailure = error
            stats.keySetLoadFailures += 1
        }
        return result
    }
}

/// The payload as jwt-kit hands it back after checking the signature. Its `verify` does nothing:
/// the claims are checked by `ClaimsValidator`, with this verifier's clock and skew.
struct RawClaims: JWTPayload {
    let claims: [String: JSONValue]

    init(from decoder: any Decoder) throws {
        claims = try decoder.singleValueContainer().decode([String: JSONValue].self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(claims)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
