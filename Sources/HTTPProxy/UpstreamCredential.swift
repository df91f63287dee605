import Foundation

/// What the gate presents upstream in place of the client's token (the target's `credentials:`).
public enum UpstreamCredential: Sendable, Equatable {
    case none
    case bearer(String)
    case basic(user: String, password: String)
    /// Presented in the TLS handshake (the upstream TLS context carries it): no Authorization.
    case clientCertificate

    /// The Authorization value, or nil for none.
    var authorization: String? {
        switch self {
        case .none, .clientCertificate: nil
        case .bearer(let token): "Bearer \(token)"
        case .basic(let user, let password): "Basic \(Data("\(user):\(password)".utf8).base64EncodedString())"
        }
    }
}
