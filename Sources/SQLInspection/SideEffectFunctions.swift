/// Functions that change state, reach outside the database, or read server
/// files, so that calling one inside an otherwise read-only SELECT makes the
/// statement a write.
///
/// Matching is on the function's base name, lowercased, whatever schema was
/// written (a same-named user function is flagged too: false positives deny,
/// false negatives would allow). To extend the list, add the lowercased name
/// below with the reason in a comment; unknown functions are not flagged here,
/// and a policy decides about them from `StatementFacts.functions`.
public enum SideEffectFunctions {
    public static let known: Set<String> = Set([
        // Other sessions and the server process.
        "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
        "pg_promote", "pg_log_backend_memory_contexts",
        // WAL, backups, replication.
        "pg_switch_wal", "pg_create_restore_point", "pg_backup_start", "pg_backup_stop",
        "pg_start_backup", "pg_stop_backup", "pg_wal_replay_pause", "pg_wal_replay_resume",
        "pg_create_physical_replication_slot", "pg_create_logical_replication_slot",
        "pg_drop_replication_slot", "pg_copy_physical_replication_slot",
        "pg_copy_logical_replication_slot", "pg_replication_slot_advance",
        "pg_logical_slot_get_changes", "pg_logical_slot_get_binary_changes",
        "pg_logical_emit_message", "pg_replication_origin_create", "pg_replication_origin_drop",
        "pg_replication_origin_session_setup", "pg_replication_origin_advance",
        // Server files and large objects (copy-like: move data in or out of the server).
        "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_ls_logdir",
        "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_file_write",
        "pg_file_rename", "pg_file_unlink", "pg_file_sync",
        "lo_import", "lo_export", "lo_unlink", "lo_create", "lo_creat", "lo_from_bytea",
        "lo_put", "lo_truncate", "lo_truncate64", "lowrite", "lo_open",
        // Other databases and servers.
        "dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_send_query",
        "dblink_open", "dblink_fetch",
        // Sequences and transaction ids.
        "nextval", "setval", "txid_current", "pg_current_xact_id",
        // Settings (also reported as a `Setting`).
        "set_config",
        // Notifications.
        "pg_notify",
        // Advisory locks.
        "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock",
        "pg_try_advisory_lock_shared", "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared",
        "pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared",
        "pg_advisory_unlock", "pg_advisory_unlock_shared", "pg_advisory_unlock_all",
        // Statistics and caches reset.
        "pg_stat_reset", "pg_stat_reset_shared", "pg_stat_reset_single_table_counters",
        "pg_stat_reset_single_function_counters", "pg_stat_reset_slru",
        "pg_stat_reset_replication_slot", "pg_stat_statements_reset",
        // Import/ownership helpers.
        "pg_import_system_collations",
    ]).union(runsQueries)  // and the dynamic SQL helpers, which run arbitrary text or read whole tables

    /// Built-ins that run SQL given as text, or read whole tables or schemas, inside another
    /// statement: what they return cannot be traced to columns, so masking treats their results
    /// as it treats results it cannot trace (every computed column covered). Derived from the
    /// catalog by scripts/gen-builtin-functions (`QueryTextFunctions`), not kept by hand.
    public static let runsQueries: Set<String> = QueryTextFunctions.names

    /// True when `name` (possibly `schema.name`, any case) is a known side-effect function.
    public static func isKnown(_ name: String) -> Bool {
        known.contains(baseName(name).lowercased())
    }

    /// True when `name` (possibly `schema.name`, as the parser gives it) runs SQL from text.
    public static func runsQuery(_ name: String) -> Bool {
        runsQueries.contains(baseName(name))
    }

    static func baseName(_ name: String) -> String {
        name.split(separator: ".").last.map(String.init) ?? name
    }
}
