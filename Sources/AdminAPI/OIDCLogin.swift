import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Identity
import ProxyCore

/// The approvals page's side of the OIDC authorization-code flow with PKCE: the provider's
/// endpoints from its discovery document, the authorization URL, and the code exchanged for an ID
/// token, which the gate's own verifier then checks (with the nonce checked here).
struct OIDCLogin: Sendable {
    let settings: AdminLoginSettings
    let verifier: OIDCVerifier
    let session: URLSession

    struct LoginError: Error, CustomStringConvertible {
        var description: String
    }

    init(settings: AdminLoginSettings, verifier: OIDCVerifier) {
        self.settings = settings
        self.verifier = verifier
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        configuration.timeoutIntervalForResource = 10
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        configuration.urlCache = nil
        session = URLSession(configuration: configuration)
    }

    struct Endpoints { var authorization: URL; var token: URL }

    /// Read on every login rather than cached: one small GET, and it follows a provider that moves.
    func endpoints() async throws -> Endpoints {
        guard let discovery = verifier.configuration.discoveryURL else { throw LoginError(description: "the issuer is not a URL") }
        let (data, response) = try await session.data(from: discovery)
        guard (response as? HTTPURLResponse)?.statusCode == 200,
              let document = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let authorization = (document["authorization_endpoint"] as? String).flatMap(URL.init(string:)),
              let token = (document["token_endpoint"] as? String).flatMap(URL.init(string:)) else {
            throw LoginError(description: "the identity provider's discovery document has no authorization or token endpoint")
        }
        return Endpoints(authorization: authorization, token: token)
    }

    func authorizationURL(_ endpoints: Endpoints, state: String, login: PageSessions.PendingLogin) -> URL? {
        guard var components = URLComponents(url: endpoints.authorization, resolvingAgainstBaseURL: false) else { return nil }
        let existing = components.queryItems ?? []
        components.queryItems = existing + [
            URLQueryItem(name: "response_type", value: "code"),
            URLQueryItem(name: "client_id", value: settings.clientID),
            URLQueryItem(name: "redirect_uri", value: settings.redirectURL.absoluteString),
            URLQueryItem(name: "scope", value: "openid email profile"),
            URLQueryItem(name: "state", value: state),
            URLQueryItem(name: "nonce", value: login.nonce),
            URLQueryItem(name: "code_challenge", value: PageSessions.challenge(for: login.verifier)),
            URLQueryItem(name: "code_challenge_method", value: "S256"),
        ]
        return components.url
    }

    /// The code for an ID token at the token endpoint; the token verified (issuer, audience,
    /// signature, expiry) and its nonce compared with the login's.
    func identity(code: String, login: PageSessions.PendingLogin) async throws -> VerifiedIdentity {
        let endpoints = try await endpoints()
        var request = URLRequest(url: endpoints.token)
        request.httpMethod = "POST"
        request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        var form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", settings.redirectURL.absoluteString),
                    ("client_id", settings.clientID), ("code_verifier", login.verifier)]
        if let secret = settings.clientSecret { form.append(("client_secret", secret)) }
        request.httpBody = Data(form.map { "\(Self.formEncode($0.0))=\(Self.formEncode($0.1))" }.joined(separator: "&").utf8)
        let (data, response) = try await session.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 200, let body = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let idToken = body["id_token"] as? String else {
            // The provider's error code only (never the body: it could echo the code).
            let error = ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["error"] as? String
            throw LoginError(description: "the identity provider refused the code (HTTP \(status)\(error.map { ", \($0)" } ?? ""))")
        }
        let identity: VerifiedIdentity
        do {
            identity = try await verifier.verify(token: idToken)
        } catch {
            throw LoginError(description: "the ID token was refused: \(error)")
        }
        // The signature is verified: reading the payload's nonce is reading what the issuer signed.
        guard Self.nonce(of: idToken) == login.nonce else {
            throw LoginError(description: "the ID token's nonce does not match this login")
        }
        return identity
    }

    static func nonce(of token: String) -> String? {
        let parts = token.split(separator: ".")
        guard parts.count == 3 else { return nil }
        var base64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64),
              let claims = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return claims["nonce"] as? String
    }

    static func formEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}
