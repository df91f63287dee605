import Crypto
import Foundation
import Identity

/// The approvals page's server-side state: logins in flight (state → PKCE verifier, nonce, where
/// to go back) and logged-in sessions (a random id in an HttpOnly cookie → who, until when, and
/// the CSRF token of their forms). Nothing here is persisted: a restart logs everyone out.
actor PageSessions {
    struct PendingLogin {
        var verifier: String
        var nonce: String
        var returnTo: String
        var expires: Date
    }

    struct Session: Sendable {
        var identity: VerifiedIdentity
        var csrf: String
        var expires: Date
    }

    private var logins: [String: PendingLogin] = [:]
    private var sessions: [String: Session] = [:]
    /// Bounds, so that anonymous /login requests cannot grow the tables without end.
    static let maximumLogins = 1000
    static let maximumSessions = 10000
    static let loginLifetime: TimeInterval = 600

    /// A fresh login: its state (in the URL and a cookie), PKCE verifier and nonce.
    func beginLogin(returnTo: String, now: Date = Date()) -> (state: String, login: PendingLogin) {
        prune(now)
        if logins.count >= Self.maximumLogins, let oldest = logins.min(by: { $0.value.expires < $1.value.expires })?.key {
            logins[oldest] = nil
        }
        let state = Self.randomToken()
        let login = PendingLogin(verifier: Self.randomToken(), nonce: Self.randomToken(), returnTo: returnTo,
                                 expires: now.addingTimeInterval(Self.loginLifetime))
        logins[state] = login
        return (state, login)
    }

    /// The login `state` names, once: a state is never accepted twice.
    func finishLogin(state: String, now: Date = Date()) -> PendingLogin? {
        guard let login = logins.removeValue(forKey: state), login.expires > now else { return nil }
        return login
    }

    /// A new session for `identity`, until its token expires or `lifetime` ends, whichever is first.
    func open(_ identity: VerifiedIdentity, lifetime: TimeInterval, now: Date = Date()) -> (id: String, session: Session) {
        prune(now)
        if sessions.count >= Self.maximumSessions, let oldest = sessions.min(by: { $0.value.expires < $1.value.expires })?.key {
            sessions[oldest] = nil
        }
        let session = Session(identity: identity, csrf: Self.randomToken(), expires: min(identity.expiresAt, now.addingTimeInterval(lifetime)))
        let id = Self.randomToken()
        sessions[id] = session
        return (id, session)
    }

    func session(_ id: String, now: Date = Date()) -> Session? {
        guard let session = sessions[id] else { return nil }
        guard session.expires > now else {
            sessions[id] = nil
            return nil
        }
        return session
    }

    func close(_ id: String) { sessions[id] = nil }

    private func prune(_ now: Date) {
        logins = logins.filter { $0.value.expires > now }
        sessions = sessions.filter { $0.value.expires > now }
    }

    /// 32 random bytes from the system's CSPRNG, base64url without padding.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return base64URL(Data((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }))
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// RFC 7636 S256: base64url(SHA-256(verifier)).
    static func challenge(for verifier: String) -> String {
        base64URL(Data(SHA256.hash(data: Data(verifier.utf8))))
    }

    /// Equal strings, compared in time that does not depend on where they differ (CSRF tokens).
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in x.indices { difference |= x[i] ^ y[i] }
        return difference == 0
    }
}
