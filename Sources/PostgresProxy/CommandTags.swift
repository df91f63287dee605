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
    static func verb(of tag: String) -> String { String(verbSlice(of: tag)) }

    /// `verb(of:)` without allocating for the tags PostgreSQL sends (ASCII words, one space
    /// apart): the tag cut before its trailing counts. It runs on every CommandComplete, where
    /// splitting and joining the words was the gate's largest single cost on pgbench
    /// select-only (issue 18). Any other tag takes the general path, so the result is the same.
    static func verbSlice(of tag: String) -> Substring {
        let bytes = tag.utf8
        var previousSpace = true  // a leading space is not the plain form
        for b in bytes {
            if b >= 0x80 || (b == 0x20 && previousSpace) { return generalVerb(of: tag)[...] }
            previousSpace = b == 0x20
        }
        if previousSpace { return generalVerb(of: tag)[...] }  // empty, or a trailing space
        // From the end, drop each word of ASCII digits with the space before it.
        var wordEnd = bytes.endIndex
        while true {
            var wordStart = wordEnd
            var digitsOnly = true
            while wordStart > bytes.startIndex {
                let before = bytes.index(before: wordStart)
                let b = bytes[before]
                if b == 0x20 { break }
                if b < 0x30 || b > 0x39 { digitsOnly = false }
                wordStart = before
            }
            guard digitsOnly else { return tag[tag.startIndex..<wordEnd] }
            // A tag of counts alone: nothing is left.
            if wordStart == bytes.startIndex { return tag[tag.startIndex..<tag.startIndex] }
            wordEnd = bytes.index(before: wordStart)
        }
    }

    /// The words split and joined: for tags not in the plain form.
    private static func generalVerb(of tag: String) -> String {
        var words = tag.split(separator: " ")
        while let last = words.last, last.allSatisfy(\.isNumber) { words.removeLast() }
        return words.joined(separator: " ")
    }

    /// True when a statement of `kind` can answer `tag`.
    static func matches(kind: String, tag: String) -> Bool { matches(kind: kind, verb: verbSlice(of: tag)) }

    /// True when a statement of `kind` can answer a tag of this verb (`verbSlice(of:)`).
    static func matches(kind: String, verb: Substring) -> Bool {
        if let prefixes = byKind[kind] {
            return prefixes.contains { p in p.hasSuffix(" ") ? verb.hasPrefix(p) : verb == p || verb.hasPrefix(p + " ") }
        }
        switch kind {
        case "execute", "unknown", "function_call":
            // An EXECUTE the gate could not resolve was decided as an unknown write; unknown kinds likewise.
            return true
        case "other_ddl":
            // CREATE MATERIALIZED VIEW … AS answers SELECT n; no other row tag.
            return verb == "SELECT" || !rowTags.contains(String(verb))
        default:
            // other_utility (DECLARE, CLOSE, DISCARD, CHECKPOINT…): never a row tag.
            return !rowTags.contains(String(verb))
        }
    }
}
