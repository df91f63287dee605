import CPgQuery
import Foundation

/// A parse failure reported by PostgreSQL's own parser (libpg_query).
///
/// The gate denies a statement it cannot parse and returns `message` to the
/// client, so the message is the parser's own wording.
public struct SQLParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The parser's message, e.g. `syntax error at or near "SELEC"`.
    public let message: String
    /// 1-based character position in the query text (PostgreSQL's convention); 0 when unknown.
    public let cursorPosition: Int

    public init(message: String, cursorPosition: Int) {
        self.message = message
        self.cursorPosition = cursorPosition
    }

    public var description: String {
        cursorPosition > 0 ? "\(message) (at position \(cursorPosition))" : message
    }
}

/// Thin, memory-safe wrapper over libpg_query's C API.
///
/// Every C result is copied into Swift values and freed before returning, so
/// no C memory escapes. libpg_query keeps its parser state in thread-local
/// memory contexts, so these functions may be called from any thread.
public enum PgQuery {
    /// The raw JSON parse tree (`{"version":…, "stmts":[…]}`).
    public static func parseJSON(_ sql: String) throws(SQLParseError) -> String {
        try rejectNUL(sql)
        let result = pg_query_parse(sql)
        defer { pg_query_free_parse_result(result) }
        if let error = result.error { throw SQLParseError(error) }
        return result.parse_tree.map { String(cString: $0) } ?? #"{"stmts":[]}"#
    }

    /// The statement fingerprint as a hex string: equal for statements that
    /// differ only in literal values (and in comments/whitespace).
    public static func fingerprint(_ sql: String) throws(SQLParseError) -> String {
        try rejectNUL(sql)
        let result = pg_query_fingerprint(sql)
        defer { pg_query_free_fingerprint_result(result) }
        if let error = result.error { throw SQLParseError(error) }
        return result.fingerprint_str.map { String(cString: $0) } ?? ""
    }

    /// The query text with every literal replaced by `$n` (for recording and search).
    public static func normalize(_ sql: String) throws(SQLParseError) -> String {
        try rejectNUL(sql)
        let result = pg_query_normalize(sql)
        defer { pg_query_free_normalize_result(result) }
        if let error = result.error { throw SQLParseError(error) }
        return result.normalized_query.map { String(cString: $0) } ?? ""
    }

    /// The statements of a query string, split by the real parser (so `;`
    /// inside quotes, dollar quotes and comments does not split).
    public static func split(_ sql: String) throws(SQLParseError) -> [String] {
        try rejectNUL(sql)
        let result = pg_query_split_with_parser(sql)
        defer { pg_query_free_split_result(result) }
        if let error = result.error { throw SQLParseError(error) }
        let bytes = Array(sql.utf8)
        var out: [String] = []
        for i in 0..<Int(result.n_stmts) {
            guard let stmt = result.stmts[i]?.pointee else { continue }
            out.append(slice(bytes, location: Int(stmt.stmt_location), length: Int(stmt.stmt_len)))
        }
        return out
    }

    /// Byte range → text; libpg_query reports UTF-8 byte offsets, and a length
    /// of 0 means "to the end of the string".
    static func slice(_ bytes: [UInt8], location: Int, length: Int) -> String {
        let start = max(0, min(location, bytes.count))
        let end = length > 0 ? min(bytes.count, start + length) : bytes.count
        return String(decoding: bytes[start..<end], as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// C strings end at NUL: the parser would see only the text before it
    /// while the rest might still reach the server, so such text is refused.
    static func rejectNUL(_ sql: String) throws(SQLParseError) {
        if sql.utf8.contains(0) {
            throw SQLParseError(message: "query text contains a NUL byte", cursorPosition: 0)
        }
    }
}

extension SQLParseError {
    init(_ error: UnsafeMutablePointer<PgQueryError>) {
        let e = error.pointee
        self.init(message: e.message.map { String(cString: $0) } ?? "parse error",
                  cursorPosition: Int(e.cursorpos))
    }
}

