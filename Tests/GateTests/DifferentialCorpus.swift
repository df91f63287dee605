import Foundation

/// The differential test's corpus: statements that write, hidden every way the security review
/// found or the gate's own tests use (data-modifying CTEs, EXPLAIN with repeated and spelled-out
/// options, string literals a lexing setting reads differently), run after every attempt to
/// change how the server lexes (SET, set_config, RESET, startup parameters and options, client
/// encodings whose multi-byte characters end in a backslash), one Query at a time and pipelined.
/// Every case runs under a policy that allows exactly what the gate calls read-only, so a write
/// the database logs for any case is a statement the gate misread.
struct DifferentialCase: Encodable {
    var name: String
    var startup: [String: String] = [:]
    var steps: [String]
    var pipelined = false

    init(_ name: String, startup: [String: String] = [:], steps: [[UInt8]], pipelined: Bool = false) {
        self.name = name
        self.startup = startup
        self.steps = steps.map { $0.map { String(format: "%02x", $0) }.joined() }
        self.pipelined = pipelined
    }
}

enum DifferentialCorpus {
    /// Statements that change the database (each is logged by a trigger or the event trigger).
    static let writes = [
        "DELETE FROM diff.refunds WHERE id = 999",
        "UPDATE diff.items SET price = price WHERE id = 999",
        "INSERT INTO diff.items SELECT * FROM diff.items WHERE false",
        "MERGE INTO diff.items t USING (SELECT 999 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE",
    ]
    static let ddl = ["CREATE TEMP TABLE sneaky (i int)", "CREATE TABLE diff.sneaky (i int)", "COMMENT ON TABLE diff.items IS 'changed'",
                      "SELECT * INTO diff.sneaky_copy FROM diff.items", "CREATE TABLE diff.sneaky_as AS SELECT 1 AS one"]

    /// Reads from the project's tests, moved to the scratch schema: these must keep working.
    static let reads = [
        "SELECT count(*) FROM diff.items",
        "SELECT id, name FROM diff.items ORDER BY id LIMIT 2",
        "WITH r AS (SELECT * FROM diff.refunds) SELECT sum(amount) FROM r",
        "SELECT i.name, r.amount FROM diff.items i JOIN diff.refunds r ON r.item = i.id",
        "EXPLAIN SELECT * FROM diff.items",
        "EXPLAIN (ANALYZE) SELECT * FROM diff.items",
        "TABLE diff.items",
        "VALUES (1, 'a'), (2, 'b')",
        "SELECT 'it''s', E'tab\\there', $$dollar$$, U&'\\0041'",
        "SHOW standard_conforming_strings",
    ]

    /// A data-changing CTE around each DML write: a SELECT at the top.
    static func hidden(_ w: String) -> String { "WITH d AS (\(w) RETURNING *) SELECT count(*) FROM d" }

    /// EXPLAIN options PostgreSQL reads the last of, with every boolean spelling it accepts.
    static let explainOptions = [
        "(ANALYZE false, ANALYZE true)", "(ANALYZE off, ANALYZE on)", "(ANALYZE 0, ANALYZE 1)", "(ANALYZE false, ANALYZE)",
        "(analyze FALSE, \"analyze\" TRUE)", "(ANALYZE 'false', ANALYZE 'true')", "(ANALYZE, ANALYZE false, ANALYZE)",
        "(COSTS off, ANALYZE true)", "(ANALYZE FaLsE, ANALYZE oN)", "(ANALYZE false, VERBOSE, ANALYZE 1, BUFFERS)",
        "(ANALYZE true)", "(ANALYZE)", "(ANALYZE on)", "(ANALYZE 1)", "(ANALYZE 'on')",
    ]

    /// String literals that one lexing setting reads as one literal and another as a literal and a write after it.
    static func disguises(_ w: String) -> [String] {
        [
            "SELECT 'a\\' , ' ; \(w); -- '",
            "SELECT 'a\\' ; \(w); -- '",
            "SELECT E'\\'' ; \(w); -- '",
            "SELECT 'x' /* ' ; */ ; \(w); -- '",
            "SELECT $q$ \\' $q$ ; \(w); -- '",
        ]
    }

    /// Ways to turn standard_conforming_strings (or a sibling) off inside a session.
    static let sessionSettings = [
        "SET standard_conforming_strings = off", "SET standard_conforming_strings TO 'off'", "SET SESSION standard_conforming_strings = false",
        "set STANDARD_CONFORMING_STRINGS = OFF", "SET \"standard_conforming_strings\" = 0",
        "SELECT set_config('standard_conforming_strings', 'off', false)",
        "SELECT set_config('standard_conforming_strings', 'of' || 'f', false)",
        "SELECT set_config(lower('STANDARD_CONFORMING_STRINGS'), 'off', false)",
        "SELECT set_config('standard_conforming_strings', 'off', false) FROM diff.items LIMIT 1",
        "SET backslash_quote = on", "SET escape_string_warning = off",
        "BEGIN; SET LOCAL standard_conforming_strings = off",
        "RESET standard_conforming_strings", "RESET ALL",
    ]

    /// Startup parameters that set them at login.
    static let startups: [[String: String]] = [
        ["options": "-c standard_conforming_strings=off"], ["options": "-cstandard_conforming_strings=off"],
        ["options": "--standard-conforming-strings=off"], ["options": "-c standard_conforming_strings=off -c backslash_quote=on"],
        ["options": "-c Standard_Conforming_Strings=OFF"], ["standard_conforming_strings": "off"],
        ["options": "-c client_encoding=SJIS"], ["client_encoding": "SJIS"], ["client_encoding": "BIG5"],
    ]

    /// Client encodings whose multi-byte characters can end in 0x5C (a backslash in ASCII), with bytes that are
    /// valid UTF-8 ending in a backslash and, read in that encoding, end in such a character: `Á\` (C3 81 5C) is
    /// a katakana and one two-byte character in SJIS; `两\` (E4 B8 A4 5C) is two two-byte characters in BIG5,
    /// GBK and GB18030. UHC's characters never end in 0x5C: a control.
    static let encodings: [(String, [UInt8])] = [("SJIS", [0xC3, 0x81, 0x5C]), ("BIG5", [0xE4, 0xB8, 0xA4, 0x5C]),
                                                  ("GBK", [0xE4, 0xB8, 0xA4, 0x5C]), ("GB18030", [0xE4, 0xB8, 0xA4, 0x5C]),
                                                  ("UHC", [0xE4, 0xB8, 0xA4, 0x5C])]

    /// Code the text names only by a name PostgreSQL resolves on the search path, or runs inside a
    /// view (second review): the fixtures in `diff_review17` (scripts/differential-db.sql) write
    /// through functions and operators of built-in names (`length(int)`, `lower(text)`, `+`, `=`),
    /// an operator of a new name (`#~#`), and views that call a writing function.
    static let routines: [(startup: [String: String], sql: String)] = [
        (["options": "-c search_path=diff_review17"], "SELECT length(5)"),
        (["options": "-c search_path=diff_review17"], "SELECT 1 #~# 2"),
        (["options": "-c search_path=diff_review17"], "SELECT count(*) FROM diff.items WHERE id #~# 1 > 0"),
        ([:], "SELECT 1 OPERATOR(diff_review17.#~#) 2"),
        (["search_path": "diff_review17, public"], "SELECT length(5) FROM diff.items"),
        (["options": "-c search_path=diff_review17,pg_catalog"], "SELECT lower('x')"),
        (["options": "-c search_path=diff_review17,pg_catalog"], "SELECT 1 + 2"),
        (["options": "-c search_path=diff_review17,pg_catalog"], "SELECT CASE 1 WHEN 2 THEN 3 END"),
        (["options": "-c search_path=diff_review17,pg_catalog"], "SELECT id FROM diff.items WHERE id BETWEEN 1 AND 2"),
        (["options": "-c search_path=diff_review17,pg_catalog"], "SELECT i.id FROM diff.items i JOIN diff.refunds r USING (id)"),
        (["options": "-c search_path=diff_review17"], "SELECT i.writes_row FROM diff.items i"),
        (["options": "-c search_path=diff_review17"], "SELECT (i).writes_row FROM diff.items i"),
        (["options": "-c search_path=diff_review17"], "SELECT items.writes_row FROM diff.items"),
        ([:], "SELECT * FROM diff_review17.writing_view"),
        ([:], "SELECT count(*) FROM diff_review17.view_over_view"),
        (["options": "-c search_path=diff_review17"], "SELECT * FROM view_over_view"),
        ([:], "EXPLAIN ANALYZE SELECT * FROM diff_review17.writing_view"),
        ([:], "COPY (SELECT * FROM diff_review17.writing_view) TO STDOUT"),
    ]

    /// Quoting and lexing the third review tried (all held): Unicode-escaped strings and identifiers
    /// with and without UESCAPE, dollar quotes with tags inside other tags, nested comments, a line
    /// comment at the very end, E'' escapes, identifiers that fold or not, `OPERATOR(…)`, each around
    /// a write that must be seen (`w` is the write; the text after it may hide it from a wrong lexer).
    static func quotings(_ w: String) -> [String] {
        [
            "SELECT U&'\\0027' ; \(w)", "SELECT U&'!0027' UESCAPE '!' ; \(w)", "SELECT U&'a\\\\' ; \(w); -- '",
            "SELECT U&'a' UESCAPE ';' ; \(w); -- '", "SELECT U&\"a\\0022 ; \(w); --\"",
            "DELETE FROM U&\"d\\0069ff\".refunds WHERE id = 999", "DELETE FROM U&\"d!0069ff\" UESCAPE '!'.refunds WHERE id = 999",
            "SELECT $a$ $b$ $a$ ; \(w); -- $b$", "SELECT $$ $a$ $$; \(w)", "SELECT $a$ $b$ $a$, $b$ ; \(w); $b$",
            "SELECT 1 /* /* */ ; \(w); /* */ */", "SELECT 1 /* */ ; \(w) /* /* */", "SELECT 1 -- \n; \(w)", "SELECT 1 ; \(w) --",
            "SELECT E'\\047' ; \(w); -- '", "SELECT E'\\u0027' ; \(w); -- '", "SELECT E'\\x27' ; \(w); -- '", "SELECT e'\\\\' ; \(w); -- '",
            "SELECT x'27' ; \(w); -- '", "SELECT 1 AS \"a;\"; \(w)", "SELECT 1 AS \"a\"\" ; \(w); --\"",
            "SELECT U&\"d\\0069ff_review17\".writes(1)", "SELECT \"DIFF_REVIEW17\".writes(1)", "SELECT \"diff_review17\".\"writes\"(1)",
            "SELECT 1 OPERATOR(U&\"d\\0069ff_review17\".#~#) 2", "WITH \"D\" AS (\(w) RETURNING *) SELECT * FROM \"D\"",
            "SELECT U&\"pg_adv\\0069sory_lock\"(4217)", "SELECT \"pg_catalog\".\"pg_advisory_lock\"(4217)",
        ]
    }

    static func build() -> [DifferentialCase] {
        var cases: [DifferentialCase] = []
        func add(_ name: String, startup: [String: String] = [:], _ steps: [String], pipelined: Bool = false) {
            cases.append(DifferentialCase("diff-\(cases.count)-\(name)", startup: startup, steps: steps.map { Array($0.utf8) }, pipelined: pipelined))
        }
        for (i, r) in reads.enumerated() { add("read\(i)", [r]) }
        for (i, w) in (writes + ddl).enumerated() { add("write\(i)", [w]) }
        for (i, w) in writes.enumerated() {
            add("cte\(i)", [hidden(w)])
            add("copy\(i)", ["COPY (\(w) RETURNING *) TO STDOUT"])
            add("copycte\(i)", ["COPY (\(hidden(w))) TO STDOUT (FORMAT csv, FORMAT text)"])
            for (j, o) in explainOptions.enumerated() {
                add("explain\(i).\(j)", ["EXPLAIN \(o) \(hidden(w))"])
                if i == 0 { add("explain-plain\(j)", ["EXPLAIN \(o) \(w)"]) }
            }
        }
        for (k, r) in routines.enumerated() {
            add("routine\(k)", startup: r.startup, [r.sql])
            if r.sql.hasPrefix("SELECT") { add("routine\(k).prepared", startup: r.startup, ["PREPARE routine\(k) AS \(r.sql)", "EXECUTE routine\(k)"]) }
        }
        for (j, o) in explainOptions.enumerated() {
            add("explain-fn\(j)", ["EXPLAIN \(o) SELECT set_config('search_path', 'diff', false), pg_advisory_lock(42), pg_notify('c', 'x')"])
        }
        add("explain-legacy", ["EXPLAIN ANALYZE \(hidden(writes[0]))"])
        add("explain-legacy-verbose", ["EXPLAIN ANALYZE VERBOSE \(hidden(writes[0]))"])
        let w = writes[0]
        for (k, d) in disguises(w).enumerated() { add("disguise\(k)", [d]) }
        for (k, q) in quotings(w).enumerated() { add("quoting\(k)", [q]) }
        for (s, setting) in sessionSettings.enumerated() {
            for (k, d) in disguises(w).enumerated() {
                add("set\(s).disguise\(k)", [setting, d])
                add("set\(s).disguise\(k).pipelined", [setting, d], pipelined: true)
            }
        }
        for (s, startup) in startups.enumerated() {
            for (k, d) in disguises(w).enumerated() { add("startup\(s).disguise\(k)", startup: startup, [d]) }
        }
        for (e, (encoding, character)) in encodings.enumerated() {
            let disguise = Array("SELECT E'".utf8) + character + Array("' ; \(w); -- '".utf8)
            for (m, change) in ["SET client_encoding = '\(encoding)'", "SET NAMES '\(encoding)'",
                                "SELECT set_config('client_encoding', '\(encoding)', false)"].enumerated() {
                for pipelined in [false, true] {
                    cases.append(DifferentialCase("diff-\(cases.count)-encoding\(e).\(m)\(pipelined ? ".pipelined" : "")",
                                                  steps: [Array(change.utf8), disguise], pipelined: pipelined))
                }
            }
            cases.append(DifferentialCase("diff-\(cases.count)-encoding\(e).startup", startup: ["client_encoding": encoding], steps: [disguise]))
        }
        return cases
    }
}
