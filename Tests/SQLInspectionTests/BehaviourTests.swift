import Foundation
import Testing
import SQLInspection

@Suite struct BehaviourTests {
    @Test func multiStatementStringsInspectEachStatement() throws {
        let i = try SQLInspector.inspect("SELECT 1; DELETE FROM t; SELECT ';' FROM s.u")
        #expect(i.statements.map(\.kind) == ["select", "delete", "select"])
        #expect(i.statements.map(\.writes) == [false, true, false])
        #expect(i.statements.map(\.text) == ["SELECT 1", "DELETE FROM t", "SELECT ';' FROM s.u"])
        #expect(i.writes)
        #expect(try PgQuery.split("SELECT 1; SELECT 'a;b'").count == 2)
    }

    @Test func emptyAndCommentOnlyStringsHaveNoStatements() throws {
        #expect(try SQLInspector.inspect("").statements.isEmpty)
        #expect(try SQLInspector.inspect("-- nothing\n/* here */").statements.isEmpty)
    }

    @Test func parseErrorsThrowWithTheParsersMessage() {
        #expect {
            _ = try SQLInspector.inspect("SELEC 1")
        } throws: { error in
            guard let e = error as? SQLParseError else { return false }
            return e.message.contains("syntax error at or near \"SELEC\"") && e.cursorPosition == 1
        }
        #expect(throws: SQLParseError.self) { try SQLInspector.inspect("SELECT 1; DELETE FROM") }
        #expect(throws: SQLParseError.self) { try SQLInspector.inspect("SELECT 1\u{0}; DROP TABLE t") }
    }

    @Test func fingerprintIgnoresLiteralsAndNormalizeReplacesThem() throws {
        let a = try SQLInspector.inspect("SELECT * FROM t WHERE id = 1 AND name = 'x'")
        let b = try SQLInspector.inspect("select * from t  where id = 42 and name = 'yy'")
        let c = try SQLInspector.inspect("SELECT * FROM u WHERE id = 1 AND name = 'x'")
        #expect(a.fingerprint == b.fingerprint)
        #expect(a.fingerprint != c.fingerprint)
        #expect(!a.fingerprint.isEmpty)
        #expect(a.normalized == "SELECT * FROM t WHERE id = $1 AND name = $2")
    }

    @Test func prepareReportsTheInnerStatementAndExecuteResolvesToIt() throws {
        let prep = try #require(try SQLInspector.inspect("PREPARE del(int) AS DELETE FROM s.t WHERE id = $1").statements.first)
        #expect(prep.kind == "prepare")
        #expect(prep.innerKind == "delete")
        #expect(prep.preparedName == "del")
        #expect(prep.writes)
        #expect(prep.relations == [RelationAccess(schema: "s", name: "t", access: .write)])

        let readPrep = try #require(try SQLInspector.inspect("PREPARE q AS SELECT * FROM t").statements.first)
        #expect(!readPrep.writes)

        let exec = try #require(try SQLInspector.inspect("EXECUTE del(now())").statements.first)
        #expect(exec.kind == "execute")
        #expect(exec.preparedName == "del")
        #expect(exec.writes)  // unresolved: never read-only
        #expect(exec.sideEffects == [SideEffect.unresolvedExecute])

        let resolved = exec.resolvingExecute(with: prep)
        #expect(resolved.kind == "execute")
        #expect(resolved.innerKind == "delete")
        #expect(resolved.writes)
        #expect(resolved.relations == prep.relations)
        #expect(resolved.functions == ["now"])
        #expect(resolved.sideEffects.isEmpty)

        let resolvedRead = try #require(try SQLInspector.inspect("EXECUTE q").statements.first).resolvingExecute(with: readPrep)
        #expect(!resolvedRead.writes)
        #expect(resolvedRead.relations.map(\.qualifiedName) == ["public.t"])
    }

    @Test func settingsAreReportedWithTheirValues() throws {
        let s = try #require(try SQLInspector.inspect("SET LOCAL search_path TO a, \"B\"").statements.first)
        #expect(s.setting == Setting(name: "search_path", value: "a, B", local: true))
        // The scope is followed (SET LOCAL and set_config(…, true) end with the transaction); one that is
        // not a constant is nil, which the gate follows as neither.
        #expect(try SQLInspector.inspect("SET search_path TO a").statements.first?.setting?.local == false)
        #expect(try SQLInspector.inspect("SELECT set_config('search_path', 'a', true)").statements.first?.settings.first?.local == true)
        #expect(try SQLInspector.inspect("SELECT set_config('search_path', 'a', false)").statements.first?.settings.first?.local == false)
        #expect(try SQLInspector.inspect("SELECT set_config('search_path', 'a', random() > 0.5)").statements.first?.settings.first?.local == nil)
        #expect(s.setting?.isSecurityRelevant == true)

        let c = try #require(try SQLInspector.inspect(
            "SELECT set_config('statement_timeout', '1s', false), set_config('role', 'admin', false)").statements.first)
        #expect(c.settings.count == 2)
        #expect(c.setting == Setting(name: "role", value: "admin"))

        let t = try #require(try SQLInspector.inspect("SET statement_timeout = 5000").statements.first)
        #expect(t.setting == Setting(name: "statement_timeout", value: "5000"))
        #expect(t.setting?.isSecurityRelevant == false)
    }

    @Test func searchPathResolvesUnqualifiedNamesToItsFirstSchema() throws {
        let f = try #require(try SQLInspector.inspect("SELECT * FROM t, s.u, pg_class", searchPath: ["$user", "analytics", "public"]).statements.first)
        #expect(f.relations == [
            RelationAccess(schema: "analytics", name: "t", access: .read, schemaWasWritten: false),
            RelationAccess(schema: "s", name: "u", access: .read, schemaWasWritten: true),
            RelationAccess(schema: "pg_catalog", name: "pg_class", access: .read, schemaWasWritten: false),
        ])
    }

    @Test func unionArmsAndNestedLockingAreSeen() throws {
        let f = try #require(try SQLInspector.inspect(
            "SELECT * FROM a UNION SELECT * FROM (SELECT * FROM b FOR UPDATE) x WHERE EXISTS (SELECT pg_sleep(1) FROM c)").statements.first)
        #expect(Set(f.relations.map(\.name)) == ["a", "b", "c"])
        #expect(f.writes)
        #expect(f.sideEffects == ["FOR UPDATE"])
        #expect(f.functions == ["pg_sleep"])
    }

    @Test func sideEffectListMatchesBaseNamesInAnyCase() {
        #expect(SideEffectFunctions.isKnown("PG_CATALOG.PG_TERMINATE_BACKEND"))
        #expect(SideEffectFunctions.isKnown("lo_import"))
        #expect(!SideEffectFunctions.isKnown("lower"))
    }

    @Test func deeplyNestedInputDoesNotCrash() {
        let deep = String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        // Either parsed or refused by the parser's own depth limit; never a crash.
        _ = try? SQLInspector.inspect("SELECT " + deep)
    }

    /// Throughput of a typical ~200-character SELECT (no timing assertion:
    /// the number is printed for the benchmark notes). Debug builds are about
    /// 8x slower than `-O`; see `SQLInspector`'s doc comment for release numbers.
    @Test func benchmark() throws {
        let sql = "SELECT o.id, o.created_at, c.name, c.email, sum(l.amount) AS total FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id JOIN sales.lines l ON l.order_id = o.id WHERE o.created_at > now() - interval '7 days' GROUP BY 1, 2, 3, 4"
        let n = 2000
        var start = Date()
        for _ in 0..<n { _ = try SQLInspector.statementFacts(sql) }
        let facts = Double(n) / Date().timeIntervalSince(start)
        start = Date()
        for _ in 0..<n { _ = try SQLInspector.inspect(sql) }
        let full = Double(n) / Date().timeIntervalSince(start)
        start = Date()
        for _ in 0..<n { _ = try PgQuery.parseJSON(sql) }
        let parse = Double(n) / Date().timeIntervalSince(start)
        print("SQLInspection benchmark (\(sql.utf8.count) chars): parseJSON \(Int(parse))/s, statementFacts \(Int(facts))/s, inspect \(Int(full))/s")
    }
}
