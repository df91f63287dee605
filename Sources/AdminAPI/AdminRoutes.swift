import Foundation
import GateRuntime
import Hummingbird
import HTTPTypes
import Identity
import Logging
import Prometheus
import ProxyCore

/// The admin API's endpoints. Health and metrics answer anyone who can reach the listener (no
/// session, subject or statement is in them); everything under /v1 needs a verified token, and
/// operator actions a token of one of the admin groups. Every operator action is logged with who
/// did it.
struct AdminRoutes: Sendable {
    let gate: Gate
    let operators: Set<String>
    let registry: PrometheusCollectorRegistry
    let reload: @Sendable () throws -> GateConfig
    let logger: Logger
    /// The approvals page, when `admin.login` is configured.
    var page: ApprovalsPage? = nil

    func register(on router: Router<AdminContext>, authentication: BearerAuthentication) {
        router.get("health") { _, _ in health() }
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        let v1 = router.group("v1").add(middleware: authentication)
        v1.get("sessions") { _, context in
            try await operatorOnly(context) { _ in AdminResponse.json(SessionList(sessions: gate.sessions.listing)) }
        }
        v1.post("sessions/:id/end") { _, context in
            try await operatorOnly(context) { who in
                let id = try context.parameters.require("id")
                guard gate.sessions.end(id, by: who.subject) else {
                    return AdminResponse.error(.notFound, "no open session \(id)")
                }
                logger.notice("session ended through the admin API", metadata: ["session": "\(id)", "by": "\(who.subject)"])
                await audit(who, "end-session", id, outcome: "ended")
                return AdminResponse.json(["ended": id])
            }
        }
        v1.post("policy/reload") { _, context in
            try await operatorOnly(context) { who in await reloadPolicies(by: who) }
        }
        ApprovalRoutes(approvals: gate.approvals, operators: operators).register(on: v1)
        page?.register(on: router)
        router.get("**") { _, _ in AdminResponse.error(.notFound, "no such endpoint") }
    }

    struct Health: Encodable {
        var status = "ok"
        var gate: String
        var sessions: Int
        var policyGeneration: Int

        enum CodingKeys: String, CodingKey { case status, gate, sessions, policyGeneration = "policy_generation" }
    }

    func health() -> Response {
        AdminResponse.json(Health(gate: gate.config.proxy.id, sessions: gate.sessions.count,
                                  policyGeneration: gate.policies.generation))
    }

    struct SessionList: Encodable { var sessions: [LiveSession] }

    /// Runs `body` for a caller in one of the admin groups; 403 for anyone else.
    func operatorOnly(_ context: AdminContext, _ body: (VerifiedIdentity) async throws -> Response) async throws -> Response {
        guard let who = context.identity else { return AdminResponse.error(.unauthorized, "missing bearer token") }
        guard !operators.isDisjoint(with: who.groups) else {
            return AdminResponse.error(.forbidden, "\(who.subject) is not in an admin group (\(operators.sorted().joined(separator: ", ")))")
        }
        return try await body(who)
    }

    /// An operator action into the approvals store's audit (beside the log line). The action is
    /// done either way: a store that cannot take the entry is logged, not a reason to undo it.
    func audit(_ who: VerifiedIdentity, _ action: String, _ object: String, outcome: String) async {
        do {
            try await gate.approvals.recordAdminAction(by: who, action: action, object: object, reason: "", outcome: outcome)
        } catch {
            logger.error("admin action not in the audit store", metadata: ["action": "\(action)", "by": "\(who.subject)", "error": "\(error)"])
        }
    }

    struct Reloaded: Encodable {
        var reloaded = true
        var policies: Int
        var policyGeneration: Int

        enum CodingKeys: String, CodingKey { case reloaded, policies, policyGeneration = "policy_generation" }
    }

    /// As SIGHUP: a file that does not load keeps the running policies, and says why (422).
    func reloadPolicies(by who: VerifiedIdentity) async -> Response {
        do {
            let config = try reload()
            gate.reload(config)
            logger.notice("policies reloaded through the admin API", metadata: ["by": "\(who.subject)"])
            await audit(who, "reload-policies", "generation \(gate.policies.generation)", outcome: "reloaded")
            return AdminResponse.json(Reloaded(policies: config.policies.policies.count, policyGeneration: gate.policies.generation))
        } catch {
            logger.error("reload through the admin API failed; keeping the running policies",
                         metadata: ["by": "\(who.subject)", "error": "\(error)"])
            await audit(who, "reload-policies", "generation \(gate.policies.generation)", outcome: "refused: the configuration does not load")
            return AdminResponse.error(.unprocessableContent, "the configuration does not load; the running policies stay: \(error)")
        }
    }
}
