import SQLInspection
import Testing

/// What inspection reports for column lineage beyond the references (issue 17): names given by
/// alias and CTE column lists, and `*` whose columns reach a value without a reference.
@Suite struct LineageFactsTests {
    func facts(_ sql: String) throws -> StatementFacts {
        try #require(try SQLInspector.statementFacts(sql).first)
    }

    @Test func aliasAndCTEColumnListsAreReportedAsRenamed() throws {
        #expect(try facts("SELECT c FROM pii.users u(i, n, e, c)").renamedColumns == ["i", "n", "e", "c"])
        #expect(try facts("SELECT x FROM (SELECT * FROM pii.users) s(a, b, c, x)").renamedColumns == ["a", "b", "c", "x"])
        #expect(try facts("WITH t(a, b) AS (SELECT id, card FROM pii.users) SELECT b FROM t").renamedColumns == ["a", "b"])
        #expect(try facts("SELECT k FROM generate_series(1, 3) g(k)").renamedColumns == ["k"])
        #expect(try facts("SELECT * FROM (pii.users JOIN pii.orders USING (id)) j(a, b)").renamedColumns == ["a", "b"])
        #expect(try facts("SELECT upper(name) FROM pii.users u").renamedColumns == [], "an alias without a column list renames nothing")
        #expect(try facts("EXPLAIN SELECT c FROM pii.users u(i, c)").renamedColumns == ["i", "c"])
    }

    @Test func onlyTheTopLevelListsStarsAreIdentifiedByTheProtocol() throws {
        #expect(try facts("SELECT * FROM pii.users").nestedStar == false)
        #expect(try facts("SELECT u.*, * FROM pii.users u").nestedStar == false)
        #expect(try facts("WITH t AS (TABLE pii.users) SELECT t::text FROM t").nestedStar == true)
        #expect(try facts("SELECT * FROM pii.users UNION SELECT * FROM pii.users").nestedStar == true)
        #expect(try facts("SELECT ARRAY(SELECT * FROM pii.cards)").nestedStar == true)
        #expect(try facts("COPY (SELECT * FROM pii.users) TO STDOUT").nestedStar == true)
        #expect(try facts("SELECT count(*) FROM pii.users").nestedStar == false)
        #expect(try facts("DECLARE k CURSOR FOR SELECT * FROM (SELECT * FROM pii.users) s").nestedStar == true)
    }

    @Test func doBlocksAreOpaque() throws {
        #expect(try facts("DO $$ BEGIN RAISE NOTICE '%', (SELECT card FROM pii.users LIMIT 1); END $$").opaqueResult)
    }
}
