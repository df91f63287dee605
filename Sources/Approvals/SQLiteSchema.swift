import GRDB

/// The SQLite store's tables, as GRDB migrations (applied in order, once each, recorded in
/// `grdb_migrations`). Times are whole milliseconds since 1970 (UTC); lists are JSON arrays.
enum SQLiteSchema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: approvals, decisions, grants, admin audit") { db in
            try db.execute(sql: """
                CREATE TABLE approval (
                    id TEXT PRIMARY KEY NOT NULL,
                    session TEXT NOT NULL,
                    exchange INTEGER NOT NULL,
                    target TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    subject_groups TEXT NOT NULL,
                    statement TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    policy TEXT NOT NULL,
                    rule TEXT NOT NULL,
                    requirement TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired', 'withdrawn', 'abandoned')),
                    created_at INTEGER NOT NULL,
                    deadline INTEGER NOT NULL,
                    decided_at INTEGER,
                    outcome_reason TEXT NOT NULL DEFAULT '',
                    opened_grant TEXT,
                    reused_grant TEXT
                );
                CREATE INDEX approval_by_state ON approval(state, created_at);
                CREATE TABLE approval_decision (
                    approval_id TEXT NOT NULL REFERENCES approval(id),
                    position INTEGER NOT NULL,
                    verdict TEXT NOT NULL CHECK (verdict IN ('approve', 'deny')),
                    approver TEXT NOT NULL,
                    approver_groups TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    decided_at INTEGER NOT NULL,
                    PRIMARY KEY (approval_id, position)
                );
                CREATE TABLE access_grant (
                    id TEXT PRIMARY KEY NOT NULL,
                    approval_id TEXT NOT NULL REFERENCES approval(id),
                    subject TEXT NOT NULL,
                    target TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    policy TEXT NOT NULL,
                    rule TEXT NOT NULL,
                    approver_groups TEXT NOT NULL,
                    granted_by TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    revoked_by TEXT,
                    revoked_at INTEGER,
                    revoke_reason TEXT
                );
                CREATE INDEX access_grant_lookup ON access_grant(subject, target, fingerprint, expires_at);
                CREATE TABLE admin_audit (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    actor_groups TEXT NOT NULL,
                    action TEXT NOT NULL,
                    object TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    outcome TEXT NOT NULL
                );
                -- The audit is evidence: appended, never changed (a later issue exports it).
                CREATE TRIGGER admin_audit_no_update BEFORE UPDATE ON admin_audit
                    BEGIN SELECT RAISE(ABORT, 'the admin audit is append-only'); END;
                CREATE TRIGGER admin_audit_no_delete BEFORE DELETE ON admin_audit
                    BEGIN SELECT RAISE(ABORT, 'the admin audit is append-only'); END;
                """)
        }
        return m
    }
}
