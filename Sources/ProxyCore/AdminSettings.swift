import Foundation

/// The admin API's listener (`admin:` in the configuration; none when absent): where it listens,
/// its TLS, and who may use its operator endpoints.
public struct AdminSettings: Sendable {
    public var listen: HostPort
    public var tls: ListenerTLS?
    /// Members of these groups (from their OIDC token) may list and end sessions and reload the
    /// policies. Approvers are authorized by each rule's own groups.
    public var groups: [String]
    /// The approvals page's login (`login:`); without it the page is not served.
    public var login: AdminLoginSettings?

    public init(listen: HostPort, tls: ListenerTLS? = nil, groups: [String], login: AdminLoginSettings? = nil) {
        self.listen = listen; self.tls = tls; self.groups = groups; self.login = login
    }

    static func parse(_ node: ConfigNode, resolve: (String) -> String, environment: [String: String] = [:],
                      requireSecrets: Bool = true, audiences: [String] = []) throws -> AdminSettings {
        let f = try node.fields(["listen", "tls", "allow_plaintext", "groups", "login"])
        guard let listen = try f["listen"]?.hostPort() else { throw node.error("missing 'listen' (HOST:PORT)") }
        let tls = try f["tls"].map { try ListenerTLS.parse($0, resolve: resolve) }
        if tls == nil, !listen.isLoopback, try f["allow_plaintext"]?.bool() != true {
            throw node.error("listens on \(listen), which is not loopback, without 'tls': approvers and operators would send tokens in clear. Configure tls, or set allow_plaintext: true")
        }
        guard let groups = try f["groups"]?.strings(), !groups.isEmpty else {
            throw node.error("missing 'groups' (the groups whose members may operate the gate: list and end sessions, reload)")
        }
        let login = try f["login"].map {
            try AdminLoginSettings.parse($0, listen: listen, tls: tls != nil, resolve: resolve, environment: environment,
                                        requireSecrets: requireSecrets, audiences: audiences)
        }
        return AdminSettings(listen: listen, tls: tls, groups: groups, login: login)
    }
}
