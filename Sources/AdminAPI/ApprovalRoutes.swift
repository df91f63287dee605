import Approvals
import Foundation
import GateRuntime
import Hummingbird
import HTTPTypes
import Identity
import Policy

/// The approvers' endpoints: held requests listed, shown, approved and denied; grants listed and
/// revoked. Who may decide is the approvals service's rule (the rule's approver groups, never
/// one's own request); what a caller may see: operators everything, others the approvals they
/// could decide on and their own requests.
struct ApprovalRoutes: Sendable {
    let approvals: Approvals
    let operators: Set<String>

    func register(on v1: RouterGroup<AdminContext>) {
        v1.get("approvals") { request, context in
            let who = try identity(context)
            let filter = request.uri.queryParameters.get("state") ?? "pending"
            let states: Set<ApprovalState>
            switch filter {
            case "all": states = []
            case "pending": states = [.pending]
            case "decided": states = Set(ApprovalState.allCases).subtracting([.pending])
            default:
                guard let state = ApprovalState(rawValue: filter) else {
                    return AdminResponse.error(.badRequest, "unknown state '\(filter)' (pending, decided, all, or one of \(ApprovalState.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                states = [state]
            }
            let visible = try await approvals.approvals(states: states, limit: 500).filter { may(who, see: $0) }
            return AdminResponse.json(ApprovalListDocument(approvals: visible.map(ApprovalDocument.init)))
        }
        v1.get("approvals/:id") { _, context in
            let who = try identity(context)
            let id = try context.parameters.require("id")
            guard let record = try await approvals.approval(id), may(who, see: record) else {
                return AdminResponse.error(.notFound, "no approval \(id)")
            }
            return AdminResponse.json(ApprovalDocument(record))
        }
        v1.post("approvals/:id/approve") { request, context in try await decide(request, context, approve: true) }
        v1.post("approvals/:id/deny") { request, context in try await decide(request, context, approve: false) }
        v1.get("grants") { request, context in
            let who = try identity(context)
            let all = request.uri.queryParameters.get("all") == "true"
            let grants = try await approvals.grants(includeInactive: all, limit: 500).filter { g in
                isOperator(who) || g.subject == who.subject || who.groups.contains(where: g.approverGroups.contains)
            }
            return AdminResponse.json(GrantListDocument(grants: grants.map(GrantDocument.init)))
        }
        v1.post("grants/:id/revoke") { request, context in
            let who = try identity(context)
            let id = try context.parameters.require("id")
            guard let reason = try await reason(request, context) else { return Self.badBody }
            do {
                return AdminResponse.json(GrantDocument(try await approvals.revokeGrant(id, by: who, reason: reason)))
            } catch {
                return Self.response(for: error)
            }
        }
    }

    func decide(_ request: Request, _ context: AdminContext, approve: Bool) async throws -> Response {
        let who = try identity(context)
        let id = try context.parameters.require("id")
        guard let reason = try await reason(request, context) else { return Self.badBody }
        do {
            _ = approve ? try await approvals.approve(id, by: who, reason: reason) : try await approvals.deny(id, by: who, reason: reason)
        } catch {
            return Self.response(for: error)
        }
        guard let record = try await approvals.approval(id) else { return AdminResponse.error(.notFound, "no approval \(id)") }
        return AdminResponse.json(ApprovalDocument(record))
    }

    func identity(_ context: AdminContext) throws -> VerifiedIdentity {
        guard let who = context.identity else { throw HTTPError(.unauthorized) }
        return who
    }

    func isOperator(_ who: VerifiedIdentity) -> Bool { !operators.isDisjoint(with: who.groups) }

    func may(_ who: VerifiedIdentity, see record: ApprovalRecord) -> Bool {
        isOperator(who) || record.subject == who.subject || who.groups.contains(where: record.requirement.groups.contains)
    }

    struct ReasonBody: Decodable { var reason: String }

    static let badBody = AdminResponse.error(.badRequest, #"the body must be a JSON object with a "reason" string"#)

    /// The decision's reason from the JSON body; nil when the body is not that.
    func reason(_ request: Request, _ context: AdminContext) async throws -> String? {
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        return try? JSONDecoder().decode(ReasonBody.self, from: Data(buffer: body)).reason
    }

    static func response(for error: any Error) -> Response {
        guard let error = error as? ApprovalError else { return AdminResponse.error(.internalServerError, "\(error)") }
        let status: HTTPResponse.Status
        switch error {
        case .unknownApproval, .unknownGrant: status = .notFound
        case .notPending, .alreadyDecided, .grantNotActive, .duplicateID, .noApprovers: status = .conflict
        case .selfApproval, .notAnApprover, .notAllowedToRevoke: status = .forbidden
        case .reasonRequired: status = .badRequest
        // Nothing changed: the store refused the write.
        case .store: status = .serviceUnavailable
        }
        return AdminResponse.error(status, error.description)
    }
}
