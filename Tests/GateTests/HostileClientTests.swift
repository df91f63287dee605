import CaptureFormat
import Foundation
import TestSupport
import Testing

/// What a client that means harm can send: SQL that routes a covered column through places a
/// select list does not show, and protocol sequences ordinary drivers never send. Each case was
/// found to leak or misbehave once; each must now come back masked (or refused), in order.
@Suite("hostile clients through the gate", .serialized)
struct HostileClientTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    /// `ssn` covered by a column rule; `replace(ssn, '-', '')` takes away the shape the SSN detector knows.
    static let target = scramTarget + """

        masks: [credit_card, us_ssn, email, {column: "customers.phone"}, {column: "*.ssn"}]
        """

    /// The clear SSNs and phones, with and without their dashes.
    static func clearValues(_ db: DatabaseEnvironment) throws -> [String] {
        let r = try db.psql(["-At", "-F", "\n", "-c", "SELECT ssn, replace(ssn, '-', ''), phone, replace(phone, '-', '') FROM customers"])
        return r.stdout.split(separator: "\n").map(String.init).filter { $0.count >= 9 }
    }

    func expectNothingClear(_ text: String, _ clear: [String], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        if let leaked = clear.first(where: { text.contains($0) }) {
            Issue.record("\(what): clear value \(leaked) got through: \(text.prefix(300))", sourceLocation: sourceLocation)
        }
    }

    @Test func sqlThatHidesWhereAValueComesFrom() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": Self.target])
        let clear = try Self.clearValues(gate.database)
        #expect(clear.count >= 800)
        let token = try provider.token("mallory@example.com", groups: ["analysts"])
        for sql in [
            "SELECT x FROM (SELECT replace(ssn, '-', '') AS x FROM customers) s",
            "WITH t AS (SELECT replace(ssn, '-', '') AS x FROM customers) SELECT x FROM t",
            "SELECT x FROM customers c, LATERAL (VALUES (replace(c.ssn, '-', ''))) v(x)",
            "SELECT u FROM customers c, unnest(ARRAY[replace(c.phone, '-', '')]) u",
            "SELECT schema_to_xml('public', true, false, '')",
            "SELECT word FROM ts_stat('SELECT to_tsvector(''simple'', replace(ssn, ''-'', '''')) FROM public.customers')",
            "BEGIN; DECLARE c CURSOR FOR SELECT replace(ssn, '-', '') FROM customers; FETCH 5 FROM c; COMMIT",
            "COPY (SELECT id, replace(phone, '-', ''), full_name FROM customers) TO STDOUT; COPY analytics.daily_revenue TO STDOUT",
        ] {
            let r = try gate.psql("demo", token: token, ["-c", sql])
            #expect(r.status == 0, "\(sql): \(r.stderr)")
            expectNothingClear(r.stdout + r.stderr, clear, sql)
        }
        // The search path as PostgreSQL reads the startup packet: the last setting wins, names fold.
        var env = gate.libpqEnvironment("demo", token: token)
        env["PGOPTIONS"] = "-c search_path=analytics -c SEARCH_PATH=public"
        let path = try run("psql", ["-X", "-At", "-c", "SELECT replace(ssn, '-', '') FROM customers LIMIT 3"], environment: env)
        #expect(path.status == 0, "\(path.stderr)")
        expectNothingClear(path.stdout, clear, "search path from the startup packet")
        // Settings that would change who the session is are refused at startup.
        env["PGOPTIONS"] = "-c role=postgres"
        let role = try run("psql", ["-X", "-At", "-c", "SELECT 1"], environment: env)
        #expect(role.status != 0 && role.stderr.contains("may not set role"), "\(role.stderr)")
        #expect(gate.stop() == 0)
        expectNothingClear(String(decoding: try gate.everythingWritten(), as: UTF8.self), clear, "capture or log")
    }

    @Test func protocolSequencesDriversDoNotSend() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": Self.target])
        let clear = try Self.clearValues(gate.database)
        let token = try provider.token("mallory@example.com", groups: ["analysts"])
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/raw_protocol.py").path
        func scenario(_ name: String) throws -> [String: Any] {
            let r = try run("python3", [script, name], environment: gate.libpqEnvironment("demo", token: token), timeout: .seconds(30))
            #expect(r.status == 0, "\(name): \(r.stderr)")
            return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
        }
        for name in ["describe-then-execute-another", "reparse-without-describe", "temp-table-shadow", "duplicate-parse", "bind-sql-prepared",
                     "pipelined-rebind"] {
            let out = try scenario(name)
            let rows = (out["rows"] as? [[Any]]) ?? []
            #expect(!rows.isEmpty, "\(name): \(out)")
            expectNothingClear("\(rows)", clear, name)
        }
        // A portal resumed with a row limit keeps its columns: every chunk masked, none emptied.
        let resumed = try scenario("portal-resumed")
        let rows = (resumed["rows"] as? [[Any]]) ?? []
        #expect(rows.count == 3 && rows.allSatisfy { ($0.first as? String) != nil && ($0.last as? String)?.contains("****@example.com") == true },
                "\(resumed)")
        #expect(gate.stop() == 0)
        expectNothingClear(String(decoding: try gate.everythingWritten(), as: UTF8.self), clear, "capture or log")
    }

    /// A refused request's error comes where the server's would: after the answers to what was
    /// sent before it, before the ReadyForQuery that ends its batch.
    @Test func refusalsKeepTheirPlaceInAPipeline() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget], policies: PolicyEnforcementTests.policy)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/raw_protocol.py").path
        let r = try run("python3", [script, "pipelined-refusal"], environment: gate.libpqEnvironment("demo", token: token), timeout: .seconds(30))
        #expect(r.status == 0, "\(r.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        // Extended: ParseComplete, BindComplete, RowDescription, the row, CommandComplete, then the refusal, then ReadyForQuery.
        // Simple, pipelined: the first query's answer and ReadyForQuery, then the refusal and its ReadyForQuery.
        #expect(out["types"] as? String == "12TDCEZTDCZEZ", "\(out)")
        #expect((out["errors"] as? [[String: Any]])?.allSatisfy { $0["code"] as? String == "42501" } == true)
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
    }

    /// One response larger than a capture block: the rows past the byte budget are counted and
    /// hashed, the session goes on.
    @Test func aHugeResultDoesNotStopTheSession() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("agent@example.com")
        let r = try gate.psql("demo", token: token, ["-c", "SELECT repeat('a', 60000), repeat('b', 60000) FROM generate_series(1, 700)",
                                                     "-c", "SELECT 42"])
        #expect(r.status == 0, "\(r.stderr.prefix(300))")
        #expect(r.stdout.hasSuffix("42\n"))
        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        let responses = try gate.captures().flatMap { try allEvents($0) }.compactMap { e -> PostgresResponse? in
            if case .response(.postgres(let p)) = e.payload { return p } else { return nil }
        }
        let big = try #require(responses.first { $0.rowCount == 700 })
        #expect(big.cut != nil && big.packedRows.count < 700)
    }
}
