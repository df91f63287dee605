import CaptureFormat
import Foundation
import TestSupport
import Testing

/// Format 1.4 through the real gate: what the gate masked, withheld or cut is flagged in the
/// capture, and a bound parameter keeps the type its Parse declared and its format.
@Suite("value flags through the gate", .serialized)
struct ValueFlagsThroughGateTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    static let target = scramTarget + """

        masks:
          - email
          - {column: "customers.phone"}
        recording:
          max_rows: 3
          max_value_bytes: 1KiB
        """

    @Test func maskedWithheldAndCutValuesAreFlagged() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": Self.target])
        let token = try provider.token("flags@example.com", groups: ["analysts"])
        // Simple Query: a masked column (email by detector, phone by column rule), rows over the cap,
        // and a value over the value cap.
        let r = try gate.psql("demo", token: token, ["-c", "SELECT id, email, phone FROM customers ORDER BY id LIMIT 5",
                                                     "-c", "SELECT repeat('x', 3000) AS big, 'plain' AS small"])
        #expect(r.status == 0, "\(r.stderr)")
        // psycopg, extended protocol: a binary int4 parameter (its Parse declares the type), and a
        // parameter of a statement that may carry a credential (dblink connection string): withheld.
        let script = """
            import psycopg
            with psycopg.connect(autocommit=True) as c:
                print(c.execute("SELECT %b + 1", [70000]).fetchone()[0])
                try:
                    c.execute("SELECT dblink_connect(%s)", ["host=db password=hunter2-flags"])
                except psycopg.Error as e:
                    print("refused:", type(e).__name__)
            """
        let py = try run("python3", ["-c", script], environment: gate.libpqEnvironment("demo", token: token))
        #expect(py.status == 0, "psycopg: \(py.stderr)")
        #expect(py.stdout.contains("70001"), "\(py.stdout)")
        gate.stop()
        try gate.expectNoSecrets([token, "hunter2-flags"])

        // Keyed by capture and exchange: exchange ids are per session.
        var requests: [String: PostgresRequest] = [:]
        var responses: [String: PostgresResponse] = [:]
        for (i, capture) in try gate.captures().enumerated() {
            for e in try allEvents(capture) {
                switch e.payload {
                case .request(.postgres(let p)): requests["\(i):\(e.exchangeID)"] = p
                case .response(.postgres(let p)): responses["\(i):\(e.exchangeID)"] = p
                default: break
                }
            }
        }
        func exchange(_ prefix: String) -> (PostgresRequest, PostgresResponse?)? {
            guard let (id, p) = requests.first(where: { $0.value.text.hasPrefix(prefix) }) else { return nil }
            return (p, responses[id])
        }

        // Masked columns and cut rows.
        let masked = try #require(exchange("SELECT id, email, phone")?.1)
        #expect(masked.rows.count == 3)
        #expect(masked.cut?.rows == 2)
        #expect(masked.rowCount == 5)
        for row in 0..<3 {
            #expect(masked.flags(row: row, column: 0).isEmpty)
            #expect(masked.flags(row: row, column: 1) == .masked, "row \(row) email")
            #expect(masked.flags(row: row, column: 2) == .masked, "row \(row) phone")
        }
        #expect(masked.valueFlags.count == 6)

        // A value over the value cap.
        let big = try #require(exchange("SELECT repeat")?.1)
        #expect(big.flags(row: 0, column: 0) == .cut)
        #expect(big.flags(row: 0, column: 1).isEmpty)
        #expect(String(decoding: big.rows[0][0] ?? [], as: UTF8.self).contains("cut]"))

        // The binary parameter: type and format as sent.
        let (plus, _) = try #require(exchange("SELECT $1 + 1"), "\(requests.values.map(\.text))")
        #expect(plus.parameters.count == 1)
        #expect(plus.parameters.first?.format == 1)
        #expect(plus.parameters.first?.typeOID == 23, "\(plus.parameters)")
        #expect(plus.parameters.first?.flags.isEmpty == true)
        #expect(plus.textFlags.isEmpty)

        // The credential-bearing statement: its parameter withheld, flagged, with its type kept.
        // (Its text is withheld too: it has no literal to normalize away, so only the marker is kept.)
        let dblink = try #require(requests.values.first { $0.functions.contains { $0.contains("dblink_connect") } && !$0.parameters.isEmpty },
                                  "\(requests.values.map(\.text))")
        #expect(dblink.parameters.count == 1)
        #expect(dblink.parameters.first?.flags == .withheld)
        #expect(dblink.parameters.first?.value == Array("[REDACTED]".utf8))
        #expect(dblink.textFlags == .withheld, "\(dblink.text)")

        // Nothing else is flagged: unmasked statements are recorded as sent.
        let plain = requests.values.filter { !$0.functions.contains { $0.contains("dblink") } }
        #expect(plain.allSatisfy { $0.textFlags.isEmpty && $0.parameters.allSatisfy { $0.flags.isEmpty } })
    }

    /// A statement that carries a credential is recorded withheld, and flagged so.
    @Test func withheldStatementTextIsFlagged() throws {
        let gate = try GateProcess(provider: provider, targets: ["demo": Self.target])
        let token = try provider.token("flags@example.com", groups: ["analysts"])
        let role = "format14diff21_flag_role"
        _ = try gate.psql("demo", token: token, ["-c", "ALTER ROLE \(role) PASSWORD 'hunter2-text'"])
        gate.stop()
        try gate.expectNoSecrets([token, "hunter2-text"])
        let texts = try gate.captures().flatMap { try allEvents($0) }.compactMap { e -> PostgresRequest? in
            if case .request(.postgres(let p)) = e.payload { p } else { nil }
        }
        let alter = try #require(texts.first { $0.statementKinds.contains { $0.contains("role") } || $0.text.lowercased().contains("role") })
        #expect(alter.textFlags.contains(.withheld), "\(alter.text)")
    }
}
