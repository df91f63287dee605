import Testing
import SQLInspection

/// Operators are function calls found by name (second review of issue 17): one PostgreSQL does
/// not ship, or one qualified with another schema, is an unknown function; every operator is
/// recorded, so the gate can check built-in names against the target's catalog.
@Suite struct OperatorFactsTests {
    func facts(_ sql: String) throws -> StatementFacts {
        try #require(try SQLInspector.statementFacts(sql).first)
    }

    @Test func anOperatorPostgreSQLDoesNotShipIsAnUnknownFunction() throws {
        let f = try facts("SELECT 1 #~# 2")
        #expect(f.unknownFunctions == ["operator #~#"])
        #expect(f.opaqueResult)
        #expect(try facts("SELECT 1 OPERATOR(public.+) 2").unknownFunctions == ["operator public.+"])
        #expect(try facts("SELECT id FROM t WHERE id #~# 2").unknownFunctions == ["operator #~#"])
        #expect(try facts("SELECT id FROM t WHERE id #~# ANY (SELECT 1)").unknownFunctions == ["operator #~#"])
        #expect(try facts("SELECT id FROM t ORDER BY id USING #~#").unknownFunctions == ["operator #~#"])
        // Wrappers keep them.
        #expect(try facts("EXPLAIN SELECT 1 #~# 2").unknownFunctions == ["operator #~#"])
        #expect(try facts("PREPARE p AS SELECT 1 #~# 2").unknownFunctions == ["operator #~#"])
        #expect(try facts("DECLARE c CURSOR FOR SELECT 1 #~# 2").unknownFunctions == ["operator #~#"])
    }

    @Test func builtInOperatorsAreRecordedNotUnknown() throws {
        let f = try facts("SELECT a + 1, a BETWEEN 1 AND 2, CASE a WHEN 1 THEN 2 END, a LIKE 'x%' FROM t JOIN u USING (k)")
        #expect(f.unknownFunctions.isEmpty)
        #expect(!f.opaqueResult)
        for op in ["+", ">=", "<=", "=", "~~"] { #expect(f.operators.contains(op), "\(op) in \(f.operators)") }
        #expect(try facts("SELECT 1 OPERATOR(pg_catalog.+) 2").unknownFunctions.isEmpty)
        #expect(try facts("SELECT 1 OPERATOR(pg_catalog.+) 2").operators == ["pg_catalog.+"])
        #expect(try facts("SELECT * FROM t NATURAL JOIN u").operators == ["="])
    }

    @Test func anExecuteOfAPreparedStatementCarriesItsOperators() throws {
        let prepared = try facts("PREPARE p AS SELECT 1 + 2")
        let execute = try facts("EXECUTE p").resolvingExecute(with: prepared)
        #expect(execute.operators == ["+"])
    }

    /// `p.to_jsonb` is `to_jsonb(p)`: the row counts as referenced, in the outputs too.
    @Test func attributeNotationOnARowReferencesTheRow() throws {
        let f = try facts("SELECT p.to_jsonb, (q).row_to_json, s.t.concat FROM t p, u q, s.t")
        for row in [["p"], ["q"], ["t"], ["q", "row_to_json"]] { #expect(f.projections.contains(row), "\(row) in \(f.projections)") }
        #expect(f.outputs?[0].contains(["p"]) == true, "\(String(describing: f.outputs))")
        #expect(f.outputs?[1].contains(["q"]) == true, "\(String(describing: f.outputs))")
        // A column named like a function that cannot take a row is a column.
        let plain = try facts("SELECT upper(p.name), p.length FROM t p")
        #expect(!plain.projections.contains(["p"]), "\(plain.projections)")
    }

    /// Two-phase commit changes what other sessions' transactions do: a write (second review).
    @Test func twoPhaseCommitStatementsWrite() throws {
        for sql in ["PREPARE TRANSACTION 'x'", "COMMIT PREPARED 'x'", "ROLLBACK PREPARED 'x'"] {
            #expect(try facts(sql).writes, "\(sql)")
        }
        #expect(try !facts("COMMIT").writes)
    }
}
