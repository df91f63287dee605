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
        // Found by the second review against PostgreSQL 15's volatile pg_catalog functions
        // (SideEffectFunctionsTests checks that list against `known` and `reviewedHarmless`):
        // index maintenance that writes,
        "brin_summarize_new_values", "brin_summarize_range", "brin_desummarize_range", "gin_clean_pending_list",
        // statistics, OIDs, replication origins and upgrade state,
        "pg_stat_reset_subscription_stats", "pg_nextoid", "pg_stop_making_pinned_objects",
        "pg_replication_origin_session_reset", "pg_replication_origin_xact_setup", "pg_replication_origin_xact_reset",
        "pg_extension_config_dump", "pg_export_snapshot",
        "binary_upgrade_create_empty_extension", "binary_upgrade_set_missing_value",
        "binary_upgrade_set_next_array_pg_type_oid", "binary_upgrade_set_next_heap_pg_class_oid",
        "binary_upgrade_set_next_heap_relfilenode", "binary_upgrade_set_next_index_pg_class_oid",
        "binary_upgrade_set_next_index_relfilenode", "binary_upgrade_set_next_multirange_array_pg_type_oid",
        "binary_upgrade_set_next_multirange_pg_type_oid", "binary_upgrade_set_next_pg_authid_oid",
        "binary_upgrade_set_next_pg_enum_oid", "binary_upgrade_set_next_pg_tablespace_oid",
        "binary_upgrade_set_next_pg_type_oid", "binary_upgrade_set_next_toast_pg_class_oid",
        "binary_upgrade_set_next_toast_relfilenode", "binary_upgrade_set_record_init_privs",
        // server files and configuration read outside any relation a rule can see,
        "pg_read_file_old", "pg_rotate_logfile_old", "pg_current_logfile", "pg_hba_file_rules",
        "pg_ident_file_mappings", "pg_show_all_file_settings", "pg_ls_logicalmapdir", "pg_ls_logicalsnapdir",
        "pg_ls_replslotdir",
        // large objects (data outside relations) and logical decoding (every table's changes),
        "lo_get", "loread", "lo_close", "lo_lseek", "lo_lseek64", "lo_tell", "lo_tell64",
        "pg_logical_slot_peek_changes", "pg_logical_slot_peek_binary_changes",
    ]).union(runsQueries)  // and the dynamic SQL helpers, which run arbitrary text or read whole tables

    /// Built-ins that run SQL given as text, or read whole tables or schemas, inside another
    /// statement: what they return cannot be traced to columns, so masking treats their results
    /// as it treats results it cannot trace (every computed column covered). Derived from the
    /// catalog by scripts/gen-builtin-functions (`QueryTextFunctions`), not kept by hand.
    public static let runsQueries: Set<String> = QueryTextFunctions.names

    /// Volatile pg_catalog functions reviewed as changing nothing and reading no data outside the
    /// relations a rule sees (clocks, random numbers, sizes, session and server status). Every
    /// other volatile built-in must be in `known`: SideEffectFunctionsTests checks the live
    /// catalog, so a new PostgreSQL's volatile function fails the tests until it is classified.
    public static let reviewedHarmless: Set<String> = [
        "amvalidate", "bernoulli", "system", "clock_timestamp", "timeofday", "random", "setseed", "gen_random_uuid",
        "current_query", "currtid2", "currval", "lastval", "dsnowball_init", "dsnowball_lexize", "plpgsql_validator",
        "plpgsql_inline_handler",  // takes `internal`: SQL cannot call it
        "pg_blocking_pids", "pg_safe_snapshot_blocking_pids", "pg_isolation_test_session_is_blocked",
        "pg_collation_actual_version", "pg_database_collation_actual_version",
        "pg_control_checkpoint", "pg_control_init", "pg_control_recovery", "pg_control_system",
        "pg_current_wal_flush_lsn", "pg_current_wal_insert_lsn", "pg_current_wal_lsn", "pg_last_wal_receive_lsn",
        "pg_last_wal_replay_lsn", "pg_last_xact_replay_timestamp", "pg_last_committed_xact",
        "pg_database_size", "pg_indexes_size", "pg_relation_size", "pg_table_size", "pg_tablespace_size",
        "pg_total_relation_size", "pg_get_backend_memory_contexts", "pg_get_multixact_members",
        "pg_get_shmem_allocations", "pg_get_wal_replay_pause_state", "pg_get_wal_resource_managers",
        "pg_is_in_recovery", "pg_is_wal_replay_paused", "pg_jit_available", "pg_lock_status",
        "pg_notification_queue_usage", "pg_partition_ancestors", "pg_partition_tree", "pg_prepared_xact",
        "pg_replication_origin_progress", "pg_replication_origin_session_is_setup",
        "pg_replication_origin_session_progress", "pg_show_replication_origin_status", "pg_sequence_last_value",
        "pg_sleep", "pg_sleep_for", "pg_sleep_until", "pg_stat_clear_snapshot", "pg_stat_force_next_flush",
        "pg_stat_get_recovery_prefetch", "pg_stat_have_stats", "pg_xact_commit_timestamp",
        "pg_xact_commit_timestamp_origin", "pg_xact_status", "txid_status",
        "pg_stat_get_xact_blocks_fetched", "pg_stat_get_xact_blocks_hit", "pg_stat_get_xact_function_calls",
        "pg_stat_get_xact_function_self_time", "pg_stat_get_xact_function_total_time", "pg_stat_get_xact_numscans",
        "pg_stat_get_xact_tuples_deleted", "pg_stat_get_xact_tuples_fetched", "pg_stat_get_xact_tuples_hot_updated",
        "pg_stat_get_xact_tuples_inserted", "pg_stat_get_xact_tuples_returned", "pg_stat_get_xact_tuples_updated",
    ]

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
