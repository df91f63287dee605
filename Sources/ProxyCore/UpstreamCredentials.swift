import Foundation
import Policy

extension TargetConfig.Credentials {
    /// A `credentials:` mapping (a target's or a policy's): `user`, and the password from
    /// `password_env` or `password_file`, never inline.
    static func parse(_ credNode: ConfigNode, resolve: (String) -> String, environment: [String: String],
                      requireSecrets: Bool) throws -> TargetConfig.Credentials {
        let c = try credNode.fields(["user", "password_env", "password_file", "password"])
        guard let user = try c["user"]?.string(), !user.isEmpty else { throw credNode.error("missing 'user'") }
        let secret = try ConfigSecret.read("password", from: c, of: credNode, resolve: resolve, environment: environment,
                                           requireSecrets: requireSecrets, what: "password")
        let password = secret?.value, source = secret?.source ?? "none (trust)"
        return TargetConfig.Credentials(user: user, password: password, source: source)
    }

    /// The same account from the same place: two policies naming it do not conflict.
    func isSameAccount(as other: TargetConfig.Credentials) -> Bool {
        user == other.user && source == other.source && password == other.password
    }
}

/// Which upstream account a session logs in with ("let the database back the policy up"): a
/// policy may name its own `credentials:` (a read-only policy, a read-only database role, so
/// that PostgreSQL's grants refuse what the gate might miss). A session uses the credentials
/// named by the policies that apply to its identity on its target; policies that name none
/// accept any. None named: the target's. Different ones named: the session is refused, since
/// either choice would weaken one of the policies (the write role undoes the read-only
/// policy's backing; the read-only role breaks the other policy's grants in a way nobody chose).
public struct UpstreamCredentials: Sendable {
    public struct Conflict: Error, CustomStringConvertible {
        public var description: String
    }

    public let policies: PolicySet
    /// Policy name → the credentials it names.
    public let byPolicy: [String: TargetConfig.Credentials]

    public init(policies: PolicySet, byPolicy: [String: TargetConfig.Credentials]) {
        self.policies = policies
        self.byPolicy = byPolicy
    }

    public func choose(for who: Principal, target: TargetConfig) -> Result<TargetConfig.Credentials, Conflict> {
        let named = policies.applicable(to: who, target: target.name).compactMap { p in byPolicy[p.name].map { (p.name, $0) } }
        guard let first = named.first else { return .success(target.credentials) }
        if let other = named.first(where: { !$0.1.isSameAccount(as: first.1) }) {
            return .failure(Conflict(description: "the policies that apply to \(who.subject) on target \(target.name) name different "
                                     + "database accounts (\(first.0): \(first.1.user), \(other.0): \(other.1.user)); the gate does not choose between them"))
        }
        return .success(first.1)
    }
}
