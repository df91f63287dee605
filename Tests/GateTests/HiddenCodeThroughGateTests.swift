import Foundation
import TestSupport
import Testing

/// Code the gate does not read (a DO block here; a user function or procedure likewise) runs SQL
/// through SPI, which reaches the session's names and path without the client seeing it (third
/// review, 2026-12-05). Each case below read `lineage_users.card` in clear before the fix: a
/// cursor, a SQL or protocol prepared statement replaced under a name the gate knew, a temporary
/// table dropped so its name means the covered table again. And a temporary table filled from
/// the covered column by CREATE TABLE AS, which the gate's catalog does not know, carried the
/// values out under another column name. The target has a column rule on `card` and nothing else.
@Suite("hidden code through the gate", .serialized)
struct HiddenCodeThroughGateTests {
    let provider: OIDCProvider

    init() throws {
        provider = try sharedProvider.get()
    }

    /// `DO` that closes the cursor named `c` and opens it again over the covered column.
    static let reopenCursor = """
        DO $$ DECLARE r refcursor := 'c'; BEGIN CLOSE r; OPEN r FOR SELECT card || '' FROM lineage_users; END $$
        """
    /// `DO` that replaces the prepared statement `name` (SQL PREPARE and protocol Parse share the namespace).
    static func replacePrepared(_ name: String, parameters: String = "", suffix: String = "''") -> String {
        "DO $$ BEGIN EXECUTE 'DEALLOCATE \(name)'; EXECUTE 'PREPARE \(name)\(parameters) AS SELECT card || \(suffix.replacingOccurrences(of: "'", with: "''")) FROM lineage_users'; END $$"
    }

    func expectNoClearValue(_ text: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        for value in LineageThroughGateTests.clear where text.contains(value) {
            Issue.record("\(what): clear value \(value) got through", sourceLocation: sourceLocation)
            return
        }
    }

    @Test func namesAndTablesHiddenCodeReplacedAreNotTrusted() throws {
        try LineageThroughGateTests.prepareTable(try DatabaseEnvironment.load())
        let gate = try GateProcess(provider: provider, targets: ["db": LineageThroughGateTests.rulesOnly])
        let token = try provider.token("analyst@example.com", groups: ["analysts"])
        let harmlessCursor = "DECLARE c CURSOR FOR SELECT 'harmless'::text AS h"
        // Each list is one psql session, one Query per element; a single element may hold several statements.
        let sessions: [[String]] = [
            ["BEGIN", harmlessCursor, Self.reopenCursor, "FETCH ALL FROM c"],
            ["BEGIN; \(harmlessCursor); \(Self.reopenCursor); FETCH ALL FROM c; COMMIT"],
            ["BEGIN", "DECLARE c SCROLL CURSOR FOR SELECT 'harmless'::text AS h", Self.reopenCursor, "MOVE 2 IN c", "FETCH ALL FROM c"],
            ["PREPARE p AS SELECT 'harmless'::text AS h", Self.replacePrepared("p"), "EXECUTE p"],
            ["PREPARE p AS SELECT 'harmless'::text AS h; \(Self.replacePrepared("p")); EXECUTE p"],
            // A failed DO still replaced the statement: prepared statements are not transactional.
            ["PREPARE p AS SELECT 'harmless'::text AS h",
             "DO $$ BEGIN EXECUTE 'DEALLOCATE p'; EXECUTE 'PREPARE p AS SELECT card || '''' FROM lineage_users'; RAISE EXCEPTION 'x'; END $$",
             "EXECUTE p"],
            // A temporary table the DO drops: the name means the covered table again.
            ["CREATE TEMP TABLE lineage_users (id int, name text, email text, card text)",
             "INSERT INTO lineage_users VALUES (1, 'decoy', 'decoy', 'decoy')",
             "DO $$ BEGIN DROP TABLE pg_temp.lineage_users; END $$", "SELECT upper(card) FROM lineage_users"],
        ]
        for steps in sessions {
            // Every step runs, also after the failing DO.
            let r = try gate.psql("db", token: token, ["-v", "ON_ERROR_STOP=0"] + steps.flatMap { ["-c", $0] })
            let what = steps.joined(separator: " | ")
            expectNoClearValue(r.stdout + r.stderr, what)
            // The server ran it (no refusal): the values came back, masked.
            #expect(r.stdout.contains("********") && !r.stderr.contains("tollgate: denied"), "\(what): \(r.stdout.suffix(300)) \(r.stderr)")
        }

        // A temporary table filled from the covered column: the catalog does not know it, so what
        // is computed from it, its COPY and its errors are masked or withheld.
        let laundered = try gate.psql("db", token: token, [
            "-c", "CREATE TEMP TABLE lexmask17_copy AS SELECT id, card AS name FROM lineage_users",
            "-c", "SELECT upper(name), name || '' FROM lexmask17_copy ORDER BY id LIMIT 3",
            "-c", "COPY lexmask17_copy TO STDOUT",
            "-c", "COPY lexmask17_copy (name) TO STDOUT",
            "-c", "SELECT reverse(name)::int FROM lexmask17_copy",
        ])
        expectNoClearValue(laundered.stdout + laundered.stderr, "temporary copy")
        #expect(laundered.stdout.contains("*9322|*"), "\(laundered.stdout.prefix(300))")
        #expect(laundered.stderr.contains("message withheld (SQLSTATE 22"), "\(laundered.stderr)")

        // The protocol's named statements: psycopg prepares one, a DO replaces it, psycopg binds it again.
        let script = """
            import psycopg, sys
            conn = psycopg.connect("", autocommit=True)
            q = "SELECT 'harmless'::text || %s AS h"
            first = conn.execute(q, ["x"], prepare=True).fetchall()
            name = "_pg3_0"
            conn.execute(sys.argv[1])
            again = conn.execute(q, ["x"], prepare=True).fetchall()
            print(first, again)
            """
        let client = try run("python3", ["-c", script, Self.replacePrepared("_pg3_0", parameters: "(text)", suffix: "$1")],
                               environment: gate.libpqEnvironment("db", token: token), timeout: .seconds(60))
        #expect(client.status == 0, "\(client.stderr)")
        expectNoClearValue(client.stdout + client.stderr, "protocol statement")
        #expect(client.stdout.contains("[('harmlessx',)] [('********',)"), "\(client.stdout)")

        // Innocent statements keep working: a plain column of the covered table is masked, another is not.
        let plain = try gate.psql("db", token: token, ["-c", "SELECT name, upper(name) FROM public.lineage_users WHERE id = 1"])
        #expect(plain.stdout.contains("person 1|PERSON 1"), "\(plain.stdout)\(plain.stderr)")
        #expect(gate.stop() == 0)
        expectNoClearValue(String(decoding: try gate.everythingWritten(), as: UTF8.self), "capture or log")
    }
}
