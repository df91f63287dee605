import Masking
import NIOCore
import PostgresWire
import ProxyCore
import SQLInspection
import Testing
@testable import PostgresProxy

/// Column lineage from the parse tree to the plan (issue 17): alias and CTE column lists,
/// `*` outside the top-level list, whole rows of CTEs and subqueries, errors that echo values,
/// and binary ranges. Statements are inspected with the real parser, then planned.
@Suite struct LineageMaskingTests {
    let users = TableName(schema: "pii", name: "users")
    let orders = TableName(schema: "pii", name: "orders")
    let rules = try! Masker(detectorNames: [], columnRules: ["pii.users.card"])
    var catalog: CatalogLookup {
        let users = self.users, orders = self.orders
        return CatalogLookup(columns: { t in
            t == users ? ["id", "name", "email", "card"] : t == orders ? ["id", "user_id", "total"] : nil
        }, viewColumn: { _, _ in nil })
    }

    /// The request's projection as the gate builds it (`SQLRequestInspector.parts`).
    func projection(_ sql: String) throws -> [Projection] {
        let facts = try SQLInspector.statementFacts(sql, searchPath: ["pii"])
        return SQLRequestInspector.parts(facts).projections
    }

    /// Which of `columns` (computed unless a table origin is given) the planner masks whole.
    func plan(_ sql: String, _ columns: [ResultColumn]) throws -> [Bool] {
        ColumnMaskPlanner.plan(columns, masker: rules, projections: try projection(sql), catalog: catalog)
    }

    func computed(_ n: Int) -> [ResultColumn] { (0..<n).map { ResultColumn(name: "c\($0)", source: .computed) } }

    @Test func computedValuesOfRenamedColumnsAreCovered() throws {
        // The examples of issue 17, turned into values.
        #expect(try plan("SELECT upper(c) FROM pii.users u(i, n, e, c)", computed(1)) == [true])
        #expect(try plan("SELECT x || '' FROM (SELECT * FROM pii.users) s(a, b, c, x)", computed(1)) == [true])
        #expect(try plan("WITH t(a, b, c, d) AS (SELECT * FROM pii.users) SELECT lower(d) FROM t", computed(1)) == [true])
        // A column list can give a covered column an innocent name that is a real column.
        #expect(try plan("SELECT upper(name) FROM pii.users u(id, name)", computed(1)) == [true])
        #expect(try plan("SELECT upper(u.name) FROM pii.users u(id, name)", computed(1)) == [true])
        // A plain column keeps its origin (the protocol reports it): only computed columns depend on lineage.
        #expect(try plan("SELECT c FROM pii.users u(i, n, e, c)",
                         [ResultColumn(name: "c", source: .table(users, column: "card"))]) == [true])
        // Without renaming, innocent computed columns stay clear.
        #expect(try plan("SELECT upper(name), id + 1 FROM pii.users", computed(2)) == [false, false])
        #expect(try plan("SELECT upper(u.name) FROM pii.users u", computed(1)) == [false])
    }

    @Test func wholeRowsOfCTEsAndSubqueriesAreCovered() throws {
        for sql in ["WITH t AS (TABLE pii.users) SELECT t::text FROM t",
                    "WITH t AS (SELECT * FROM pii.users) SELECT row_to_json(t) FROM t",
                    "SELECT to_jsonb(s) FROM (SELECT * FROM pii.users) s",
                    "SELECT ROW(s.*)::text FROM (SELECT * FROM pii.users) s",
                    "SELECT row_to_json(u) FROM pii.users u",
                    "SELECT ROW(u.*)::text FROM pii.users u",
                    "SELECT hstore(u) FROM pii.users u",
                    "SELECT format('%s', u) FROM pii.users AS u",
                    "SELECT (SELECT array_agg(x) FROM (SELECT * FROM pii.users) x)"] {
            #expect(try plan(sql, computed(1)) == [true], "\(sql)")
        }
        // A whole row of a table with no covered column stays clear.
        #expect(try plan("SELECT row_to_json(o) FROM pii.orders o", computed(1)) == [false])
    }

    @Test func starsOutsideTheTopLevelListAreCovered() throws {
        // UNION results and values built from a `*` have no origin the protocol reports.
        for sql in ["SELECT * FROM pii.users UNION ALL SELECT * FROM pii.users",
                    "SELECT ARRAY(SELECT * FROM (SELECT card FROM pii.users) s)",
                    "SELECT ARRAY(TABLE pii.users)",
                    "WITH RECURSIVE t AS (SELECT * FROM pii.users UNION SELECT * FROM t) SELECT * FROM t"] {
            #expect(try plan(sql, computed(1)) == [true], "\(sql)")
        }
        let facts = try SQLInspector.statementFacts("SELECT * FROM pii.users")
        #expect(facts[0].nestedStar == false, "the top-level list's columns are identified by the protocol")
        #expect(try SQLInspector.statementFacts("SELECT *, upper(name) FROM pii.users")[0].nestedStar == false)
        #expect(try SQLInspector.statementFacts("SELECT * FROM (SELECT * FROM pii.users) s")[0].nestedStar == true)
        #expect(try SQLInspector.statementFacts("SELECT count(*) FROM pii.users")[0].nestedStar == false)
        // COPY (SELECT * …) has no origins at all: every field is masked.
        var m = PostgresResultMasker(masker: rules)
        m.beginCopy(RowStreamLayout(format: .text, delimiter: 0x09, header: false, table: nil, columns: []),
                    projections: try projection("COPY (SELECT * FROM pii.users) TO STDOUT"), catalog: catalog)
        let line = m.maskCopyData(ByteBuffer(string: "1\tada\tada@x\t4111111111111111\n")).map { String(buffer: $0) }
        #expect(line == "*\t********\t********\t************1111\n", "every field masked whole")
    }

    @Test func inspectionReportsColumnListsAndNestedStars() throws {
        let s = try #require(try SQLInspector.statementFacts(
            "WITH t(a, b) AS (SELECT id, card FROM pii.users) SELECT * FROM t, pii.users u(i, n), generate_series(1, 2) g(k), (SELECT 1) q(z)").first)
        #expect(Set(s.renamedColumns) == ["a", "b", "i", "n", "k", "z"])
        #expect(s.nestedStar == false)
        let wrapped = try #require(try SQLInspector.statementFacts("PREPARE p AS SELECT upper(c) FROM pii.users u(i, n, e, c)").first)
        #expect(wrapped.renamedColumns == ["i", "n", "e", "c"], "wrappers keep the inner statement's lineage facts")
        let exec = try #require(try SQLInspector.statementFacts("EXECUTE p").first).resolvingExecute(with: wrapped)
        #expect(exec.renamedColumns == ["i", "n", "e", "c"])
    }

    @Test func wholeRowsOfCTEsAndSubqueriesCarryWhatTheirReferencesCarry() throws {
        // A whole row built from explicit innocent columns stays clear (row_to_json keeps its fields,
        // masked by the detectors); one holding the covered column, or `*`, is covered.
        #expect(try plan("SELECT row_to_json(t) FROM (SELECT id, email FROM pii.users) t", computed(1)) == [false])
        #expect(try plan("SELECT row_to_json(t) FROM (SELECT id, card FROM pii.users) t", computed(1)) == [true])
        #expect(try plan("WITH t AS (SELECT id, card AS k FROM pii.users) SELECT t::text FROM t", computed(1)) == [true])
        #expect(try plan("SELECT upper(x) FROM pii.users, generate_series(1, 2) x", computed(1)) == [false])
        #expect(try plan("SELECT x FROM (SELECT * FROM pii.orders) s(a, b, x)", computed(1)) == [false], "nothing covered is read")
    }

    @Test func errorsOfStatementsTouchingACoveredColumnKeepNoText() throws {
        let touching = ["SELECT reverse(card)::int FROM pii.users", "SELECT 1 FROM pii.users WHERE card::int = 0",
                        "SELECT * FROM pii.users", "WITH t AS (TABLE pii.users) SELECT t::text::int FROM t"]
        for sql in touching {
            #expect(ColumnMaskPlanner.touchesCovered(try projection(sql), masker: rules, catalog: catalog), "\(sql)")
        }
        #expect(!ColumnMaskPlanner.touchesCovered(try projection("SELECT total::int FROM pii.orders"), masker: rules, catalog: catalog))
        #expect(ColumnMaskPlanner.touchesCovered([.unknown], masker: rules, catalog: catalog), "an untraceable statement: fail closed")
        #expect(ColumnMaskPlanner.touchesCovered(try projection("DO $$ BEGIN RAISE NOTICE 'x'; END $$"), masker: rules, catalog: catalog),
                "a DO block's body is not seen")

        var m = PostgresResultMasker(masker: try Masker(detectorNames: ["email"], columnRules: ["pii.users.card"]))
        var error = PostgresBackendMessage.Diagnostics(severity: "ERROR", sqlState: "22003",
                                                       message: #"value "1111111111111114" is out of range for type integer"#,
                                                       detail: "card 1111111111111114", hint: "ask ada@example.com")
        error.fields.append((PostgresBackendMessage.Diagnostics.FieldCode.context, "SQL function f line 1 at 1111111111111114"))
        error.fields.append((PostgresBackendMessage.Diagnostics.FieldCode.tableName, "users"))
        let withholding = m.mask(error, at: .error, withhold: true)
        let withheld = try #require(withholding)
        #expect(withheld.sqlState == "22003" && withheld.severity == "ERROR")
        #expect(withheld.message?.contains("withheld") == true)
        #expect(withheld.detail == nil && withheld.hint == nil)
        #expect(!withheld.fields.contains { $0.value.contains("1111111111111114") || $0.value.contains("ada@") })
        #expect(withheld.fields.contains { $0.code == PostgresBackendMessage.Diagnostics.FieldCode.tableName && $0.value == "users" })
        // Not withheld: the detectors alone, as before.
        let scanning = m.mask(error, at: .error, withhold: false)
        let scanned = try #require(scanning)
        #expect(scanned.message == error.message && scanned.hint == "ask a****@example.com")
    }

    @Test func binaryRangesAreReadBoundByBound() throws {
        let detectors = try Masker(detectorNames: ["credit_card"], columnRules: [])
        var m = PostgresResultMasker(masker: detectors)
        m.beginResult([.init(name: "r", tableOID: 0, columnAttribute: 0, typeOID: 3926, typeSize: -1, format: 1),
                       .init(name: "mr", tableOID: 0, columnAttribute: 0, typeOID: 4536, typeSize: -1, format: 1),
                       .init(name: "ok", tableOID: 0, columnAttribute: 0, typeOID: 3926, typeSize: -1, format: 1)],
                      sources: computed(3), projections: [], catalog: .none)
        // int8range(4111111111111111, NULL): lower bound inclusive, upper infinite.
        var range = ByteBuffer()
        range.writeInteger(UInt8(0x02 | 0x10)); range.writeInteger(Int32(8)); range.writeInteger(Int64(4111111111111111))
        var multirange = ByteBuffer()
        multirange.writeInteger(Int32(1)); multirange.writeInteger(Int32(range.readableBytes)); multirange.writeImmutableBuffer(range)
        var small = ByteBuffer()
        small.writeInteger(UInt8(0x02)); small.writeInteger(Int32(8)); small.writeInteger(Int64(1)); small.writeInteger(Int32(8)); small.writeInteger(Int64(10))
        let maskedRow = m.mask(PostgresBackendMessage.DataRow(columns: [range, multirange, small]))
        let masked = try #require(maskedRow).columns
        #expect(masked[0] == nil && masked[1] == nil)
        #expect(masked[2] == small, "a range without a card number passes")
        #expect(BinaryValues.rangeBoundValues([0x01]) == [], "empty range")
        #expect(BinaryValues.rangeBoundValues([0x02, 0, 0, 0, 9]) == nil, "malformed")
    }
}
