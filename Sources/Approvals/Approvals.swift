import CaptureFormat
import Foundation
import Identity
import Policy

/// The approvals service every adapter and the admin API share: it registers held requests,
/// takes approvers' decisions under the rule's requirement, expires what waits too long, opens
/// and looks up grants, and keeps it all (and the admin audit) in its store.
///
/// Changes are made one at a time (a FIFO turn across awaits, since the store is awaited): of
/// two racing decisions, the first to take its turn wins and the second sees the outcome. A
/// change is stored before it takes effect: if the store refuses an approval, nothing is approved.
public actor Approvals {
    public nonisolated let store: any ApprovalStore
    public nonisolated let clock: any ApprovalClock
    /// The last store failure the service could not report to a caller (an expiry it could not
    /// store: the request was still refused; the row stays pending and is marked abandoned at the next start).
    public private(set) var unreportedStoreError: ApprovalStoreError?

    /// Hear every change once it is stored (webhooks, metrics): `ApprovalChange`.
    private let observers: [ApprovalObserver]
    private var live: [String: Live] = [:]
    private var turns = Turns()
    private var started = false

    /// A pending approval: its record, who waits on it, and its timeout.
    private struct Live {
        var record: ApprovalRecord
        var onEvent: (@Sendable (ApprovalEvent) -> Void)?
        var waiters: [CheckedContinuation<ApprovalEvent, Never>] = []
        var timer: Task<Void, Never>?
    }

    public init(store: any ApprovalStore, clock: any ApprovalClock = SystemApprovalClock(), observers: [ApprovalObserver] = []) {
        self.store = store
        self.clock = clock
        self.observers = observers
    }

    /// Once, before the first request: approvals a previous process left pending are marked
    /// abandoned (their clients are gone). Returns their ids. Later calls do nothing (they would
    /// abandon this process's own pending approvals).
    @discardableResult
    public func start() async throws(ApprovalError) -> [String] {
        await takeTurn(); defer { endTurn() }
        guard !started, live.isEmpty else { return [] }
        started = true
        let now = clock.now().storedPrecision
        let ids = try await stored { [store] () async throws(ApprovalStoreError) in
            try await store.abandonPending(at: now, reason: "the gate stopped while it waited; its client is gone")
        }
        for id in ids {
            let record = try? await stored { [store] () async throws(ApprovalStoreError) in try await store.approval(id) }
            publish(ApprovalChange(kind: .abandoned, record: record ?? nil, at: now))
        }
        return ids
    }

    // MARK: Requests

    /// Registers a held request. A live grant for the same subject, target, statement fingerprint
    /// and rule lets it run at once (`reusedGrant`) if the rule still grants windows; otherwise it is pending (`requested`) until
    /// decided, expired or withdrawn. `onEvent` hears every later change of this approval; it is
    /// called on the service's actor and must return at once (an adapter hops to its event loop).
    @discardableResult
    public func request(_ hold: HoldRequest, onEvent: (@Sendable (ApprovalEvent) -> Void)? = nil) async throws(ApprovalError) -> ApprovalEvent {
        await takeTurn(); defer { endTurn() }
        let id = hold.approvalID
        guard hold.requirement.approvalsNeeded > 0, !hold.requirement.groups.isEmpty else { throw .noApprovers(id) }
        guard live[id] == nil else { throw .duplicateID(id) }
        let existing = try await stored { [store] () async throws(ApprovalStoreError) in try await store.approval(id) }
        guard existing == nil else { throw .duplicateID(id) }
        let now = clock.now().storedPrecision
        var record = ApprovalRecord(
            id: id, session: hold.session, exchange: hold.exchange, target: hold.target, subject: hold.requester.subject,
            subjectGroups: hold.requester.groups, statement: hold.statement, fingerprint: hold.fingerprint,
            policy: hold.decision.policy, rule: hold.decision.rule, requirement: hold.requirement, state: .pending,
            createdAt: now, deadline: now.addingTimeInterval(hold.requirement.timeout.timeInterval).storedPrecision)

        // Only while the rule still grants windows: a policy that took its grant away ends the reuse.
        let grant = hold.requirement.grant == nil ? nil : try await stored { [store] () async throws(ApprovalStoreError) in
            try await store.activeGrant(subject: hold.requester.subject, target: hold.target, fingerprint: hold.fingerprint,
                                        policy: hold.decision.policy, rule: hold.decision.rule, at: now)
        }
        if let grant {
            record.state = .approved
            record.decidedAt = now
            record.reusedGrant = grant.id
            record.outcomeReason = Self.reuseReason(grant)
            try await write(StoreChange(approvals: [record]))
            publish(ApprovalChange(kind: .grantReused, record: record, grant: grant, at: now))
            return ApprovalEvent(kind: .reusedGrant, approvalID: id, by: grant.grantedBy, reason: record.outcomeReason, grantID: grant.id)
        }

        try await write(StoreChange(approvals: [record]))
        live[id] = Live(record: record, onEvent: onEvent, timer: expiry(id, deadline: record.deadline))
        publish(ApprovalChange(kind: .requested, record: record, at: now))
        return ApprovalEvent(kind: .requested, approvalID: id, approverGroups: hold.requirement.groups)
    }

    /// The approval's final event, once there is one: at once if already decided, else when it is.
    public func outcome(_ id: String) async throws(ApprovalError) -> ApprovalEvent {
        if live[id] != nil {
            return await withCheckedContinuation { live[id]!.waiters.append($0) }
        }
        let record = try await stored { [store] () async throws(ApprovalStoreError) in try await store.approval(id) }
        guard let record, var event = ApprovalEvent.final(record) else { throw .unknownApproval(id) }
        if let grantID = record.reusedGrant,
           let grant = try await stored({ [store] () async throws(ApprovalStoreError) in try await store.grant(grantID) }) {
            event.by = grant.grantedBy
        }
        return event
    }

    /// The client cancelled or disconnected: the request will never run.
    @discardableResult
    public func withdraw(_ id: String, reason: String) async throws(ApprovalError) -> ApprovalEvent {
        await takeTurn(); defer { endTurn() }
        guard var record = live[id]?.record else { throw try await notLive(id) }
        let now = clock.now().storedPrecision
        record.state = .withdrawn
        record.decidedAt = now
        record.outcomeReason = "withdrawn: \(Self.printable(reason))"
        let event = ApprovalEvent(kind: .withdrawn, approvalID: id, reason: record.outcomeReason)
        // Settled even if the store cannot say so (refusing the request is safe), but after the
        // write, so that a waiter arriving meanwhile finds it live or stored as withdrawn.
        defer { publish(ApprovalChange(kind: .withdrawn, record: record, at: now)) }
        do throws(ApprovalError) { try await write(StoreChange(approvals: [record])) } catch {
            settle(id, event)
            throw error
        }
        settle(id, event)
        return event
    }

    // MARK: Decisions

    /// An approver says yes. When the rule's requirement is met the approval is final and, if the
    /// rule grants a window, a grant opens; until then the event is `approvedInPart`.
    @discardableResult
    public func approve(_ id: String, by who: VerifiedIdentity, reason: String) async throws(ApprovalError) -> ApprovalEvent {
        try await decide(id, .approve, who, reason)
    }

    /// An approver says no: final.
    @discardableResult
    public func deny(_ id: String, by who: VerifiedIdentity, reason: String) async throws(ApprovalError) -> ApprovalEvent {
        try await decide(id, .deny, who, reason)
    }

    private func decide(_ id: String, _ verdict: ApproverDecision.Verdict, _ who: VerifiedIdentity,
                        _ reason: String) async throws(ApprovalError) -> ApprovalEvent {
        await takeTurn(); defer { endTurn() }
        let now = clock.now().storedPrecision
        do throws(ApprovalError) {
            return try await decideInTurn(id, verdict, who, reason, now)
        } catch {
            try await auditRefusal(error, who: who, action: verdict.rawValue, object: id, reason: reason, at: now)
            throw error
        }
    }

    private func decideInTurn(_ id: String, _ verdict: ApproverDecision.Verdict, _ who: VerifiedIdentity, _ reason: String,
                              _ now: Date) async throws(ApprovalError) -> ApprovalEvent {
        guard var record = live[id]?.record else { throw try await notLive(id) }
        // Past its deadline it is expired, whether or not its timer has fired yet.
        if now >= record.deadline {
            await expire(id, at: now)
            throw .notPending(id, .expired)
        }
        guard who.subject != record.subject else { throw .selfApproval(id) }
        guard record.requirement.admits(Principal(subject: who.subject, groups: who.groups)) else {
            throw .notAnApprover(id, groups: record.requirement.groups)
        }
        guard !record.decisions.contains(where: { $0.approver == who.subject }) else { throw .alreadyDecided(id, by: who.subject) }
        guard Self.isOneLine(reason) else { throw .reasonRequired(id) }

        record.decisions.append(ApproverDecision(verdict: verdict, approver: who.subject, groups: who.groups, reason: reason, at: now))
        var change = StoreChange(audit: [AuditEntry(at: now, actor: who.subject, actorGroups: who.groups, action: verdict.rawValue,
                                                    object: id, reason: reason, outcome: "done")])
        let event: ApprovalEvent
        if verdict == .deny {
            record.state = .denied
            record.decidedAt = now
            event = ApprovalEvent(kind: .denied, approvalID: id, by: [who.subject], reason: reason)
        } else if record.requirement.isSatisfied(by: record.approvers) {
            record.state = .approved
            record.decidedAt = now
            let yes = record.decisions.filter { $0.verdict == .approve }
            if let window = record.requirement.grant {
                let grant = GrantRecord(id: "grant-" + UUID().uuidString.lowercased(), approvalID: id, subject: record.subject,
                                        target: record.target, fingerprint: record.fingerprint, policy: record.policy, rule: record.rule,
                                        approverGroups: record.requirement.groups, grantedBy: yes.map(\.approver), createdAt: now,
                                        expiresAt: now.addingTimeInterval(window.timeInterval).storedPrecision)
                record.openedGrant = grant.id
                change.grants = [grant]
            }
            event = ApprovalEvent(kind: .approved, approvalID: id, by: yes.map(\.approver), reason: ApprovalEvent.reasons(yes),
                                  grantID: record.openedGrant)
        } else {
            event = ApprovalEvent(kind: .approvedInPart, approvalID: id, by: [who.subject], reason: reason)
        }
        change.approvals = [record]
        try await write(change)
        let published: ApprovalChange.Kind = switch event.kind {
        case .denied: .denied
        case .approved: .approved
        default: .approvedInPart
        }
        publish(ApprovalChange(kind: published, record: record, grant: change.grants.first, actor: who.subject, actorReason: reason, at: now))
        if event.isFinal {
            settle(id, event)
        } else {
            live[id]?.record = record
            live[id]?.onEvent?(event)
        }
        return event
    }

    // MARK: Grants

    /// The live grant that covers this request, if any (what `request` consults before holding).
    public func activeGrant(subject: String, target: String, fingerprint: String, policy: String,
                            rule: String) async throws(ApprovalError) -> GrantRecord? {
        let now = clock.now().storedPrecision
        return try await stored { [store] () async throws(ApprovalStoreError) in
            try await store.activeGrant(subject: subject, target: target, fingerprint: fingerprint, policy: policy, rule: rule, at: now)
        }
    }

    /// Newest first: the live grants, or all of them.
    public func grants(includeInactive: Bool = false, limit: Int = 100) async throws(ApprovalError) -> [GrantRecord] {
        let now = clock.now().storedPrecision
        return try await stored { [store] () async throws(ApprovalStoreError) in
            try await store.grants(activeAt: includeInactive ? nil : now, limit: limit)
        }
    }

    /// Ends a grant before its time. Its subject may give it up; members of its rule's approver
    /// groups may take it away.
    @discardableResult
    public func revokeGrant(_ id: String, by who: VerifiedIdentity, reason: String) async throws(ApprovalError) -> GrantRecord {
        await takeTurn(); defer { endTurn() }
        let now = clock.now().storedPrecision
        do throws(ApprovalError) {
            let found = try await stored { [store] () async throws(ApprovalStoreError) in try await store.grant(id) }
            guard var grant = found else { throw ApprovalError.unknownGrant(id) }
            guard grant.isActive(at: now) else { throw ApprovalError.grantNotActive(id) }
            guard who.subject == grant.subject || who.groups.contains(where: grant.approverGroups.contains) else {
                throw ApprovalError.notAllowedToRevoke(id, by: who.subject)
            }
            guard Self.isOneLine(reason) else { throw ApprovalError.reasonRequired(id) }
            grant.revokedBy = who.subject
            grant.revokedAt = now
            grant.revokeReason = reason
            try await write(StoreChange(grants: [grant], audit: [AuditEntry(at: now, actor: who.subject, actorGroups: who.groups,
                                                                            action: "revoke-grant", object: id, reason: reason, outcome: "done")]))
            let opened = try? await stored { [store, approvalID = grant.approvalID] () async throws(ApprovalStoreError) in
                try await store.approval(approvalID)
            }
            publish(ApprovalChange(kind: .grantRevoked, record: opened ?? nil, grant: grant, actor: who.subject, actorReason: reason, at: now))
            return grant
        } catch {
            try await auditRefusal(error, who: who, action: "revoke-grant", object: id, reason: reason, at: now)
            throw error
        }
    }

    // MARK: Reading and the audit

    public func approval(_ id: String) async throws(ApprovalError) -> ApprovalRecord? {
        if let record = live[id]?.record { return record }
        return try await stored { [store] () async throws(ApprovalStoreError) in try await store.approval(id) }
    }

    /// Newest first; `states` empty means all.
    public func approvals(states: Set<ApprovalState> = [], limit: Int = 100) async throws(ApprovalError) -> [ApprovalRecord] {
        try await stored { [store] () async throws(ApprovalStoreError) in try await store.approvals(states: states, limit: limit) }
    }

    public func audit(limit: Int = 100) async throws(ApprovalError) -> [AuditEntry] {
        try await stored { [store] () async throws(ApprovalStoreError) in try await store.audit(limit: limit) }
    }

    /// Records an admin action the service does not perform itself (ending a session, a policy reload).
    public func recordAdminAction(by who: VerifiedIdentity, action: String, object: String, reason: String,
                                  outcome: String) async throws(ApprovalError) {
        let now = clock.now().storedPrecision
        try await write(StoreChange(audit: [AuditEntry(at: now, actor: who.subject, actorGroups: who.groups, action: action,
                                                       object: object, reason: Self.printable(reason), outcome: Self.printable(outcome))]))
    }

    // MARK: Expiry

    /// Sleeps on the clock until the deadline, then expires the approval if it is still pending.
    private func expiry(_ id: String, deadline: Date) -> Task<Void, Never> {
        let clock = self.clock
        return Task { [weak self] in
            while true {
                do { try await clock.sleep(until: deadline) } catch { return }
                guard let self, await !self.expireIfDue(id) else { return }
            }
        }
    }

    /// Whether the approval is settled (expired now, or decided before).
    private func expireIfDue(_ id: String) async -> Bool {
        await takeTurn(); defer { endTurn() }
        guard let record = live[id]?.record else { return true }
        let now = clock.now().storedPrecision
        guard now >= record.deadline else { return false }
        await expire(id, at: now)
        return true
    }

    /// Within a turn.
    private func expire(_ id: String, at now: Date) async {
        guard var record = live[id]?.record else { return }
        record.state = .expired
        record.decidedAt = now
        record.outcomeReason = "not approved within \(Self.describe(record.requirement.timeout))"
        // Stored before settling: settling cancels the timer task this may be running in, and a
        // cancelled task's store write would be refused.
        do throws(ApprovalError) { try await write(StoreChange(approvals: [record])) } catch {
            if case .store(let e) = error { unreportedStoreError = e }
        }
        publish(ApprovalChange(kind: .expired, record: record, at: now))
        settle(id, ApprovalEvent(kind: .expired, approvalID: id, reason: record.outcomeReason))
    }

    // MARK: Helpers

    /// Tells the observers (each returns at once).
    private func publish(_ change: ApprovalChange) {
        for observe in observers { observe(change) }
    }

    /// Ends a live approval: its timer stops, its listener and waiters hear the final event.
    private func settle(_ id: String, _ event: ApprovalEvent) {
        guard let l = live.removeValue(forKey: id) else { return }
        l.timer?.cancel()
        l.onEvent?(event)
        for waiter in l.waiters { waiter.resume(returning: event) }
    }

    /// Why an id that is not live cannot be acted on.
    private func notLive(_ id: String) async throws(ApprovalError) -> ApprovalError {
        let record = try await stored { [store] () async throws(ApprovalStoreError) in try await store.approval(id) }
        return record.map { .notPending(id, $0.state) } ?? .unknownApproval(id)
    }

    /// A refused admin action, on the audit too (unless the store itself failed).
    private func auditRefusal(_ error: ApprovalError, who: VerifiedIdentity, action: String, object: String, reason: String,
                              at now: Date) async throws(ApprovalError) {
        if case .store = error { return }
        try await write(StoreChange(audit: [AuditEntry(at: now, actor: who.subject, actorGroups: who.groups, action: action,
                                                       object: object, reason: Self.printable(reason), outcome: "refused: \(error)")]))
    }

    private func write(_ change: StoreChange) async throws(ApprovalError) {
        try await stored { [store] () async throws(ApprovalStoreError) in try await store.write(change) }
    }

    private func stored<T: Sendable>(_ work: () async throws(ApprovalStoreError) -> T) async throws(ApprovalError) -> T {
        do { return try await work() } catch { throw .store(error) }
    }

    private func takeTurn() async {
        if turns.enter() { return }
        await withCheckedContinuation { turns.wait($0) }
    }

    private func endTurn() {
        turns.leave()?.resume()
    }

    static func reuseReason(_ grant: GrantRecord) -> String {
        "grant \(grant.id) from approval \(grant.approvalID) (approved by \(grant.grantedBy.joined(separator: ", "))), "
            + "valid until \(grant.expiresAt.formatted(Date.ISO8601FormatStyle()))"
    }

    static func describe(_ d: Duration) -> String {
        let s = Int(d.timeInterval.rounded())
        return s % 60 == 0 ? "\(s / 60)m" : "\(s)s"
    }

    /// A reason: some printable text on one line (it is shown on pages, in logs and in captures).
    static func isOneLine(_ text: String) -> Bool {
        !text.allSatisfy(\.isWhitespace) && !text.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }))
    }
}
