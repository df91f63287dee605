import Testing
import SQLInspection

/// Options read as PostgreSQL 15 reads them (`ExplainQuery`, `ProcessCopyOptions`,
/// `defGetBoolean`): the last of a repeated EXPLAIN option wins, a repeated COPY option and
/// anything the gate cannot read are refused, and query-text functions are side effects.
@Suite struct OptionReadingTests {
    func facts(_ sql: String) throws -> StatementFacts {
        try #require(try SQLInspector.statementFacts(sql).first)
    }

    func refusal(_ sql: String) -> String? {
        do throws(SQLParseError) { _ = try SQLInspector.statementFacts(sql); return nil } catch { return error.message }
    }

    let delete = "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"

    @Test func explainTakesTheLastAnalyze() throws {
        #expect(try facts("EXPLAIN (ANALYZE false, ANALYZE true) \(delete)").writes)
        #expect(try !facts("EXPLAIN (ANALYZE true, ANALYZE false) \(delete)").writes)
        #expect(try facts("EXPLAIN (ANALYZE off, VERBOSE, ANALYZE) \(delete)").writes)
        #expect(try facts("EXPLAIN ANALYZE VERBOSE \(delete)").writes)
    }

    @Test func explainBooleansAreDefGetBoolean() throws {
        for on in ["", " true", " TRUE", " True", " on", " ON", " 1", " 'on'", " 'TrUe'"] {
            #expect(try facts("EXPLAIN (ANALYZE\(on)) \(delete)").writes, "ANALYZE\(on)")
        }
        for off in [" false", " FALSE", " off", " OFF", " 0", " 'off'", " 'False'"] {
            #expect(try !facts("EXPLAIN (ANALYZE\(off)) \(delete)").writes, "ANALYZE\(off)")
        }
        // PostgreSQL rejects these; the gate refuses them with what it could not read.
        // libpg_query's JSON gives -1 as it gives 0; PostgreSQL rejects -1, so reading it as false runs nothing.
        #expect(try !facts("EXPLAIN (ANALYZE -1) \(delete)").writes)
        #expect(refusal("COPY t TO STDOUT (FORMAT csv, DELIMITER -1)")?.contains("'delimiter'") == true)
        for bad in [" 2", " 1.0", " '1'", " yes", " 'no'", " maybe"] {
            let message = refusal("EXPLAIN (ANALYZE\(bad)) \(delete)")
            #expect(message?.hasPrefix("EXPLAIN option 'analyze' has a value the gate cannot read") == true, "ANALYZE\(bad): \(message ?? "accepted")")
        }
        #expect(refusal("EXPLAIN (VERBOSE maybe) SELECT 1")?.contains("'verbose'") == true)
        #expect(refusal("EXPLAIN (FORMAT csv) SELECT 1")?.contains("'format'") == true)
        #expect(try !facts("EXPLAIN (FORMAT json, COSTS off, BUFFERS, SETTINGS on, SUMMARY, TIMING false, WAL false) SELECT 1").writes)
        #expect(refusal("EXPLAIN (GENERIC_PLAN) SELECT 1")?.contains("not one PostgreSQL 15 knows") == true, "PostgreSQL 16")
        #expect(try facts("EXPLAIN (ANALYSE false, ANALYSE) \(delete)").writes, "ANALYSE is the grammar's other spelling")
        #expect(refusal("EXPLAIN (\"ANALYZE\") \(delete)") != nil, "a quoted name keeps its case: unknown to the server")
    }

    @Test func plainExplainKeepsTheSideEffectsOfFunctionsThePlannerMayCall() throws {
        let s = try facts("EXPLAIN (VERBOSE) SELECT table_to_xml('pii.users', true, false, '')")
        #expect(s.writes && s.sideEffects.contains("side-effect function table_to_xml"))
        let set = try facts("EXPLAIN SELECT set_config('search_path', 'evil', false)")
        #expect(set.writes && set.settings.isEmpty, "reported, but the search path is not taken as changed")
        #expect(try facts("EXPLAIN (ANALYZE false, ANALYZE true) SELECT pg_advisory_lock(1), pg_notify('c', 'x')").writes)
        #expect(try facts("EXPLAIN SELECT pg_advisory_lock(1)").writes)
        #expect(try !facts("EXPLAIN SELECT lower(name) FROM t").writes)
    }

    @Test func copyOptionsKeepTheirCaseAndQuoting() throws {
        let x = try #require(try facts("COPY pii.users TO STDOUT (DELIMITER 'X')").copy)
        #expect(x.format == .text && x.delimiter == UInt8(ascii: "X") && x.null == Array("\\N".utf8))
        let csv = try #require(try facts("COPY t TO STDOUT (FORMAT csv, QUOTE '''', ESCAPE '\\', NULL 'NUL', FORCE_QUOTE *, HEADER)").copy)
        #expect(csv.format == .csv && csv.quote == UInt8(ascii: "'") && csv.escape == UInt8(ascii: "\\"))
        #expect(csv.null == Array("NUL".utf8) && csv.header && csv.delimiter == UInt8(ascii: ","))
        #expect(try facts("COPY t TO STDOUT (FORMAT csv, QUOTE '|')").copy?.escape == UInt8(ascii: "|"), "ESCAPE defaults to QUOTE")
        // The legacy spelling reaches the server as the same options.
        let old = try #require(try facts("COPY t TO STDOUT WITH DELIMITER 'X' CSV QUOTE 'q' ESCAPE 'e' FORCE QUOTE * NULL 'n' HEADER").copy)
        #expect(old.format == .csv && old.delimiter == UInt8(ascii: "X") && old.quote == UInt8(ascii: "q"))
        #expect(old.escape == UInt8(ascii: "e") && old.null == Array("n".utf8) && old.header)
        #expect(try facts("COPY BINARY t TO STDOUT").copy?.format == .binary)
        #expect(try facts("COPY t TO STDOUT (HEADER 0)").copy?.header == false)
        #expect(try facts("COPY t TO STDOUT (ENCODING 'UTF-8')").copy?.unfollowable == nil)
        #expect(try facts("COPY t TO STDOUT (ENCODING 'LATIN1')").copy?.unfollowable?.contains("ENCODING") == true)
    }

    @Test func copyRefusesWhatTheServerRefusesOrTheGateCannotRead() {
        let cases: [(String, String)] = [
            ("COPY t TO STDOUT (DELIMITER ',', DELIMITER 'X')", "given twice"),
            ("COPY t TO STDOUT WITH DELIMITER ',' DELIMITER 'X'", "given twice"),
            ("COPY t TO STDOUT (FORMAT csv, FORMAT text)", "given twice"),
            ("COPY t TO STDOUT WITH CSV CSV", "given twice"),
            ("COPY t TO STDOUT (FORMAT CSV, HEADER, HEADER false)", "given twice"),
            ("COPY t TO STDOUT (DELIMITER 'ab')", "single one-byte character"),
            ("COPY t TO STDOUT (DELIMITER 'é')", "single one-byte character"),
            ("COPY t TO STDOUT (FORMAT csv, QUOTE '')", "single one-byte character"),
            ("COPY t TO STDOUT (FORMAT 'CSV')", "'format'"),
            ("COPY t TO STDOUT (DEFAULT 'x')", "not one PostgreSQL 15 knows"),
            ("COPY t TO STDOUT (OIDS)", "not one PostgreSQL 15 knows"),
            ("COPY t TO STDOUT (HEADER match)", "'header'"),
            ("COPY t TO STDOUT (DELIMITER 'x')", "text format"),
            ("COPY t TO STDOUT (FORMAT csv, DELIMITER '\"')", "different"),
            ("COPY t TO STDOUT (QUOTE 'q')", "only in CSV"),
        ]
        for (sql, expected) in cases {
            let message = refusal(sql)
            #expect(message?.contains(expected) == true, "\(sql): \(message ?? "accepted")")
        }
    }

    @Test func queryTextFunctionsAreSideEffectsAndOpaque() throws {
        for sql in ["SELECT ts_rewrite('a'::tsquery, 'SELECT secret FROM pii.users')",
                    "SELECT * FROM ts_stat('SELECT to_tsvector(secret) FROM pii.users')",
                    "SELECT query_to_xml('SELECT 1', true, false, '')",
                    "SELECT table_to_xml('pii.users', true, false, '')",
                    "SELECT cursor_to_xml('c', 1, true, false, '')"] {
            let s = try facts(sql)
            #expect(s.writes && s.opaqueResult, "\(sql)")
        }
        #expect(SideEffectFunctions.runsQueries.isSuperset(of: ["ts_rewrite", "ts_stat", "query_to_xml", "table_to_xml", "database_to_xml"]))
    }
}
