import Foundation
import TestSupport
import Testing

/// Options and query-text functions through a real gate and PostgreSQL 15 (issue 17): EXPLAIN
/// takes the last ANALYZE as the server does, COPY rows are split where the server writes the
/// fields for any DELIMITER/QUOTE/ESCAPE/NULL, and functions that run SQL from text are refused.
@Suite("options through the gate", .serialized)
struct OptionsThroughGateTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    static let readOnly = """
        policies:
          - name: options-read-only
            who: {groups: [options-readers]}
            target: demo
            rules:
              - name: read-only
                when: {statement: [select, explain, copy], writes: false}
                then: allow

        """

    @Test func explainRunsNothingUnderAReadOnlyPolicy() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: Self.readOnly)
        let setup = try gate.database.psql(["-c", "CREATE TABLE IF NOT EXISTS public.options_explain_victim (id int)",
                                            "-c", "TRUNCATE public.options_explain_victim",
                                            "-c", "INSERT INTO public.options_explain_victim VALUES (1)"])
        #expect(setup.status == 0, "\(setup.stderr)")
        let token = try provider.token("reader@example.com", groups: ["options-readers"])
        let delete = "WITH d AS (DELETE FROM public.options_explain_victim RETURNING *) SELECT * FROM d"
        for analyze in ["ANALYZE false, ANALYZE true", "ANALYZE 'on'", "ANALYZE 1", "ANALYZE TRUE", "ANALYZE oN", "ANALYZE off, ANALYZE"] {
            let r = try gate.psql("demo", token: token, ["-c", "EXPLAIN (\(analyze)) \(delete)"])
            #expect(r.status != 0, "EXPLAIN (\(analyze)) was let through: \(r.stdout)")
            #expect(r.stderr.contains("tollgate") || r.stderr.contains("42501"), "\(analyze): \(r.stderr)")
        }
        for (analyze, message) in [("ANALYZE 2", "EXPLAIN option 'analyze' has a value the gate cannot read"),
                                   ("ANALYZE '1'", "EXPLAIN option 'analyze' has a value the gate cannot read"),
                                   ("GENERIC_PLAN", "not one PostgreSQL 15 knows")] {
            let r = try gate.psql("demo", token: token, ["-c", "EXPLAIN (\(analyze)) \(delete)"])
            #expect(r.status != 0 && r.stderr.contains(message), "\(analyze): \(r.stderr)")
        }
        // The last ANALYZE false: planned only, so allowed, and still nothing is deleted.
        let planned = try gate.psql("demo", token: token, ["-c", "EXPLAIN (ANALYZE true, ANALYZE false) \(delete)"])
        #expect(planned.status == 0 && planned.stdout.contains("Delete on options_explain_victim"), "\(planned.stdout)\(planned.stderr)")
        // Functions the planner may call count even without ANALYZE; query-text functions are refused.
        for sql in ["EXPLAIN (ANALYZE false, ANALYZE true) SELECT set_config('search_path', 'pg_temp', false)",
                    "EXPLAIN SELECT pg_advisory_lock(1)", "EXPLAIN (VERBOSE) SELECT table_to_xml('public.customers', true, false, '')",
                    "SELECT ts_rewrite('a'::tsquery, 'SELECT to_tsquery(ssn), to_tsquery(''b'') FROM public.customers')",
                    "SELECT * FROM ts_stat('SELECT to_tsvector(ssn) FROM public.customers')"] {
            let r = try gate.psql("demo", token: token, ["-c", sql])
            #expect(r.status != 0, "\(sql) was let through: \(r.stdout.prefix(200))")
            #expect(r.stderr.contains("tollgate") || r.stderr.contains("42501"), "\(sql): \(r.stderr)")
        }
        // A repeated COPY option is refused by the gate, as PostgreSQL refuses it.
        for copy in ["COPY public.options_explain_victim TO STDOUT (DELIMITER ',', DELIMITER 'X')",
                     "COPY public.options_explain_victim TO STDOUT WITH DELIMITER 'X' DELIMITER ','"] {
            let r = try gate.psql("demo", token: token, ["-c", copy])
            #expect(r.status != 0 && r.stderr.contains("given twice"), "\(copy): \(r.stderr)")
        }
        let copied = try gate.psql("demo", token: token, ["-c", "COPY public.options_explain_victim TO STDOUT (DELIMITER 'X')"])
        #expect(copied.status == 0 && copied.stdout == "1\n", "\(copied.stdout)\(copied.stderr)")
        let still = try gate.database.psql(["-At", "-c", "SELECT count(*) FROM public.options_explain_victim"])
        #expect(still.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1", "the row is still there: \(still.stdout)\(still.stderr)")
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }

    @Test func copyRowsAreMaskedForEveryLayout() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": MaskingThroughGateTests.maskedTarget])
        let clear = try MaskingThroughGateTests.clearValues(gate.database)
        let token = try provider.token("analyst@example.com", groups: ["analysts"])
        let options = ["(DELIMITER 'X')", "(FORMAT text, DELIMITER 'X', NULL 'NUL', HEADER)",
                       "(FORMAT csv, DELIMITER 'X', QUOTE '''', ESCAPE '^', FORCE_QUOTE *, NULL 'NUL', HEADER)",
                       "(FORMAT csv, QUOTE 'Q', FORCE_QUOTE (id, full_name))", "WITH DELIMITER 'X' CSV QUOTE '''' NULL 'NUL'",
                       "(FORMAT csv, DELIMITER '@')", "(DELIMITER '-')"]
        for option in options {
            for copy in ["COPY customers TO STDOUT \(option)", "\\copy customers TO STDOUT \(option)",
                         "COPY (SELECT id, full_name, phone, email, ssn, card_number FROM customers) TO STDOUT \(option)"] {
                let r = try gate.psql("demo", token: token, ["-c", copy])
                #expect(r.status == 0, "\(copy): \(r.stderr)")
                #expect(r.stdout.split(separator: "\n").count >= 200, "\(copy)")
                #expect(r.stdout.contains("****"), "\(copy): masked values expected in \(r.stdout.prefix(300))")
                for value in clear where r.stdout.contains(value) {
                    Issue.record("\(copy): clear value \(value) got through"); break
                }
            }
            // Columns no mask covers come through byte for byte.
            let unmasked = "COPY (SELECT id, full_name, id::text || ' X,''\"\\^Q@-' AS odd FROM customers ORDER BY id) TO STDOUT \(option)"
            let through = try gate.psql("demo", token: token, ["-c", unmasked])
            let direct = try gate.database.psql(["-c", unmasked])
            #expect(through.status == 0 && direct.status == 0, "\(through.stderr)\(direct.stderr)")
            #expect(through.stdout == direct.stdout, "\(option): unmasked columns changed")
        }
        // A layout the masker cannot follow is refused while masks apply; options the gate cannot read
        // (`DELIMITER 0`: libpg_query cannot tell 0 from -1) pass a target without policies unread, so no row may follow.
        for (copy, message) in [("COPY customers TO STDOUT (ENCODING 'LATIN1')", "only in UTF8"),
                                ("COPY customers TO STDOUT (FORMAT csv, DELIMITER 0)", "options the gate could not read")] {
            let r = try gate.psql("demo", token: token, ["-c", copy])
            #expect(r.status != 0 && r.stderr.contains(message), "\(copy): \(r.stderr)")
        }
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        let written = String(decoding: try gate.everythingWritten(), as: UTF8.self)
        for value in clear where written.contains(value) {
            Issue.record("capture or log: clear value \(value) got through"); break
        }
    }
}
