import Foundation
import SQLInspection
import TestSupport
import Testing

/// Every volatile function PostgreSQL ships is classified (second review of issue 17): a side
/// effect (`SideEffectFunctions.known`) or reviewed as harmless. Read from the test PostgreSQL
/// (scripts/pg-test-cluster), so a new server version's volatile function fails this until it is.
@Suite struct SideEffectFunctionsTests {
    @Test func everyVolatileBuiltInIsClassified() throws {
        let state = ProcessInfo.processInfo.environment["TOLLGATE_STATE"] ?? "/tmp/tollgate-test"
        let env = try #require(try? String(contentsOfFile: "\(state)/pg.env", encoding: .utf8), "run scripts/pg-test-cluster start")
        var values: [String: String] = [:]
        for line in env.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { values[String(kv[0])] = String(kv[1]) }
        }
        let dsn = "host=127.0.0.1 port=\(values["TOLLGATE_PG_PORT"] ?? "") dbname=postgres user=\(values["TOLLGATE_PG_SCRAM_USER"] ?? "")"
        let r = try run("psql", ["-X", "-At", dsn, "-c", """
            SELECT DISTINCT proname FROM pg_catalog.pg_proc
            WHERE pronamespace = 'pg_catalog'::regnamespace AND provolatile = 'v'
              AND prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype, 'internal'::regtype, 'language_handler'::regtype,
                                     'fdw_handler'::regtype, 'index_am_handler'::regtype, 'table_am_handler'::regtype, 'tsm_handler'::regtype)
              AND NOT (proname LIKE '%\\_in' OR proname LIKE '%recv')
            ORDER BY 1
            """], environment: ["PGPASSWORD": values["TOLLGATE_PG_SCRAM_PASSWORD"] ?? ""])
        #expect(r.status == 0, "\(r.stderr)")
        let names = r.stdout.split(separator: "\n").map(String.init)
        #expect(names.count > 100, "\(names.count) volatile functions read")
        let unclassified = names.filter { !SideEffectFunctions.known.contains($0) && !SideEffectFunctions.reviewedHarmless.contains($0) }
        #expect(unclassified.isEmpty, "volatile built-ins neither known side effects nor reviewed harmless: \(unclassified)")
    }
}
