/// The mapping from PostgreSQL parse-node names to the lowercase statement
/// kinds policies match on.
///
/// | kind | PostgreSQL node(s) |
/// |---|---|
/// | select | SelectStmt (incl. VALUES, TABLE, UNION, SELECT INTO) |
/// | insert, update, delete, merge, copy | InsertStmt, UpdateStmt, DeleteStmt, MergeStmt, CopyStmt |
/// | create_table | CreateStmt, CreateTableAsStmt (table; a materialized view is other_ddl) |
/// | alter_table | AlterTableStmt (ALTER TABLE/INDEX/VIEW/SEQUENCE… all parse to it) |
/// | drop | DropStmt (any object type) |
/// | truncate, comment, lock | TruncateStmt, CommentStmt, LockStmt |
/// | grant, revoke | GrantStmt, GrantRoleStmt by `is_grant` |
/// | do, call | DoStmt, CallStmt |
/// | prepare, execute, deallocate | PrepareStmt, ExecuteStmt, DeallocateStmt |
/// | set, reset, show | VariableSetStmt (RESET and RESET ALL → reset), VariableShowStmt |
/// | explain | ExplainStmt |
/// | begin, commit, rollback, savepoint | TransactionStmt: BEGIN/START; COMMIT; ROLLBACK and ROLLBACK TO; SAVEPOINT and RELEASE |
/// | listen, notify | ListenStmt and UnlistenStmt; NotifyStmt |
/// | vacuum, analyze | VacuumStmt by `is_vacuumcmd` |
/// | create_function, create_index | CreateFunctionStmt (functions and procedures), IndexStmt |
/// | other_ddl | every other CREATE/ALTER/DROP-like node in `otherDDL` |
/// | other_utility | `otherUtility` nodes, DeclareCursorStmt, two-phase commit statements |
/// | unknown | any node not listed (a newer grammar's node): a policy should deny it |
public enum StatementKind {
    /// Kinds that change data, schema or privileges by themselves.
    public static let writingKinds: Set<String> = [
        "insert", "update", "delete", "merge", "create_table", "alter_table", "drop",
        "truncate", "grant", "revoke", "do", "call", "create_function", "create_index",
        "comment", "lock", "vacuum", "analyze", "other_ddl", "unknown",
    ]

    static let direct: [String: String] = [
        "SelectStmt": "select", "InsertStmt": "insert", "UpdateStmt": "update",
        "DeleteStmt": "delete", "MergeStmt": "merge", "CopyStmt": "copy",
        "CreateStmt": "create_table", "AlterTableStmt": "alter_table", "DropStmt": "drop",
        "TruncateStmt": "truncate", "DoStmt": "do", "CallStmt": "call",
        "PrepareStmt": "prepare", "ExecuteStmt": "execute", "DeallocateStmt": "deallocate",
        "VariableShowStmt": "show", "ExplainStmt": "explain", "ListenStmt": "listen",
        "UnlistenStmt": "listen", "NotifyStmt": "notify", "CreateFunctionStmt": "create_function",
        "IndexStmt": "create_index", "CommentStmt": "comment", "LockStmt": "lock",
        "DeclareCursorStmt": "other_utility", "FetchStmt": "fetch",
    ]

    /// DDL nodes without a kind of their own.
    public static let otherDDL: Set<String> = [
        "AlterCollationStmt", "AlterDatabaseRefreshCollStmt", "AlterDatabaseSetStmt",
        "AlterDatabaseStmt", "AlterDefaultPrivilegesStmt", "AlterDomainStmt", "AlterEnumStmt",
        "AlterEventTrigStmt", "AlterExtensionContentsStmt", "AlterExtensionStmt", "AlterFdwStmt",
        "AlterForeignServerStmt", "AlterFunctionStmt", "AlterObjectDependsStmt",
        "AlterObjectSchemaStmt", "AlterOpFamilyStmt", "AlterOperatorStmt", "AlterOwnerStmt",
        "AlterPolicyStmt", "AlterPublicationStmt", "AlterRoleSetStmt", "AlterRoleStmt",
        "AlterSeqStmt", "AlterStatsStmt", "AlterSubscriptionStmt", "AlterSystemStmt",
        "AlterTSConfigurationStmt", "AlterTSDictionaryStmt", "AlterTableMoveAllStmt",
        "AlterTableSpaceOptionsStmt", "AlterTypeStmt", "AlterUserMappingStmt", "ClusterStmt",
        "CompositeTypeStmt", "CreateAmStmt", "CreateCastStmt", "CreateConversionStmt",
        "CreateDomainStmt", "CreateEnumStmt", "CreateEventTrigStmt", "CreateExtensionStmt",
        "CreateFdwStmt", "CreateForeignServerStmt", "CreateForeignTableStmt",
        "CreateOpClassStmt", "CreateOpFamilyStmt", "CreatePLangStmt", "CreatePolicyStmt",
        "CreatePublicationStmt", "CreateRangeStmt", "CreateRoleStmt", "CreateSchemaStmt",
        "CreateSeqStmt", "CreateStatsStmt", "CreateSubscriptionStmt", "CreateTableSpaceStmt",
        "CreateTransformStmt", "CreateTrigStmt", "CreateUserMappingStmt", "CreatedbStmt",
        "DefineStmt", "DropOwnedStmt", "DropRoleStmt", "DropSubscriptionStmt",
        "DropTableSpaceStmt", "DropUserMappingStmt", "DropdbStmt", "ImportForeignSchemaStmt",
        "ReassignOwnedStmt", "RefreshMatViewStmt", "ReindexStmt", "RenameStmt", "RuleStmt",
        "SecLabelStmt", "ViewStmt", "AlterCollationStmt",
    ]

    /// Utility nodes without a kind of their own.
    public static let otherUtility: Set<String> = [
        "CheckPointStmt", "DiscardStmt", "LoadStmt", "ClosePortalStmt",
        "ConstraintsSetStmt",
    ]

    /// The kind of a top-level statement node.
    static func of(node: String, body: JSONObject) -> String {
        switch node {
        case "VariableSetStmt":
            let k = body["kind"]?.string ?? ""
            return k == "VAR_RESET" || k == "VAR_RESET_ALL" ? "reset" : "set"
        case "GrantStmt", "GrantRoleStmt":
            return (body["is_grant"]?.boolean ?? false) ? "grant" : "revoke"
        case "VacuumStmt":
            return (body["is_vacuumcmd"]?.boolean ?? false) ? "vacuum" : "analyze"
        case "CreateTableAsStmt":
            return body["objtype"]?.string == "OBJECT_MATVIEW" ? "other_ddl" : "create_table"
        case "TransactionStmt":
            switch body["kind"]?.string ?? "" {
            case "TRANS_STMT_BEGIN", "TRANS_STMT_START": return "begin"
            case "TRANS_STMT_COMMIT": return "commit"
            case "TRANS_STMT_ROLLBACK", "TRANS_STMT_ROLLBACK_TO": return "rollback"
            case "TRANS_STMT_SAVEPOINT", "TRANS_STMT_RELEASE": return "savepoint"
            default: return "other_utility"  // two-phase commit
            }
        default:
            if let k = direct[node] { return k }
            if otherDDL.contains(node) { return "other_ddl" }
            if otherUtility.contains(node) { return "other_utility" }
            return "unknown"
        }
    }
}
