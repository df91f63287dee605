import Foundation

/// What a `protocol: http` target adds: the credential the gate presents upstream in place of
/// the client's token, and the request limits.
public struct HTTPTargetSettings: Sendable {
    /// The upstream's `Authorization`, from the config's secrets (never inline).
    public enum Credential: Sendable, Equatable {
        case none
        case bearer(String)
        case basic(user: String, password: String)
        /// A client certificate the gate presents in its TLS handshake with the upstream (PEM files).
        case clientCertificate(certificateFile: String, keyFile: String)
    }

    public var credential: Credential = .none
    /// Where the credential comes from ("file /p", "env X"), for logs: never the value.
    public var credentialSource = "none"
    public var maxHeaderBytes = 16 * 1024
    public var maxBodyBytes = 8 * 1024 * 1024
    /// `kind: kubernetes` (the Kubernetes API: its facts and its Status bodies) or plain `http`.
    public var kind = "http"
    /// `impersonate: true` (kind kubernetes): the gate sets `Impersonate-User` (the verified
    /// subject) and `Impersonate-Group` (the identity's groups) upstream.
    public var impersonate = false

    public init() {}

    /// `credentials: {token_file | token_env}` (bearer) or `{user, password_file | password_env}`
    /// (basic); absent: nothing is sent upstream in place of the client's token.
    /// `limits: {max_header_bytes, max_body_bytes, idle_timeout}`.
    static func parse(credentials: ConfigNode?, limits: ConfigNode?, kind: ConfigNode?, resolve: (String) -> String,
                      environment: [String: String], requireSecrets: Bool) throws -> (HTTPTargetSettings, idle: Duration?) {
        var s = HTTPTargetSettings()
        if let kind { s.kind = try kind.oneOf(["http": "http", "kubernetes": "kubernetes"]) }
        if let node = credentials {
            let c = try node.fields(["token_file", "token_env", "token", "user", "password_file", "password_env", "password",
                                     "certificate_file", "key_file"])
            if let cert = c["certificate_file"] {
                guard c.count == 2, let key = c["key_file"] else {
                    throw node.error("a client certificate is 'certificate_file' with 'key_file' (PEM), and nothing else")
                }
                let (certPath, keyPath) = (resolve(try cert.string()), resolve(try key.string()))
                if requireSecrets {
                    for (path, n) in [(certPath, cert), (keyPath, key)] where !FileManager.default.isReadableFile(atPath: path) {
                        throw n.error("cannot read \(path)")
                    }
                }
                s.credential = .clientCertificate(certificateFile: certPath, keyFile: keyPath)
                s.credentialSource = "client certificate \(certPath)"
            } else if c["key_file"] != nil {
                throw node.error("'key_file' needs 'certificate_file'")
            } else if let token = try ConfigSecret.read("token", from: c, of: node, resolve: resolve, environment: environment,
                                                 requireSecrets: requireSecrets, what: "token") {
                guard c["user"] == nil else { throw node.error("give either a token or a user and password, not both") }
                s.credential = token.value.map { .bearer($0) } ?? .none
                s.credentialSource = token.source
            } else if let user = try c["user"]?.string(), !user.isEmpty {
                let password = try ConfigSecret.read("password", from: c, of: node, resolve: resolve, environment: environment,
                                                     requireSecrets: requireSecrets, what: "password")
                guard let password else { throw node.error("basic credentials need 'password_file' or 'password_env'") }
                s.credential = .basic(user: user, password: password.value ?? "")
                s.credentialSource = password.source
            } else {
                throw node.error("needs 'token_file' or 'token_env' (bearer), 'user' with 'password_file' or 'password_env' (basic), or 'certificate_file' with 'key_file' (a client certificate)")
            }
        }
        var idle: Duration?
        if let limits {
            let l = try limits.fields(["max_header_bytes", "max_body_bytes", "idle_timeout"])
            s.maxHeaderBytes = try l["max_header_bytes"]?.bytes(max: 1 << 20) ?? s.maxHeaderBytes
            s.maxBodyBytes = try l["max_body_bytes"]?.bytes(max: 1 << 30) ?? s.maxBodyBytes
            idle = try l["idle_timeout"]?.duration()
        }
        return (s, idle)
    }
}
