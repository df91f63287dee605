/// Why a token or the identity provider was refused, with a message that is safe to show the client.
///
/// The message never contains the token, its signature or claim values the client did not need to be
/// told (an expiry time is fine; the issuer or audience the token carried is not echoed, so that an
/// error page cannot be used as a reflection oracle). Operator-only detail (URLs, HTTP statuses,
/// underlying errors) lives in `operatorDetail`, which must go to logs, not to the client.
public struct IdentityError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable, Equatable, CaseIterable {
        case malformedToken
        case unsupportedAlgorithm
        case unknownKey
        case invalidSignature
        case expired
        case notYetValid
        case wrongIssuer
        case wrongAudience
        case missingSubject
        case discoveryFailed
        case jwksUnavailable
        case configuration
    }

    public let reason: Reason
    /// Safe to send to the client.
    public let message: String
    /// For the operator's log only. Never contains token material either.
    public let operatorDetail: String?

    public init(_ reason: Reason, _ message: String, operatorDetail: String? = nil) {
        self.reason = reason
        self.message = message
        self.operatorDetail = operatorDetail
    }

    /// `reason: message`; deliberately without `operatorDetail`, so that interpolating an error into a
    /// client-facing string cannot leak provider URLs or network errors.
    public var description: String { "\(reason.rawValue): \(message)" }

    /// True when the failure is the provider's or the gate's, not the client's: the proxy should
    /// answer "try again later" (e.g. HTTP 503) rather than "your token is bad" (HTTP 401).
    public var isProviderFailure: Bool {
        switch reason {
        case .discoveryFailed, .jwksUnavailable, .configuration: true
        default: false
        }
    }
}
