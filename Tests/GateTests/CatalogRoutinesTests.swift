import Foundation
import TestSupport
import Testing

/// The second review of issue 17: names PostgreSQL resolves on the search path that the gate
/// read differently. Writes through such names are in the differential corpus
/// (`DifferentialCorpus.routines`); here, reads: a table named `pg_…` outside pg_catalog is the
/// path's table (PostgreSQL looks in pg_catalog first, then along the path), so its column rules
/// and the policy's schema rules apply to it, not to pg_catalog.
@Suite("names resolved on the search path, through the gate", .serialized)
struct CatalogRoutinesTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    /// Luhn-valid cards unique to this suite's table.
    static let cards: [String] = (1...5).map { i in
        let body = "49298" + String(format: "%010d", i * 104_729 + 17)
        return body + String(LineageThroughGateTests.luhnCheckDigit(body))
    }
    static var clear: [String] { cards + cards.map { String($0.reversed()) } }

    static let policies = """
        policies:
          - name: catalog-only
            who: {groups: [ai-assistants]}
            target: cat
            rules:
              - {name: catalog-reads, when: {schemas: [pg_catalog], writes: false}, then: allow}
          - name: readers
            who: {groups: [ai-assistants]}
            target: db
            rules:
              - {name: reads, when: {writes: false}, then: allow}

        """

    @Test func aTableNamedLikeTheCatalogIsThePathsTable() throws {
        let db = try DatabaseEnvironment.load()
        let values = Self.cards.enumerated().map { i, card in "(\(i + 1), '\(card)')" }
        let setup = try db.psql(["-c", "CREATE TABLE IF NOT EXISTS pg_review17_users (id int PRIMARY KEY, card text)",
                                 "-c", "INSERT INTO pg_review17_users VALUES \(values.joined(separator: ", ")) ON CONFLICT (id) DO NOTHING"])
        #expect(setup.status == 0, "\(setup.stderr)")
        let gate = try GateProcess(provider: provider, targets: [
            "db": scramTarget + "\nmasks:\n  - {column: \"public.pg_review17_users.card\"}",
            "cat": scramTarget,
        ], policies: Self.policies)
        let token = try provider.token("copilot@example.com", groups: ["ai-assistants"])

        // Masking: computed columns, errors and COPY of the covered column carry its mask.
        for sql in ["SELECT upper(card) FROM pg_review17_users", "SELECT card || '' FROM pg_review17_users",
                    "SELECT reverse(card)::bigint FROM pg_review17_users", "COPY (SELECT reverse(card) FROM pg_review17_users) TO STDOUT",
                    "COPY pg_review17_users TO STDOUT", "SELECT * FROM pg_review17_users"] {
            let r = try gate.psql("db", token: token, ["-c", sql])
            for value in Self.clear where (r.stdout + r.stderr).contains(value) {
                Issue.record("\(sql): clear value \(value) got through: \(r.stdout.prefix(200)) \(r.stderr.prefix(200))")
                break
            }
            #expect(!r.stderr.contains("42501"), "\(sql) was refused, not masked: \(r.stderr)")
        }

        // Policy: a rule for pg_catalog does not allow the public table named like a catalog one.
        let denied = try gate.psql("cat", token: token, ["-c", "SELECT count(*) FROM pg_review17_users"])
        #expect(denied.status != 0 && denied.stderr.contains("catalog-only"), "\(denied.stdout) \(denied.stderr)")
        let allowed = try gate.psql("cat", token: token, ["-c", "SELECT count(*) > 0 FROM pg_class"])
        #expect(allowed.status == 0 && allowed.stdout.contains("t"), "\(allowed.stderr)")
        #expect(gate.stop() == 0)
    }
}
