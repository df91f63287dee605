import Testing
import SQLInspection

/// The facts response masking relies on: which columns feed result values, table aliases,
/// statements that carry credentials, and how COPY lays out its rows.
@Suite struct MaskingFactsTests {
    func facts(_ sql: String) throws -> StatementFacts {
        try #require(try SQLInspector.inspect(sql).statements.first)
    }

    @Test func selectListsGiveTheirColumnReferencesPerOutputColumn() throws {
        let s = try facts("SELECT id, upper(c.ssn) AS u, email || phone, (SELECT max(card) FROM cards) FROM customers c WHERE c.secret = 1")
        #expect(s.projections.contains(["c", "ssn"]))
        #expect(s.projections.contains(["email"]) && s.projections.contains(["phone"]) && s.projections.contains(["card"]))
        #expect(s.projections.contains(["c", "secret"]), "every reference, conditions too")
        let outputs = try #require(s.outputs)
        #expect(outputs.count == 4)
        #expect(outputs[0] == [["id"]])
        #expect(outputs[1] == [["c", "ssn"]])
        #expect(outputs[2] == [["email"], ["phone"]])
        #expect(outputs[3] == [["card"]])
        #expect(s.aliases["c"]?.name == "customers")
    }

    @Test func starsAndSetOperationsHaveNoPositionalOutputs() throws {
        #expect(try facts("SELECT *, upper(ssn) FROM customers").outputs == nil)
        #expect(try facts("SELECT c.* FROM customers c").outputs == nil)
        #expect(try facts("SELECT a FROM t UNION SELECT b FROM u").outputs == nil)
        // Whole-row references are kept as written: the planner decides what they cover.
        #expect(try facts("SELECT row_to_json(c) FROM customers c").projections == [["c"]])
        #expect(try facts("SELECT to_jsonb(c.*) FROM customers c").projections == [["c", "*"]])
    }

    @Test func writesAndReturningListsAndWrappersCarryProjections() throws {
        #expect(try facts("UPDATE customers SET email = 'x' RETURNING ssn").projections.contains(["ssn"]))
        #expect(try facts("EXPLAIN ANALYZE SELECT upper(ssn) FROM customers").projections == [["ssn"]])
        let prep = try facts("PREPARE q AS SELECT lower(email) FROM customers")
        #expect(prep.projections == [["email"]])
        let exec = try facts("EXECUTE q").resolvingExecute(with: prep)
        #expect(exec.projections == [["email"]])
        #expect(exec.outputs == [[["email"]]])
    }

    @Test func credentialBearingStatementsAreFlagged() throws {
        for sql in ["CREATE ROLE app LOGIN PASSWORD 'hunter2-not-real'", "ALTER USER app WITH PASSWORD 'x'",
                    "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', password 'p')",
                    "CREATE SUBSCRIPTION sub CONNECTION 'host=db password=p' PUBLICATION pub",
                    "SELECT dblink_connect('host=db password=p')"] {
            #expect(try facts(sql).carriesSecret, "\(sql)")
        }
        #expect(try !facts("ALTER ROLE app SET search_path = a").carriesSecret)
        #expect(try !facts("SELECT 1").carriesSecret)
        // The normalized text the gate records instead has no literal left.
        let normalized = try SQLInspector.inspect("CREATE ROLE app LOGIN PASSWORD 'hunter2-not-real'").normalized
        #expect(!normalized.contains("hunter2"), "\(normalized)")
    }

    @Test func copyLayouts() throws {
        let text = try #require(try facts("COPY customers TO STDOUT").copy)
        #expect(text.format == .text && text.delimiter == 0x09 && !text.header && text.toClient && !text.fromQuery)
        let csv = try #require(try facts("COPY public.customers (id, email) TO STDOUT WITH (FORMAT csv, HEADER true, DELIMITER ';')").copy)
        #expect(csv.format == .csv && csv.delimiter == UInt8(ascii: ";") && csv.header && csv.columns == ["id", "email"])
        let old = try #require(try facts("COPY customers TO STDOUT WITH CSV HEADER").copy)
        #expect(old.format == .csv && old.header && old.delimiter == UInt8(ascii: ","))
        let binary = try #require(try facts("COPY customers TO STDOUT (FORMAT binary)").copy)
        #expect(binary.format == .binary)
        let query = try #require(try facts("COPY (SELECT ssn FROM customers) TO STDOUT").copy)
        #expect(query.fromQuery && query.toClient)
        #expect(try facts("COPY (SELECT ssn FROM customers) TO STDOUT").projections == [["ssn"]])
        #expect(try facts("COPY customers FROM STDIN").copy?.toClient == false)
        #expect(try facts("COPY customers TO '/tmp/x'").copy?.toClient == false)
    }

    @Test func functionsPostgreSQLDoesNotShipAreUnknown() throws {
        let s = try facts("SELECT count(*), lower(x), refresh_stats(1), public.lower(x), pg_catalog.upper(x), extract(year FROM now()) FROM t")
        #expect(s.unknownFunctions == ["refresh_stats", "public.lower"])
        #expect(BuiltinFunctions.names.contains("jsonb_build_object") && BuiltinFunctions.names.count > 2000)
        let prep = try facts("PREPARE p AS SELECT my_func()")
        #expect(prep.unknownFunctions == ["my_func"])
        #expect(try facts("EXECUTE p").resolvingExecute(with: prep).unknownFunctions == ["my_func"])
    }

    /// Values reach results through more than select lists: then output columns are not told apart.
    @Test func subqueriesCTEsAndFromClauseFunctionsHaveNoPositionalOutputs() throws {
        for sql in ["SELECT x FROM (SELECT replace(ssn, '-', '') AS x FROM customers) s",
                    "WITH t AS (SELECT replace(ssn, '-', '') AS x FROM customers) SELECT x FROM t",
                    "SELECT x FROM customers c, LATERAL (VALUES (replace(c.ssn, '-', ''))) v(x)",
                    "SELECT u FROM customers c, unnest(ARRAY[replace(c.phone, '-', '')]) u"] {
            let f = try facts(sql)
            #expect(f.outputs == nil, "\(sql)")
            #expect(f.projections.contains { $0.last == "ssn" || $0.last == "phone" }, "\(sql): \(f.projections)")
        }
        #expect(try facts("SELECT a.id, b.x FROM t a JOIN u b ON a.id = b.id").outputs != nil, "joins of tables are plain")
    }

    @Test func cursorsAndUntraceableResults() throws {
        let declare = try facts("DECLARE c CURSOR FOR SELECT replace(ssn, '-', '') FROM customers")
        #expect(declare.cursorName == "c" && declare.innerKind == "select")
        let fetch = try facts("FETCH 2 FROM c")
        #expect(fetch.kind == "fetch" && fetch.cursorName == "c" && fetch.opaqueResult)
        let resolved = fetch.resolvingFetch(with: declare)
        #expect(!resolved.opaqueResult && resolved.projections.contains(["ssn"]) && resolved.innerKind == "select")
        // Unresolved, a FETCH runs a query no one decided on: never read-only; resolved, it is its cursor's.
        #expect(fetch.writes && fetch.sideEffects == [SideEffect.unresolvedFetch])
        #expect(!resolved.writes && resolved.sideEffects.isEmpty)
        #expect(try facts("CLOSE ALL").cursorName == "*")
        #expect(try facts("EXECUTE q").opaqueResult)
        #expect(try facts("CALL p()").opaqueResult)
        #expect(try facts("SELECT my_export()").opaqueResult)
        #expect(try facts("SELECT schema_to_xml('public', true, false, '')").opaqueResult)
        #expect(try facts("SELECT schema_to_xml('public', true, false, '')").writes, "runs SQL: never read-only")
        #expect(try !facts("SELECT lower(email) FROM customers").opaqueResult)
        #expect(try facts(#"SELECT "LOWER"(email) FROM customers"#).unknownFunctions == ["LOWER"], "a quoted name is not the built-in")
    }

    @Test func literalsOfUnparseableTextAreWithheld() {
        #expect(SQLLiterals.withheld("ALTER ROLE bob PASSWORD 'hunter2' x") == "ALTER ROLE bob PASSWORD '…' x")
        #expect(SQLLiterals.withheld("SELEC E'a\\'b', $x$ secret $x$, $1, \"it's\" -- 'kept'") == "SELEC E'…', '…', $1, \"it's\" -- 'kept'")
        #expect(SQLLiterals.withheld("x 'it''s' y") == "x '…' y")
        // Third review: an `e` ending an identifier does not make the next literal an E'' string.
        #expect(SQLLiterals.withheld("ALTER ROLE bob PASSWORD some'a\\' 'pw-secret' x") == "ALTER ROLE bob PASSWORD some'…' '…' x")
        #expect(SQLLiterals.withheld("SELEC U&'a\\' 'pw-secret' x") == "SELEC U&'…' '…' x")
        #expect(SQLLiterals.withheld("SELEC (E'a\\'' 'pw-secret') x") == "SELEC (E'…' '…') x")
    }

    /// Code the gate does not read may replace prepared statements, cursors, temporary tables and the path.
    @Test func hiddenCodeIsWhatRunsUnread() throws {
        for sql in ["DO $$ BEGIN NULL; END $$", "CALL p()", "SELECT my_export()", "EXECUTE q", "FETCH ALL FROM c",
                    "SELECT 1 OPERATOR(s.#~#) 2", "SELECT * FROM t WHERE my_check(x)"] {
            #expect(try facts(sql).runsHiddenCode, "\(sql)")
        }
        for sql in ["SELECT lower(email) FROM customers", "PREPARE q AS SELECT 1", "DECLARE c CURSOR FOR SELECT 1", "SET work_mem = '4MB'",
                    "SELECT set_config('work_mem', '4MB', false)", "SELECT 1 + 2"] {
            #expect(try !facts(sql).runsHiddenCode, "\(sql)")
        }
    }
}
