import CaptureFormat
import Foundation
import TestSupport
import Testing

/// Masking corpus through the gate: the fake people of the demo database (cards, SSNs, e-mails,
/// phones) read in every shape a client can ask for. No clear value may reach the client, the
/// capture or the log, and the masked values must still be there (so the checks cannot pass on
/// empty output).
@Suite("masking through the gate", .serialized)
struct MaskingThroughGateTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    static let maskedTarget = scramTarget + """

        masks:
          - credit_card
          - us_ssn
          - email
          - {column: "customers.phone"}
        """

    /// The clear values, read straight from PostgreSQL (not through the gate).
    static func clearValues(_ db: DatabaseEnvironment) throws -> [String] {
        let r = try db.psql(["-At", "-F", "\n", "-c", "SELECT email, ssn, card_number, phone FROM customers"])
        #expect(r.status == 0, "\(r.stderr)")
        let values = Set(r.stdout.split(separator: "\n").map(String.init).filter { !$0.isEmpty })
        #expect(values.count >= 600, "expected the demo database's 200 customers")
        return values.sorted()
    }

    func expectNoClearValue(_ text: String, _ clear: [String], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for value in clear where text.contains(value) {
            Issue.record("\(what): clear value \(value) got through", sourceLocation: sourceLocation)
            return
        }
    }

    @Test func nothingClearReachesPsqlOrTheCapture() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": Self.maskedTarget])
        let clear = try Self.clearValues(gate.database)
        let token = try provider.token("analyst@example.com", groups: ["analysts"])
        let corpus: [(sql: String, expect: [String])] = [
            ("SELECT id, full_name, email, phone, ssn, card_number FROM customers ORDER BY id", ["g****@example.com", "***-**-****", "************4444", "+*-***-****"]),
            ("SELECT row_to_json(c) FROM customers c", ["********"]),
            ("SELECT row_to_json(t) FROM (SELECT id, email, ssn FROM customers) t", [#""email":"g****@example.com""#]),
            ("SELECT array_agg(email), array_agg(ssn), array_agg(card_number) FROM customers", ["{g****@example.com,"]),
            ("SELECT upper(email), lower(ssn), ssn || '', concat(card_number, '') FROM customers", ["G****@EXAMPLE.COM"]),
            ("SELECT email || ' ' || ssn || ' ' || card_number FROM customers", ["g****@example.com ***-**-**** ************4444"]),
            ("SELECT string_agg(phone, ',') FROM customers", ["********"]),
            ("SELECT p FROM (SELECT phone AS p FROM customers) s", ["+*-***-****"]),
            ("SELECT phone AS not_a_phone, length(phone) FROM customers", ["+*-***-****"]),
            ("PREPARE q AS SELECT email, phone FROM customers; EXECUTE q", ["g****@example.com"]),
            // Lineage the names do not show (issue 17): column lists, whole rows of CTEs, `*` under a UNION
            // (a phone masked whole keeps its shape).
            ("SELECT upper(p) FROM customers c(i, f, e, p)", ["+*-***-****"]),
            ("SELECT upper(full_name) FROM customers c(id, email, full_name)", ["********"]),  // "full_name" is the email here
            ("SELECT x || '' FROM (SELECT * FROM customers) s(a, b, c, x)", ["+*-***-****"]),
            ("WITH t AS (TABLE customers) SELECT t::text FROM t", ["********"]),
            ("WITH t(a, b, c, d) AS (SELECT * FROM customers) SELECT lower(d) FROM t", ["+*-***-****"]),
            ("SELECT * FROM customers UNION ALL SELECT * FROM customers", ["********"]),
            ("DO $$ BEGIN RAISE NOTICE '%', (SELECT string_agg(ssn || ' ' || card_number || ' ' || email, ';') FROM customers); END $$", []),
        ]
        for (sql, expected) in corpus {
            let r = try gate.psql("demo", token: token, ["-c", sql])
            #expect(r.status == 0, "\(sql): \(r.stderr)")
            expectNoClearValue(r.stdout + r.stderr, clear, sql)
            for e in expected { #expect(r.stdout.contains(e), "\(sql): expected \(e) in \(r.stdout.prefix(300))") }
            // A DO body is not seen, and rules apply: its notices keep no text.
            if sql.hasPrefix("DO") { #expect(r.stderr.contains("NOTICE:  tollgate: message withheld"), "\(r.stderr.prefix(200))") }
        }
        // Errors echo the value they could not read.
        for sql in ["SELECT card_number::int FROM customers", "SELECT ssn::date FROM customers", "SELECT email::int FROM customers",
                    "SELECT reverse(phone)::int FROM customers", "SELECT p::int FROM customers c(i, f, e, p)"] {
            let r = try gate.psql("demo", token: token, ["-c", sql])
            #expect(r.status != 0)
            #expect(r.stderr.contains("ERROR:"), "\(sql): \(r.stderr)")
            expectNoClearValue(r.stderr, clear, sql)
        }
        // COPY TO STDOUT, text and CSV, from a table and from a query.
        for copy in ["\\copy customers TO STDOUT", "\\copy customers TO STDOUT WITH CSV HEADER",
                     "\\copy (SELECT id, email, ssn, phone FROM customers) TO STDOUT", "\\copy customers (phone, email) TO STDOUT WITH (FORMAT csv)"] {
            let r = try gate.psql("demo", token: token, ["-c", copy])
            #expect(r.status == 0, "\(copy): \(r.stderr)")
            #expect(r.stdout.split(separator: "\n").count >= 200, "\(copy)")
            #expect(r.stdout.contains("****@example.com"), "\(copy)")
            expectNoClearValue(r.stdout, clear, copy)
        }
        // What the client sends with COPY FROM STDIN is recorded masked too (the database gets it as sent).
        let upload = try gate.psql("demo", token: token, ["-c", "CREATE TEMP TABLE upload (v text)", "-c", "\\copy upload FROM STDIN",
                                                          "-c", "SELECT count(*) FROM upload"],
                                   stdin: "card 4000056655665556 for hedy@example.com\n\\.\n")
        #expect(upload.status == 0 && upload.stdout.split(separator: "\n").last == "1", "\(upload.stdout)\(upload.stderr)")
        // Binary COPY cannot be rewritten field by field: refused while masks apply.
        let binary = try gate.psql("demo", token: token, ["-c", "COPY customers TO STDOUT (FORMAT binary)"])
        #expect(binary.status != 0)
        #expect(binary.stderr.contains("binary COPY output cannot be masked"), "\(binary.stderr)")
        // Catalog queries keep working under column rules (psql's \d).
        let describe = try gate.psql("demo", token: token, ["-c", "\\d customers"])
        #expect(describe.status == 0, "\(describe.stderr)")
        #expect(describe.stdout.contains("card_number"), "\(describe.stdout)")

        #expect(gate.stop() == 0)
        try gate.expectNoSecrets([token])
        let written = String(decoding: try gate.everythingWritten(), as: UTF8.self)
        expectNoClearValue(written, clear + ["4000056655665556", "hedy@example.com"], "capture or log")
        // The capture says what was masked, where.
        var summaries: [MaskCount] = []
        var recordedEmails = 0
        for c in try gate.captures() {
            #expect(c.verify().isValid)
            for e in try allEvents(c) {
                if case .maskSummary(let m) = e.payload { summaries += m.entries }
                if case .response(.postgres(let p)) = e.payload {
                    recordedEmails += p.rows.flatMap { $0 }.compactMap { $0 }.filter { String(decoding: $0, as: UTF8.self).contains("****@example.com") }.count
                }
            }
        }
        #expect(summaries.contains { $0.detector == "email" && $0.location == "public.customers.email" && $0.count == 200 })
        #expect(summaries.contains { $0.detector == "column" && $0.location == "public.customers.phone" })
        #expect(summaries.contains { $0.location == "copy" })
        #expect(summaries.contains { $0.location == "error" })
        #expect(summaries.contains { $0.location == "notice" })
        #expect(recordedEmails >= 200, "masked rows are recorded")
    }

    @Test func psycopgTextBinaryAndPreparedResults() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": Self.maskedTarget])
        let clear = try Self.clearValues(gate.database)
        let token = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let script = repositoryRoot.appendingPathComponent("Tests/GateTests/Fixtures/psycopg_client.py").path
        let r = try run("python3", [script, "masking"], environment: gate.libpqEnvironment("demo", token: token), timeout: .seconds(60))
        #expect(r.status == 0, "psycopg: \(r.stderr)")
        expectNoClearValue(r.stdout, clear, "psycopg")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        for format in ["text", "binary"] {
            let rows = try #require(object[format] as? [[Any]], "\(format)")
            #expect(rows.count == 5)
            let first = rows[0]
            #expect(first[0] as? Int == 1, "\(format): the id is untouched")
            #expect(first[1] as? String == "g****@example.com", "\(format)")
            #expect(first[2] as? String == "***-**-****", "\(format)")
            #expect(first[3] as? String == "************4444", "\(format)")
            #expect(first[4] is NSNull, "\(format): a card number in a bigint becomes NULL")
            #expect(first[5] is NSNull, "\(format): and in a numeric")
            #expect(first[6] as? String == "+*-***-****", "\(format)")
            #expect(first[7] as? String == "G****@EXAMPLE.COM", "\(format)")
            #expect(first[8] as? String == "********", "\(format): the whole row holds a covered column: a JSON string")
            // The array arrives as a Python list (printed with repr): every element masked, none lost.
            #expect((first[9] as? String)?.hasPrefix("['g****@example.com', 'a****@example.com', 'e****@example.com',") == true, "\(format): \(first[9])")
        }
        let prepared = try #require(object["prepared"] as? [Any])
        #expect(prepared[0] as? String == "k****@example.com")
        #expect(prepared[1] as? String == "+*-***-****")
        let sameShape = try #require(object["same_shape"] as? [Any])
        #expect(sameShape[0] as? String == "KEN LOVELACE", "\(sameShape)")
        #expect(sameShape[1] as? String == "+*-***-****", "a plan made for another statement must not apply: \(sameShape)")
        let again = try #require(object["prepared_again"] as? [Any])
        #expect(again.count == 3 && again[1] as? String == "r****@example.com" && again[2] as? String == "+*-***-****", "\(again)")
        #expect(gate.stop() == 0)
        expectNoClearValue(String(decoding: try gate.everythingWritten(), as: UTF8.self), clear, "capture or log")
        // Each mask is reported under the column it was found in, also for a statement whose plan came from the cache.
        var locations: Set<String> = []
        for c in try gate.captures() {
            for e in try allEvents(c) { if case .maskSummary(let m) = e.payload { locations.formUnion(m.entries.map(\.location)) } }
        }
        #expect(locations.contains("public.customers.phone") && locations.contains("public.customers.email"), "\(locations.sorted())")
        #expect(locations.isDisjoint(with: ["b1", "b2", "b3"]), "masks counted under another statement's columns: \(locations.sorted())")
    }

    @Test func policyMasksAddToTheTargetsForTheirPeopleOnly() throws {
        let policies = """
            policies:
              - name: contractors
                who: {groups: [contractors]}
                target: demo
                rules:
                  - {name: read, when: {statement: [select], writes: false}, then: allow}
                masks: [{column: "*.full_name"}, {regex: 'Lovelace|Hopper', name: surname}]
              - name: staff
                who: {groups: [staff]}
                target: demo
                rules:
                  - {name: read, when: {statement: [select], writes: false}, then: allow}

            """
        let gate = try GateProcess(provider: provider, targets: ["demo": Self.maskedTarget], policies: policies)
        let contractor = try provider.token("c@example.com", groups: ["contractors"])
        let staff = try provider.token("s@example.com", groups: ["staff"])
        let sql = ["-c", "SELECT full_name, email, country FROM customers WHERE id = 1", "-c", "SELECT 'Ada Hopper'"]
        let c = try gate.psql("demo", token: contractor, sql)
        #expect(c.status == 0, "\(c.stderr)")
        #expect(c.stdout.contains("********|g****@example.com|DE"), "\(c.stdout)")
        #expect(c.stdout.contains("Ada [REDACTED:surname]"), "\(c.stdout)")
        let s = try gate.psql("demo", token: staff, sql)
        #expect(s.stdout.contains("Grace Lovelace|g****@example.com|DE"), "\(s.stdout)")
        #expect(gate.stop() == 0)
    }

    @Test func credentialsInStatementsAreNeverRecorded() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": scramTarget])
        let token = try provider.token("dba@example.com", groups: ["dba"])
        // The gate's account may not create roles: the statement fails upstream, but it was sent and recorded.
        _ = try gate.psql("demo", token: token, ["-c", "CREATE ROLE someone LOGIN PASSWORD 'pw-7c1e-do-not-record'"])
        // Text the parser rejects may carry one too: its literals are withheld.
        _ = try gate.psql("demo", token: token, ["-c", "ALTER ROLE bob PASSWORD 'pw-9d2f-unparseable' x"])
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
        let r = try gate.psql("demo", token: token, ["-c", "SELECT '\(jwt)' AS t"])
        #expect(r.stdout.contains(jwt), "no masks configured: the client gets what it asked for")
        #expect(gate.stop() == 0)
        let written = try gate.everythingWritten()
        #expect(!written.contains(bytes: "pw-7c1e-do-not-record"))
        #expect(!written.contains(bytes: "pw-9d2f-unparseable"))
        #expect(!written.contains(bytes: jwt), "secrets are never recorded, masks or not")
        let requests = try gate.captures().flatMap { try allEvents($0) }.compactMap { e -> PostgresRequest? in
            if case .request(.postgres(let p)) = e.payload { return p } else { return nil }
        }
        #expect(requests.contains { $0.text.hasPrefix("CREATE ROLE someone LOGIN PASSWORD $1") }, "\(requests.map(\.text))")
        #expect(requests.contains { $0.text.contains("[REDACTED:jwt]") })
    }

    /// A view reports its own columns as a result's origin: a rule on the base column must see through it,
    /// and through a view over that view.
    @Test func viewsDoNotHideACoveredColumn() throws {
        let db = try DatabaseEnvironment.load()
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let (v1, v2) = ("contacts_\(suffix)", "contacts2_\(suffix)")
        func direct(_ sql: String) throws {
            let r = try db.psql(["-c", sql])
            #expect(r.status == 0, "\(sql): \(r.stderr)")
        }
        try direct("CREATE VIEW \(v1) AS SELECT id, phone AS contact, country FROM customers; CREATE VIEW \(v2) AS SELECT contact AS c2, country FROM \(v1)")
        defer { try? direct("DROP VIEW \(v2); DROP VIEW \(v1)") }
        let gate = try GateProcess(provider: provider, targets: ["demo": Self.maskedTarget])
        let clear = try Self.clearValues(db)
        let token = try provider.token("analyst@example.com", groups: ["analysts"])
        let r = try gate.psql("demo", token: token, ["-c", "SELECT id, contact, country FROM \(v1) ORDER BY id LIMIT 3",
                                                     "-c", "SELECT c2, country FROM \(v2) LIMIT 3"])
        #expect(r.status == 0, "\(r.stderr)")
        expectNoClearValue(r.stdout, clear, "views")
        #expect(r.stdout.contains("1|+*-***-****|DE"), "\(r.stdout)")
        #expect(r.stdout.contains("+*-***-****|"), "\(r.stdout)")
        #expect(gate.stop() == 0)
    }
}
