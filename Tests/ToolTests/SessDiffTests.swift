import CaptureFormat
import Foundation
import TestSupport
import Testing

func sessdiff(_ arguments: [String], environment: [String: String] = [:]) throws -> Output {
    try run(tool("sessdiff").path, arguments, environment: environment)
}

/// `sessdiff` on captures written here: alignment, row order, masked values, output shapes,
/// exit codes and bad input.
@Suite struct SessDiffTests {
    /// One statement and its recorded result.
    struct Step {
        var sql: String
        var rows: [[String?]] = []
        var masked: Set<Int> = []  // columns flagged masked in every row
        var columns = ["id", "name"]
        var error: String?
        var blockSeal = false
        /// A replay's record of a result whose original was masked: no row, only this many rows'
        /// count and digest (`CutRows`), the digest here a byte repeated.
        var withheld: (rows: UInt64, digest: UInt8)?
    }

    /// Writes a capture of `steps` (request with its fingerprint = its text, decision, response).
    static func write(_ steps: [Step], to path: String, blockTargetBytes: Int = 128 << 10, attributes: [KeyValue] = []) throws {
        let header = SessionHeader(sessionID: UUID().uuidString, target: "db", protocolName: "postgres", subject: "someone",
                                   proxyID: "test", startMicros: 1_790_000_000_000_000, attributes: attributes)
        var options = WriterOptions()
        options.blockTargetBytes = blockTargetBytes
        let writer = try CaptureWriter(path: path, header: header, key: SigningKey(), options: options)
        for (i, s) in steps.enumerated() {
            let x = UInt64(i + 1), t = Int64(i) * 1000
            let request = PostgresRequest(text: s.sql, fingerprint: "fp-" + s.sql.lowercased().filter { !$0.isWhitespace }, normalized: s.sql)
            _ = try writer.append(Event(monotonicNanos: UInt64(t) * 1000, wallMicros: 1_790_000_000_000_000 + t, exchangeID: x,
                                        payload: .request(.postgres(request))))
            _ = try writer.append(Event(monotonicNanos: UInt64(t) * 1000 + 1, wallMicros: 1_790_000_000_000_000 + t, exchangeID: x,
                                        payload: .decision(Decision(action: .allow, policy: "p", rule: "r"))))
            var flags: [FlaggedValue] = []
            for r in s.rows.indices { for c in s.masked.sorted() { flags.append(FlaggedValue(row: r, column: c, flags: .masked)) } }
            var response = s.error.map { PostgresResponse(error: PostgresNotice(severity: "ERROR", sqlState: $0, message: "failed")) }
                ?? PostgresResponse(columns: s.columns.map { Column(name: $0, typeOID: 25) },
                                    rows: s.rows.map { $0.map { $0.map { Array($0.utf8) } } }, rowCount: UInt64(s.rows.count),
                                    commandTag: "SELECT \(s.rows.count)", valueFlags: flags)
            if let w = s.withheld {
                response = PostgresResponse(columns: s.columns.map { Column(name: $0, typeOID: 25) }, rowCount: w.rows, commandTag: "SELECT \(w.rows)",
                                            cut: CutRows(rows: w.rows, bytes: 10 * w.rows, sha256: [UInt8](repeating: w.digest, count: 32)))
            }
            _ = try writer.append(Event(monotonicNanos: UInt64(t) * 1000 + 2, wallMicros: 1_790_000_000_000_000 + t + 1, exchangeID: x,
                                        payload: .response(.postgres(response))))
        }
        try writer.close()
    }

    static let base: [Step] = [
        Step(sql: "SELECT id, name FROM t ORDER BY id", rows: [["1", "a"], ["2", "b"], ["3", "c"]]),
        Step(sql: "SELECT id, name FROM t", rows: [["1", "a"], ["2", "b"], ["3", "c"]]),
        Step(sql: "SELECT id, email FROM u", rows: [["1", "a****@x.org"], ["2", "b****@x.org"]], masked: [1], columns: ["id", "email"]),
        Step(sql: "SELECT 1/0", error: "22012"),
        Step(sql: "SELECT now()", rows: [["1", "2026"]]),
    ]

    func pair(_ a: [Step], _ b: [Step], _ body: (String, String) throws -> Void) throws {
        let scratch = try ScratchDirectory("format14diff21-sessdiff")
        defer { scratch.remove() }
        let pa = scratch.path("a.sesscap"), pb = scratch.path("b.sesscap")
        try Self.write(a, to: pa)
        try Self.write(b, to: pb)
        try body(pa, pb)
    }

    @Test func sameCapturesExitZeroAndCountMaskedValuesAsNotCompared() throws {
        try pair(Self.base, Self.base) { a, b in
            let r = try sessdiff(["--json", a, b])
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            let lines = try jsonLines(r.stdout)
            #expect(lines.count == 1)
            let summary = try #require(lines.first?["summary"] as? [String: Any])
            #expect(summary["same"] as? Bool == true)
            #expect(summary["paired"] as? Int == 5)
            #expect(summary["not_compared_values"] as? Int == 4)  // 2 rows × 1 masked column, on each side
            let text = try sessdiff([a, b])
            #expect(text.status == 0)
            #expect(text.stdout.contains("not compared"))
        }
    }

    @Test func rowOrderIsIgnoredWithoutOrderByAndNotWithIt() throws {
        var reordered = Self.base
        reordered[0].rows.reverse()  // ORDER BY: a difference
        reordered[1].rows.reverse()  // no ORDER BY: the same rows
        try pair(Self.base, reordered) { a, b in
            let r = try sessdiff(["--json", a, b])
            #expect(r.status == 1)
            let diffs = try jsonLines(r.stdout).filter { $0["kind"] != nil }
            #expect(diffs.count == 1, "\(r.stdout)")
            #expect(diffs.first?["kind"] as? String == "values")
            #expect((diffs.first?["statement"] as? String)?.contains("ORDER BY") == true)
            #expect((diffs.first?["a"] as? [String: Any])?["index"] as? Int == 1)
        }
    }

    /// Two replays of a masked result keep only its rows' count and digest: a differing digest is
    /// reported as that, and without ORDER BY (over more than one row) as possibly only their order.
    @Test func twoReplaysRowsKeptOnlyAsDigestDifferByDigest() throws {
        let replay = [Step(sql: "SELECT id, email FROM u", columns: ["id", "email"], withheld: (3, 1)),
                      Step(sql: "SELECT id, email FROM u ORDER BY id", columns: ["id", "email"], withheld: (3, 1)),
                      Step(sql: "SELECT email FROM u WHERE id = 1", columns: ["email"], withheld: (1, 1))]
        try pair(replay, replay) { a, b in
            let same = try sessdiff([a, b])
            #expect(same.status == 0, "\(same.stdout)")
        }
        var other = replay
        for i in other.indices { other[i].withheld?.digest = 2 }
        try pair(replay, other) { a, b in
            let r = try sessdiff(["--json", a, b])
            #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
            let details = try jsonLines(r.stdout).compactMap { $0["detail"] as? String }
            #expect(details == [
                "rows kept only as count and digest (the original's were masked) differ (3 → 3 rows, by digest; the digest covers their order, which without ORDER BY may be all that changed)",
                "rows kept only as count and digest (the original's were masked) differ (3 → 3 rows, by digest)",
                "rows kept only as count and digest (the original's were masked) differ (1 → 1 rows, by digest)",
            ], "\(r.stdout)")
        }
    }

    /// Two replays of different sessions (or of one session read at different chain hashes) are
    /// compared, with a warning: the pt-upgrade workflow means two replays of one capture.
    @Test func twoReplaysOfDifferentCapturesAreComparedWithAWarning() throws {
        let scratch = try ScratchDirectory("twodiff21-sessdiff")
        defer { scratch.remove() }
        func replay(_ name: String, of session: String, chain: String) throws -> String {
            let path = scratch.path(name)
            try Self.write(Self.base, to: path, attributes: [KeyValue("replay.of_session", session), KeyValue("replay.of_chain", chain)])
            return path
        }
        let a = try replay("a.sesscap", of: "s-1", chain: "aa"), a2 = try replay("a2.sesscap", of: "s-1", chain: "aa")
        let other = try replay("b.sesscap", of: "s-2", chain: "aa"), cut = try replay("c.sesscap", of: "s-1", chain: "bb")
        let same = try sessdiff([a, a2])
        #expect(same.status == 0 && !same.stderr.contains("warning"), "\(same.stderr)")
        let sessions = try sessdiff([a, other])
        #expect(sessions.status == 0 && sessions.stderr.contains("A is a replay of session s-1, B of session s-2: not two replays of one capture"), "\(sessions.stderr)")
        let chains = try sessdiff([a, cut])
        #expect(chains.status == 0 && chains.stderr.contains("read at different final chain hashes"), "\(chains.stderr)")
    }

    @Test func anExtraRequestIsOnlyInOneSideAndTheRestStaysAligned() throws {
        var extra = Self.base
        extra.insert(Step(sql: "SELECT version()", rows: [["1", "PostgreSQL 16"]]), at: 2)
        try pair(Self.base, extra) { a, b in
            let r = try sessdiff(["--json", a, b])
            #expect(r.status == 1)
            let lines = try jsonLines(r.stdout)
            let diffs = lines.filter { $0["kind"] != nil }
            #expect(diffs.map { $0["kind"] as? String } == ["only-in-b"], "\(r.stdout)")
            #expect((diffs.first?["b"] as? [String: Any])?["index"] as? Int == 3)
            #expect((lines.last?["summary"] as? [String: Any])?["paired"] as? Int == 5)
            // The other way round, it is only in A.
            let back = try sessdiff(["--summary", b, a])
            #expect(back.status == 1)
            #expect(back.stdout.contains("only-in-a"), "\(back.stdout)")
        }
    }

    @Test func errorsValuesAndIgnoredColumns() throws {
        var changed = Self.base
        changed[3].error = "42P01"            // another SQLSTATE
        changed[4].rows = [["1", "2027"]]     // a value of a column to ignore
        changed[2].rows[0][1] = "z****@x.org" // a masked value that differs in its masked form
        try pair(Self.base, changed) { a, b in
            let r = try sessdiff(["--json", a, b])
            let kinds = try jsonLines(r.stdout).compactMap { $0["kind"] as? String }
            #expect(kinds == ["values", "sqlstate", "values"], "\(r.stdout)")
            let ignoring = try sessdiff(["--json", "--ignore", "na*", "--ignore", "email", a, b])
            let left = try jsonLines(ignoring.stdout).compactMap { $0["kind"] as? String }
            #expect(left == ["sqlstate"], "\(ignoring.stdout)")
            // Unified output: a header, hunks, and no colour when not on a terminal.
            let text = try sessdiff([a, b])
            #expect(text.stdout.hasPrefix("--- \(a)\n+++ \(b)\n@@ "), "\(text.stdout)")
            #expect(text.stdout.contains("-error: 22012"))
            #expect(text.stdout.contains("+error: 42P01"))
            #expect(!text.stdout.contains("\u{1B}["))
        }
    }

    @Test func aDamagedCaptureExitsTwoNamingTheOffset() throws {
        let scratch = try ScratchDirectory("format14diff21-damaged")
        defer { scratch.remove() }
        let a = scratch.path("a.sesscap"), b = scratch.path("b.sesscap")
        let many = (0..<200).map { Step(sql: "SELECT \($0) AS n", rows: [["\($0)", "x"]]) }
        try Self.write(many, to: a, blockTargetBytes: 2048)
        try Self.write(many, to: b, blockTargetBytes: 2048)
        let capture = try CaptureFile(path: b)
        try #require(capture.blocks.count > 4)
        let block = capture.blocks[3]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: b)))
        bytes[Int(block.offset) + 64 + Int(block.filter.bits.count) + 10] ^= 0xFF  // inside the payload: the CRC fails
        try Data(bytes).write(to: URL(fileURLWithPath: b))
        let r = try sessdiff(["--summary", a, b])
        #expect(r.status == 2, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("damaged"), "\(r.stderr)")
        #expect(r.stderr.contains("byte \(block.offset)"), "\(r.stderr)")
        // What came before the damage was compared: the rest of A is only in A.
        #expect(r.stdout.contains("only-in-a"), "\(r.stdout)")
    }

    @Test func aNewerFormatOrNotACaptureExitsTwo() throws {
        try pair(Self.base, Self.base) { a, b in
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: b)))
            bytes[8] = 2  // major version 2
            try Data(bytes).write(to: URL(fileURLWithPath: b))
            let r = try sessdiff([a, b])
            #expect(r.status == 2)
            #expect(r.stderr.contains("version 2"), "\(r.stderr)")
            let missing = try sessdiff([a, b + ".none"])
            #expect(missing.status == 2)
            let usage = try sessdiff(["--summary", "--json", a, a])
            #expect(usage.status == 2)
        }
    }
}
