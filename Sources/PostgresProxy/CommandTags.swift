/// The command tags PostgreSQL 15 returns for each statement kind the inspector produces
/// (Sources/SQLInspection/StatementKind.swift), for the divergence check: a tag the kind cannot
/// produce means the server ran something other than what the gate decided on.
///
/// Exact for the data-changing tags: INSERT, UPDATE, DELETE, MERGE, COPY and SELECT n (which
/// SELECT INTO, CREATE TABLE AS and CREATE MATERIALIZED VIEW also return) are accepted only for
/// the kinds that return them. Utility and DDL kinds without a list of their own accept any tag
/// but those.
enum CommandTags {
    /// Tags that report rows read or written.
    static let rowTags: Set<String> = ["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "FETCH", "MOVE"]

    /// Each kind's tags, by prefix (the tag's words before any count).
    static let byKind: [String: [String]] = [
        // A data-modifying CTE under a SELECT still answers SELECT n.
        "select": ["SELECT"],
        "insert": ["INSERT"], "update": ["UPDATE"], "delete": ["DELETE"], "merge": ["MERGE"], "copy": ["COPY"],
        // CREATE TABLE AS and SELECT INTO answer SELECT n.
        "create_table": ["CREATE TABLE", "SELECT"],
        "alter_table": ["ALTER "], "drop": ["DROP "], "truncate": ["TRUNCATE TABLE"],
        "grant": ["GRANT"], "revoke": ["REVOKE"], "do": ["DO"], "call": ["CALL"],
        "prepare": ["PREPARE"], "deallocate": ["DEALLOCATE"],
        "set": ["SET"], "reset": ["RESET"], "show": ["SHOW"], "explain": ["EXPLAIN"],
        "begin": ["BEGIN", "START TRANSACTION"],
        // COMMIT of a failed transaction answers ROLLBACK; COMMIT/ROLLBACK AND CHAIN answer the same words.
        "commit": ["COMMIT", "ROLLBACK"], "rollback": ["ROLLBACK"], "savepoint": ["SAVEPOINT", "RELEASE"],
        "listen": ["LISTEN", "UNLISTEN"], "notify": ["NOTIFY"], "vacuum": ["VACUUM"], "analyze": ["ANALYZE"],
        "create_function": ["CREATE FUNCTION", "CREATE PROCEDURE"], "create_index": ["CREATE INDEX"],
        "comment": ["COMMENT"], "lock": ["LOCK TABLE"], "fetch": ["FETCH", "MOVE"],
    ]

    /// The tag's words before its counts: "INSERT 0 1" → "INSERT", "CREATE TABLE" → "CREATE TABLE".
    static func verb(of tag: String) -> String {
        var words = tag.split(separator: " ")
        while let last = words.last, last.allSatisfy(\.isNumber) { words.removeLast() }
        return words.joined(separator: " ")
    }

    /// True when a statement of `kind` can answer `tag`.
    static func matches(kind: String, tag: String) -> Bool {
        let verb = verb(of: tag)
        if let prefixes = byKind[kind] {
            return prefixes.contains { p in p.hasSuffix(" ") ? verb.hasPrefix(p) : verb == p || verb.hasPrefix(p + " ") }
        }
        switch kind {
        case "execute", "unknown", "function_call":
            // An EXECUTE the gate could not resolve was decided as an unknown write; unknown kinds likewise.
            return true
        case "other_ddl":
            // CREATE MATERIALIZED VIEW … AS answers SELECT n; no other row tag.
            return verb == "SELECT" || !rowTags.contains(verb)
        default:
            // other_utility (DECLARE, CLOSE, DISCARD, CHECKPOINT…): never a row tag.
            return !rowTags.contains(verb)
        }
    }
}
