import Foundation
import GRDB
import Policy

/// The approvals store in one SQLite file (through GRDB), by default `approvals.sqlite` in the
/// capture directory. WAL journal with full sync: a decision is on disk when `write` returns.
///
/// Threads: GRDB's pool is synchronous underneath; every method here uses its async accessors,
/// which run the SQL on the pool's own serial dispatch queues and suspend the caller meanwhile,
/// so no event loop and no cooperative-pool thread waits for the disk. Only `init` opens the file
/// and migrates it synchronously: construct the store once at start, before serving.
public final class SQLiteApprovalStore: ApprovalStore {
    public let path: String
    private let pool: DatabasePool

    /// The default file beside the captures.
    public static func defaultPath(captureDirectory: String) -> String {
        (captureDirectory as NSString).appendingPathComponent("approvals.sqlite")
    }

    /// Opens (creating it 0600 if missing) and migrates the store. Blocking: call at start.
    public init(path: String) throws(ApprovalStoreError) {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            // Created private before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
            let made = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
            if !made {
                throw ApprovalStoreError(.cannotOpen, "approvals store \(path): cannot create the file (\(String(cString: strerror(errno))))")
            }
        }
        var configuration = Configuration()
        configuration.label = "tollgate.approvals"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            let migrator = SQLiteSchema.migrator
            if try pool.read({ try migrator.hasBeenSuperseded($0) }) {
                throw ApprovalStoreError(.newerSchema, "approvals store \(path): written by a newer gate (its schema has migrations this gate does not know)")
            }
            try migrator.migrate(pool)
        } catch let error as ApprovalStoreError {
            throw error
        } catch {
            throw Self.storeError(error, path: path, doing: "open")
        }
    }

    public func write(_ change: StoreChange) async throws(ApprovalStoreError) {
        try await run("write") { db in
            for a in change.approvals { try Self.save(a, db) }
            for g in change.grants { try Self.save(g, db) }
            for e in change.audit {
                try db.execute(sql: """
                    INSERT INTO admin_audit (at, actor, actor_groups, action, object, reason, outcome) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [e.at.approvalMilliseconds, e.actor, ColumnJSON.text(e.actorGroups), e.action, e.object, e.reason, e.outcome])
            }
        }
    }

    public func approval(_ id: String) async throws(ApprovalStoreError) -> ApprovalRecord? {
        try await runRead("read approval \(id)") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM approval WHERE id = ?", arguments: [id]).map { try Self.approvalRow($0, db) }
        }
    }

    public func approvals(states: Set<ApprovalState>, limit: Int) async throws(ApprovalStoreError) -> [ApprovalRecord] {
        let names = states.map(\.rawValue).sorted()
        return try await runRead("list approvals") { db in
            let filter = names.isEmpty ? "" : "WHERE state IN (\(databaseQuestionMarks(count: names.count)))"
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM approval \(filter) ORDER BY created_at DESC, id LIMIT ?",
                                        arguments: StatementArguments(names.map { $0.databaseValue } + [limit.databaseValue]))
            return try rows.map { try Self.approvalRow($0, db) }
        }
    }

    public func grant(_ id: String) async throws(ApprovalStoreError) -> GrantRecord? {
        try await runRead("read grant \(id)") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM access_grant WHERE id = ?", arguments: [id]).map(Self.grantRow)
        }
    }

    public func grants(activeAt: Date?, limit: Int) async throws(ApprovalStoreError) -> [GrantRecord] {
        try await runRead("list grants") { db in
            let rows = if let activeAt {
                try Row.fetchAll(db, sql: """
                    SELECT * FROM access_grant WHERE revoked_at IS NULL AND expires_at > ? ORDER BY created_at DESC, id LIMIT ?
                    """, arguments: [activeAt.approvalMilliseconds, limit])
            } else {
                try Row.fetchAll(db, sql: "SELECT * FROM access_grant ORDER BY created_at DESC, id LIMIT ?", arguments: [limit])
            }
            return try rows.map(Self.grantRow)
        }
    }

    public func activeGrant(subject: String, target: String, fingerprint: String, policy: String, rule: String,
                            at: Date) async throws(ApprovalStoreError) -> GrantRecord? {
        try await runRead("look up a grant") { db in
            try Row.fetchOne(db, sql: """
                SELECT * FROM access_grant
                WHERE subject = ? AND target = ? AND fingerprint = ? AND policy = ? AND rule = ?
                  AND revoked_at IS NULL AND expires_at > ?
                ORDER BY expires_at DESC LIMIT 1
                """, arguments: [subject, target, fingerprint, policy, rule, at.approvalMilliseconds]).map(Self.grantRow)
        }
    }

    public func audit(limit: Int) async throws(ApprovalStoreError) -> [AuditEntry] {
        try await runRead("read the audit") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM admin_audit ORDER BY id DESC LIMIT ?", arguments: [limit]).map { row throws in
                AuditEntry(id: row["id"], at: Date(approvalMilliseconds: row["at"]), actor: row["actor"],
                           actorGroups: try ColumnJSON.value([String].self, row["actor_groups"], column: "admin_audit.actor_groups"),
                           action: row["action"], object: row["object"], reason: row["reason"], outcome: row["outcome"])
            }
        }
    }

    public func abandonPending(at: Date, reason: String) async throws(ApprovalStoreError) -> [String] {
        try await run("mark pending approvals abandoned") { db in
            let ids = try String.fetchAll(db, sql: "SELECT id FROM approval WHERE state = 'pending' ORDER BY created_at")
            try db.execute(sql: "UPDATE approval SET state = 'abandoned', decided_at = ?, outcome_reason = ? WHERE state = 'pending'",
                           arguments: [at.approvalMilliseconds, reason])
            return ids
        }
    }

    // MARK: Rows

    private static func save(_ a: ApprovalRecord, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO approval (id, session, exchange, target, subject, subject_groups, statement, fingerprint, policy, rule,
                                  requirement, state, created_at, deadline, decided_at, outcome_reason, opened_grant, reused_grant)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET state = excluded.state, decided_at = excluded.decided_at,
                outcome_reason = excluded.outcome_reason, opened_grant = excluded.opened_grant, reused_grant = excluded.reused_grant
            """, arguments: [a.id, a.session, Int64(bitPattern: a.exchange), a.target, a.subject, ColumnJSON.text(a.subjectGroups),
                             a.statement, a.fingerprint, a.policy, a.rule, ColumnJSON.text(StoredRequirement(a.requirement)),
                             a.state.rawValue, a.createdAt.approvalMilliseconds, a.deadline.approvalMilliseconds,
                             a.decidedAt?.approvalMilliseconds, a.outcomeReason, a.openedGrant, a.reusedGrant])
        // Decisions are appended, never rewritten: a position already stored keeps what it holds.
        for (position, d) in a.decisions.enumerated() {
            try db.execute(sql: """
                INSERT OR IGNORE INTO approval_decision (approval_id, position, verdict, approver, approver_groups, reason, decided_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [a.id, position, d.verdict.rawValue, d.approver, ColumnJSON.text(d.groups), d.reason,
                                 d.at.approvalMilliseconds])
        }
    }

    private static func save(_ g: GrantRecord, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO access_grant (id, approval_id, subject, target, fingerprint, policy, rule, approver_groups, granted_by,
                                      created_at, expires_at, revoked_by, revoked_at, revoke_reason)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET revoked_by = excluded.revoked_by, revoked_at = excluded.revoked_at,
                revoke_reason = excluded.revoke_reason
            """, arguments: [g.id, g.approvalID, g.subject, g.target, g.fingerprint, g.policy, g.rule, ColumnJSON.text(g.approverGroups),
                             ColumnJSON.text(g.grantedBy), g.createdAt.approvalMilliseconds, g.expiresAt.approvalMilliseconds,
                             g.revokedBy, g.revokedAt?.approvalMilliseconds, g.revokeReason])
    }

    private static func approvalRow(_ row: Row, _ db: Database) throws -> ApprovalRecord {
        let id: String = row["id"]
        let decisions = try Row.fetchAll(db, sql: "SELECT * FROM approval_decision WHERE approval_id = ? ORDER BY position",
                                         arguments: [id]).map { d throws in
            guard let verdict = ApproverDecision.Verdict(rawValue: d["verdict"]) else {
                throw ApprovalStoreError(.notAStore, "approvals store: approval \(id) has a decision with an unknown verdict")
            }
            return ApproverDecision(verdict: verdict, approver: d["approver"],
                                    groups: try ColumnJSON.value([String].self, d["approver_groups"], column: "approval_decision.approver_groups"),
                                    reason: d["reason"], at: Date(approvalMilliseconds: d["decided_at"]))
        }
        guard let state = ApprovalState(rawValue: row["state"]) else {
            throw ApprovalStoreError(.notAStore, "approvals store: approval \(id) has an unknown state")
        }
        let exchange: Int64 = row["exchange"]
        let decidedAt: Int64? = row["decided_at"]
        return ApprovalRecord(
            id: id, session: row["session"], exchange: UInt64(bitPattern: exchange), target: row["target"], subject: row["subject"],
            subjectGroups: try ColumnJSON.value([String].self, row["subject_groups"], column: "approval.subject_groups"),
            statement: row["statement"], fingerprint: row["fingerprint"], policy: row["policy"], rule: row["rule"],
            requirement: try ColumnJSON.value(StoredRequirement.self, row["requirement"], column: "approval.requirement").requirement,
            state: state, createdAt: Date(approvalMilliseconds: row["created_at"]), deadline: Date(approvalMilliseconds: row["deadline"]),
            decidedAt: decidedAt.map { Date(approvalMilliseconds: $0) }, outcomeReason: row["outcome_reason"],
            decisions: decisions, openedGrant: row["opened_grant"], reusedGrant: row["reused_grant"])
    }

    private static func grantRow(_ row: Row) throws -> GrantRecord {
        let revokedAt: Int64? = row["revoked_at"]
        return GrantRecord(
            id: row["id"], approvalID: row["approval_id"], subject: row["subject"], target: row["target"], fingerprint: row["fingerprint"],
            policy: row["policy"], rule: row["rule"],
            approverGroups: try ColumnJSON.value([String].self, row["approver_groups"], column: "access_grant.approver_groups"),
            grantedBy: try ColumnJSON.value([String].self, row["granted_by"], column: "access_grant.granted_by"),
            createdAt: Date(approvalMilliseconds: row["created_at"]), expiresAt: Date(approvalMilliseconds: row["expires_at"]),
            revokedBy: row["revoked_by"], revokedAt: revokedAt.map { Date(approvalMilliseconds: $0) }, revokeReason: row["revoke_reason"])
    }

    // MARK: Access off the caller's thread

    private func run<T: Sendable>(_ what: String, _ work: @escaping @Sendable (Database) throws -> T) async throws(ApprovalStoreError) -> T {
        do { return try await pool.write(work) } catch let error as ApprovalStoreError { throw error } catch {
            throw Self.storeError(error, path: path, doing: what)
        }
    }

    private func runRead<T: Sendable>(_ what: String, _ work: @escaping @Sendable (Database) throws -> T) async throws(ApprovalStoreError) -> T {
        do { return try await pool.read(work) } catch let error as ApprovalStoreError { throw error } catch {
            throw Self.storeError(error, path: path, doing: what)
        }
    }

    private static func storeError(_ error: any Error, path: String, doing what: String) -> ApprovalStoreError {
        guard let db = error as? DatabaseError else {
            return ApprovalStoreError(.io, "approvals store \(path): cannot \(what): \(error)")
        }
        let said = db.message ?? "\(db.resultCode)"
        switch db.resultCode.primaryResultCode {
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return ApprovalStoreError(.notAStore, "approvals store \(path): not an approvals database, or damaged (SQLite: \(said)); move it aside to start afresh")
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_READONLY, .SQLITE_AUTH:
            return ApprovalStoreError(.cannotOpen, "approvals store \(path): cannot \(what): the file cannot be opened for writing (SQLite: \(said))")
        default:
            return ApprovalStoreError(.io, "approvals store \(path): cannot \(what) (SQLite: \(said))")
        }
    }
}
