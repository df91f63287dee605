import Foundation

/// How the approvals page logs people in (`admin.login`): the OIDC authorization-code flow with
/// PKCE against the gate's own issuer. The ID token it gets is verified by the gate's verifier, so
/// `client_id` must be one of `identity.audiences`.
public struct AdminLoginSettings: Sendable {
    public var clientID: String
    /// For a confidential client; sent to the token endpoint only. Never in a log or a page.
    public var clientSecret: String?
    /// Where the provider sends the browser back (`…/login/callback` on the admin listener).
    public var redirectURL: URL
    /// How long a page session may last at most (the ID token's expiry ends it sooner).
    public var sessionLifetime: Duration

    public init(clientID: String, clientSecret: String? = nil, redirectURL: URL, sessionLifetime: Duration = .seconds(8 * 3600)) {
        self.clientID = clientID; self.clientSecret = clientSecret; self.redirectURL = redirectURL; self.sessionLifetime = sessionLifetime
    }

    static func parse(_ node: ConfigNode, listen: HostPort, tls: Bool, resolve: (String) -> String,
                      environment: [String: String], requireSecrets: Bool, audiences: [String]) throws -> AdminLoginSettings {
        let f = try node.fields(["client_id", "client_secret", "client_secret_env", "client_secret_file", "redirect_url", "session_lifetime"])
        guard let clientID = try f["client_id"]?.string(), !clientID.isEmpty else {
            throw node.error("missing 'client_id' (the page's OIDC client; one of identity.audiences)")
        }
        // The ID token's audience is the client id, and the gate's verifier accepts only its audiences.
        if !audiences.isEmpty, !audiences.contains(clientID) {
            throw f["client_id"]!.error("client_id '\(clientID)' is not one of identity.audiences (\(audiences.joined(separator: ", "))): the page's ID tokens would be refused")
        }
        let secret = try ConfigSecret.read("client_secret", from: f, of: node, resolve: resolve, environment: environment,
                                           requireSecrets: requireSecrets, what: "client secret")
        let redirect: URL
        if let text = try f["redirect_url"]?.string() {
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host != nil, url.path.hasSuffix("/login/callback") else {
                throw f["redirect_url"]!.error("invalid 'redirect_url' (an http or https URL ending in /login/callback, on the admin listener)")
            }
            redirect = url
        } else {
            // The listener itself: right when people reach it at the address it listens on.
            let host = listen.host.contains(":") ? "[\(listen.host)]" : listen.host
            redirect = URL(string: "\(tls ? "https" : "http")://\(host):\(listen.port)/login/callback")!
        }
        return AdminLoginSettings(clientID: clientID, clientSecret: secret?.value, redirectURL: redirect,
                                  sessionLifetime: try f["session_lifetime"]?.duration() ?? .seconds(8 * 3600))
    }
}
