import Approvals
import Foundation
import Policy

/// An approval change as a webhook event: type `approval.KIND`, the JSON object described in
/// docs/webhooks.md, a one-line summary with the statement for chat receivers, and the
/// approvals page's link when `approvals.page_url` is set. The statement is the record's, the
/// text the capture keeps (masked, never a credential).
public enum ApprovalWebhookEvent {
    /// Statements longer than this are cut in the chat line (the JSON carries the whole text).
    static let summaryStatementLimit = 500

    public static func make(_ change: ApprovalChange, pageURL: URL?) -> WebhookEvent {
        let payload = Payload(change, pageURL: pageURL)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Strings, numbers and arrays of them: encoding cannot fail.
        let data = (try? encoder.encode(payload)).map(Array.init) ?? Array("{}".utf8)
        return WebhookEvent(type: "approval." + change.kind.rawValue, time: change.at, data: data, summary: summary(change, payload),
                            link: payload.url)
    }

    static func summary(_ change: ApprovalChange, _ p: Payload) -> String {
        var statement = p.statement ?? ""
        if statement.count > summaryStatementLimit { statement = statement.prefix(summaryStatementLimit) + "…" }
        let on = "on \(p.target) (rule \(p.policy)/\(p.rule))"
        let who = p.decidedBy.joined(separator: ", ")
        let why = p.reason.isEmpty ? "" : ": \(p.reason)"
        let head: String = switch change.kind {
        case .requested: "\(p.subject) asks to run \(on), approvers \(p.approverGroups.joined(separator: ", "))"
        case .approvedInPart: "\(change.actor) approved \(p.subject)'s request \(on); more approvers needed"
        case .approved: "\(who) approved \(p.subject)'s request \(on)\(why)"
        case .denied: "\(who) denied \(p.subject)'s request \(on)\(why)"
        case .expired: "\(p.subject)'s request \(on) expired\(why)"
        case .withdrawn: "\(p.subject)'s request \(on) was withdrawn\(why)"
        case .abandoned: "\(p.subject)'s request \(on) was abandoned\(why)"
        case .grantReused: "\(p.subject) ran \(on) under grant \(p.grant?.id ?? "") (approved by \(who))"
        case .grantRevoked: "\(change.actor) revoked grant \(p.grant?.id ?? "") of \(p.subject) \(on)\(change.actorReason.isEmpty ? "" : ": \(change.actorReason)")"
        }
        return "Approval \(p.approvalID): \(head)" + (statement.isEmpty ? "" : "\n\(statement)")
    }

    /// The event's `data` object (field names are part of the webhook contract).
    struct Payload: Encodable {
        struct Clause: Encodable { var groups: [String]; var count: Int }
        struct Requirement: Encodable {
            var clauses: [Clause]
            var timeoutSeconds: Double
            var grantSeconds: Double?
            enum CodingKeys: String, CodingKey { case clauses, timeoutSeconds = "timeout_seconds", grantSeconds = "grant_seconds" }
        }
        struct Decision: Encodable { var verdict: String; var by: String; var groups: [String]; var reason: String; var at: String }
        struct Grant: Encodable {
            var id: String
            var createdAt: String
            var expiresAt: String
            var grantedBy: [String]
            var revokedBy: String?
            var revokedAt: String?
            var revokeReason: String?
            enum CodingKeys: String, CodingKey {
                case id, createdAt = "created_at", expiresAt = "expires_at", grantedBy = "granted_by", revokedBy = "revoked_by"
                case revokedAt = "revoked_at", revokeReason = "revoke_reason"
            }
        }

        var event: String
        var approvalID: String
        var state: String?
        var target: String
        var subject: String
        var subjectGroups: [String]?
        var session: String?
        var exchange: UInt64?
        var policy: String
        var rule: String
        var statement: String?
        var approverGroups: [String]
        var requirement: Requirement?
        var requestedAt: String?
        var deadline: String?
        var decidedAt: String?
        /// Who decided the outcome (the approvers, the denier, a reused grant's approvers).
        var decidedBy: [String]
        /// Why: the approvers' reasons, the denial's, or the gate's (expired, withdrawn, abandoned, reused).
        var reason: String
        /// Every approver's word so far.
        var decisions: [Decision]
        /// Who made this change and why, when a person did (a partial approval, a revocation).
        var actor: String?
        var actorReason: String?
        var grant: Grant?
        var url: String?
        var at: String

        enum CodingKeys: String, CodingKey {
            case event, approvalID = "approval_id", state, target, subject, subjectGroups = "subject_groups", session, exchange, policy, rule
            case statement, approverGroups = "approver_groups", requirement, requestedAt = "requested_at", deadline
            case decidedAt = "decided_at", decidedBy = "decided_by", reason, decisions, actor, actorReason = "actor_reason", grant, url, at
        }

        init(_ change: ApprovalChange, pageURL: URL?) {
            let r = change.record, g = change.grant
            let time = WebhookDelivery.iso8601
            event = change.kind.rawValue
            approvalID = r?.id ?? g?.approvalID ?? ""
            state = r?.state.rawValue
            target = r?.target ?? g?.target ?? ""
            subject = r?.subject ?? g?.subject ?? ""
            subjectGroups = r?.subjectGroups
            session = r?.session
            exchange = r?.exchange
            policy = r?.policy ?? g?.policy ?? ""
            rule = r?.rule ?? g?.rule ?? ""
            statement = r?.statement
            approverGroups = r?.requirement.groups ?? g?.approverGroups ?? []
            requirement = r.map { r in
                Requirement(clauses: r.requirement.clauses.map { Clause(groups: $0.groups, count: $0.count) },
                            timeoutSeconds: r.requirement.timeout.seconds, grantSeconds: r.requirement.grant?.seconds)
            }
            requestedAt = r.map { time($0.createdAt) }
            deadline = r.map { time($0.deadline) }
            decidedAt = r?.decidedAt.map(time)
            decisions = (r?.decisions ?? []).map {
                Decision(verdict: $0.verdict.rawValue, by: $0.approver, groups: $0.groups, reason: $0.reason, at: time($0.at))
            }
            let yes = (r?.decisions ?? []).filter { $0.verdict == .approve }
            switch change.kind {
            case .approved:
                decidedBy = yes.map(\.approver)
                reason = yes.count == 1 ? yes[0].reason : yes.map { "\($0.approver): \($0.reason)" }.joined(separator: "; ")
            case .denied:
                let no = r?.decisions.last { $0.verdict == .deny }
                decidedBy = no.map { [$0.approver] } ?? []
                reason = no?.reason ?? ""
            case .grantReused:
                decidedBy = g?.grantedBy ?? []
                reason = r?.outcomeReason ?? ""
            case .grantRevoked:
                decidedBy = g?.grantedBy ?? []
                reason = ""
            case .requested, .approvedInPart:
                decidedBy = []
                reason = ""
            case .expired, .withdrawn, .abandoned:
                decidedBy = []
                reason = r?.outcomeReason ?? ""
            }
            actor = change.actor.isEmpty ? nil : change.actor
            actorReason = change.actor.isEmpty ? nil : change.actorReason
            grant = g.map {
                Grant(id: $0.id, createdAt: time($0.createdAt), expiresAt: time($0.expiresAt), grantedBy: $0.grantedBy, revokedBy: $0.revokedBy,
                      revokedAt: $0.revokedAt.map(time), revokeReason: $0.revokeReason)
            }
            let id = approvalID
            url = pageURL.map { $0.appendingPathComponent("approvals").appendingPathComponent(id).absoluteString }
            at = time(change.at)
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
