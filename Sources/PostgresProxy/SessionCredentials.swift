import NIOCore
import Policy
import ProxyCore

extension PostgresSessionHandler {
    /// The account this session logs in with upstream: the one the policies that apply to it name,
    /// else the target's (`UpstreamCredentials`). Nil when they name different ones: the session
    /// is refused with a FATAL error naming the policies and accounts (never a password).
    func upstreamCredentials(_ context: ChannelHandlerContext) -> TargetConfig.Credentials? {
        guard let session else { return nil }
        let state = core.currentPolicy()
        switch state.credentials.choose(for: Principal(subject: session.subject, groups: session.groups), target: target) {
        case .success(let credentials):
            return credentials
        case .failure(let conflict):
            gate.logger.error("session refused: conflicting upstream credentials",
                              metadata: ["target": "\(target.name)", "session": "\(session.sessionID)", "reason": "\(conflict)"])
            fail(context, code: "28000", "tollgate: \(conflict)", reason: "credentials-conflict")
            return nil
        }
    }
}
