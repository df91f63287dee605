import ArgumentParser
import CaptureFormat
import Forensics
import Foundation
import SyntheticSessions
import TestSupport
import Testing

/// Runs the engine and returns its hits (from its JSON output) and statistics.
func engine(_ paths: [String], _ q: CaptureQuery, parallelism: Int = 2) async -> (hits: [Oracle.Hit], stats: SearchStats, errors: [String]) {
    let options = SearchOptions(mode: .exchanges, renderer: ExchangeRenderer(json: true, terminal: Terminal(environment: ["NO_COLOR": "1"])),
                                parallelism: parallelism)
    var hits: [Oracle.Hit] = []
    var stats = SearchStats()
    var errors: [String] = []
    await CaptureSearch.run(paths: paths, query: q, options: options) { o in
        stats.add(o.stats)
        errors += o.errors
        for line in o.output {
            let j = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let events = j["events"] as! [[String: Any]]
            hits.append(Oracle.Hit(session: j["session"] as! String, exchange: UInt64(j["exchange"] as? Int ?? 0),
                                   firstSequence: UInt64(events[0]["seq"] as! Int)))
        }
        return true
    }
    return (hits, stats, errors)
}

/// A query from command-line style arguments, through the same option group the tools use.
func query(_ arguments: [String], pattern: TextPattern? = nil, now: Int64) throws -> CaptureQuery {
    var q = try CaptureFilterOptions.parse(CaptureFilterOptions.expandingOptionalValues(arguments)).query(now: now)
    q.pattern = pattern
    return q
}

@Suite("search engine against the oracle")
struct EngineTests {
    /// Each filter alone and in combinations, on captures whose exchanges straddle blocks.
    static let fixtureQueries: [([String], TextPattern?)] = [
        ([], nil),
        (["--subject", "alice@example.com"], nil),
        (["--subject", "*@example.com", "--group", "sre"], nil),
        (["--target", "orders-db"], nil),
        (["--protocol", "kubernetes"], nil),
        (["--session", "cccc"], nil),
        (["--decision", "deny"], nil),
        (["--decision", "deny", "--decision", "approved"], nil),
        (["--decision", "expired"], nil),
        (["--decision", "review", "--decision", "denied"], nil),
        (["--kind", "approval"], nil),
        (["--kind", "session-start", "--kind", "session-end"], nil),
        (["--kind", "stream"], nil),
        (["--table", "pii.users"], nil),
        (["--table", "pii.*"], nil),
        (["--table", "orders"], nil),
        (["--table", "*.orders", "--statement", "truncate"], nil),
        (["--table", "pii.users", "--decision", "deny"], nil),
        (["--table", "pii.users", "--statement", "select"], nil),
        (["--statement", "DELETE"], nil),
        (["--function", "pg_sleep"], nil),
        (["--function", "pg_catalog.pg_sleep"], nil),
        (["--function", "*sleep"], nil),
        (["--method", "post"], nil),
        (["--method", "GET", "--status", "4xx"], nil),
        (["--status", "404"], nil),
        (["--status", "2xx"], nil),
        (["--path", "/api"], nil),
        (["--path", "/api/v1/namespaces/payments/*"], nil),
        (["--verb", "list", "--namespace", "payments"], nil),
        (["--resource", "secrets"], nil),
        (["--subresource", "exec", "--decision", "approved"], nil),
        (["--masked"], nil),
        (["--masked=credit_card"], nil),
        (["--masked=cred*", "--table", "public.payments"], nil),
        (["--prompt", "p-1"], nil),
        (["--trace", SearchFixture.traceT1], nil),
        (["--trace", "00-\(SearchFixture.traceT1)-b7ad6b7169203331-01"], nil),
        (["--prompt", "p-2"], nil),
        (["--since", "1h"], nil),
        (["--since", "1d", "--until", "1h"], nil),
        (["--until", "1d"], nil),
        ([], TextPattern(patterns: ["pii.users"], fixed: true)),
        ([], TextPattern(patterns: ["DELETE FROM [a-z.]+"])),
        ([], TextPattern(patterns: ["^select"], ignoreCase: true)),
        ([], TextPattern(patterns: ["SELECT"], invert: true)),
        (["--decision", "allow"], TextPattern(patterns: ["SELECT"], fixed: true, invert: true)),
        ([], TextPattern(patterns: ["4242"], scope: .responses)),
        ([], TextPattern(patterns: ["4242"], scope: .requests)),
        ([], TextPattern(patterns: ["root:x:0"], scope: .all)),
        ([], TextPattern(patterns: ["cat /etc/passwd"], fixed: true)),
        ([], TextPattern(patterns: ["secret-token"], fixed: true)),
        ([], TextPattern(patterns: ["division by zero"], scope: .responses)),
        ([], TextPattern(patterns: ["^shipped$", "^UPDATE [0-9]+$"], scope: .responses)),
        ([], TextPattern(patterns: ["POST /api/v1/namespaces/payments"], fixed: true)),
        ([], TextPattern(patterns: ["/bin/sh"], fixed: true)),
        (["--subject", "alice*"], TextPattern(patterns: ["Email"], fixed: true, ignoreCase: true, scope: .all)),
    ]

    @Test(arguments: [200, 700, 1 << 20])
    func fixtureAgreesWithOracle(blockBytes: Int) async throws {
        let f = try SearchFixture(blockBytes: blockBytes)
        defer { f.remove() }
        for (args, pattern) in Self.fixtureQueries {
            let q = try query(args, pattern: pattern, now: f.now)
            let expected = try Oracle.search(f.all, q)
            let got = await engine(f.all, q)
            #expect(got.hits == expected, "\(args) \(pattern.map { "\($0)" } ?? ""): engine \(got.hits), oracle \(expected)")
            #expect(got.errors.isEmpty)
        }
    }

    /// The expected answers themselves, so that engine and oracle cannot agree on a wrong reading.
    @Test func fixtureAnswers() async throws {
        let f = try SearchFixture()
        defer { f.remove() }
        func ids(_ args: [String], _ pattern: TextPattern? = nil) async throws -> [String] {
            await engine(f.all, try query(args, pattern: pattern, now: f.now)).hits.map(\.description)
        }
        #expect(try await ids(["--decision", "deny"]) == ["aaaaaaaa:x2", "bbbbbbbb:x3", "cccccccc:x2"])
        #expect(try await ids(["--decision", "approved"]) == ["aaaaaaaa:x3", "bbbbbbbb:x4"])
        #expect(try await ids(["--table", "pii.users", "--decision", "deny"]) == ["aaaaaaaa:x2"])
        #expect(try await ids(["--kind", "session-end"]) == ["aaaaaaaa:#33", "bbbbbbbb:#21", "cccccccc:#8"])
        #expect(try await ids(["--function", "pg_sleep"]) == ["aaaaaaaa:x5"])
        #expect(try await ids(["--status", "4xx"]) == ["bbbbbbbb:x3", "bbbbbbbb:x5"])
        #expect(try await ids(["--masked"]) == ["aaaaaaaa:x1", "aaaaaaaa:x7"])
        #expect(try await ids(["--since", "1h"]) == ["bbbbbbbb:x1", "bbbbbbbb:x2", "bbbbbbbb:x3", "bbbbbbbb:x4", "bbbbbbbb:x5"])
        #expect(try await ids(["--since", "1d", "--until", "1h"]).count == 8)
        #expect(try await ids([], TextPattern(patterns: ["4242"], scope: .responses)) == ["aaaaaaaa:x7"])
        #expect(try await ids([], TextPattern(patterns: ["root:x"], scope: .requests)) == [])
        #expect(try await ids([], TextPattern(patterns: ["root:x"], scope: .responses)) == ["bbbbbbbb:x4"])
        #expect(try await ids(["--path", "/api"]) == ["bbbbbbbb:x1"])
        #expect(try await ids(["--prompt", "p-1"]) == ["aaaaaaaa:x1"])
    }

    /// Random combinations of filters over a realistic synthetic corpus with small blocks.
    @Test func randomQueriesOnASyntheticCorpus() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sessgrep-corpus-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var writer = WriterOptions()
        writer.blockTargetBytes = 4096
        writer.durability = .none
        writer.maxBlockAge = .seconds(3600)
        let start = Int64(1_795_000_000) * 1_000_000
        let result = try Corpus.write(CorpusOptions(directory: dir.path, sessions: 12, eventsPerSession: 600, seed: 11, start: start,
                                                    writer: writer, dated: false), key: SigningKey())
        let files = result.files.sorted()
        var rng = SystemRandomNumberGenerator()
        let pools: [[String]] = [
            ["--subject", "alice@example.com"], ["--subject", "*@contractors.example.com"], ["--group", "oncall"],
            ["--target", "orders-db"], ["--protocol", "kubernetes"], ["--decision", "deny"], ["--decision", "review"],
            ["--decision", "approved"], ["--decision", "expired"], ["--decision", "denied"], ["--kind", "mask-summary"],
            ["--kind", "stream"], ["--table", "public.payments"], ["--table", "analytics.*"], ["--table", "customers"],
            ["--statement", "delete"], ["--statement", "insert"], ["--function", "now"], ["--verb", "list"],
            ["--namespace", "payments"], ["--resource", "secrets"], ["--subresource", "exec"], ["--subresource", "log"],
            ["--status", "2xx"], ["--status", "403"], ["--masked"], ["--masked=email"], ["--method", "DELETE"],
            ["--path", "/api/v1/namespaces/*/pods*"], ["--since", "2026-11-18T09:00:00Z"], ["--until", "2026-11-18T10:00:00Z"],
        ]
        let patterns: [TextPattern] = [
            TextPattern(patterns: ["DELETE FROM"], fixed: true), TextPattern(patterns: ["card_number"]),
            TextPattern(patterns: ["4242"], scope: .responses), TextPattern(patterns: ["^SELECT.*LIMIT"]),
            TextPattern(patterns: ["ERROR|error"], scope: .all), TextPattern(patterns: ["paid"], invert: true, scope: .responses),
            TextPattern(patterns: ["where"], ignoreCase: true),
        ]
        var nonEmpty = 0
        for _ in 0..<60 {
            var args: [String] = []
            for _ in 0..<Int.random(in: 1...3, using: &rng) { args += pools.randomElement(using: &rng)! }
            let pattern = Bool.random(using: &rng) ? patterns.randomElement(using: &rng) : nil
            let q = try query(args, pattern: pattern, now: start)
            let expected = try Oracle.search(files, q)
            let got = await engine(files, q, parallelism: Int.random(in: 1...4, using: &rng))
            #expect(got.hits == expected, "\(args) \(pattern.map { "\($0)" } ?? "")")
            if !expected.isEmpty { nonEmpty += 1 }
        }
        #expect(nonEmpty > 10, "the random queries should find something often enough to mean anything")
    }

    /// The index does its job: a selective query decompresses fewer blocks than there are, and still
    /// finds what a full scan finds.
    @Test func selectiveQueriesSkipBlocks() async throws {
        let f = try SearchFixture(blockBytes: 200)
        defer { f.remove() }
        let q = try query(["--prompt", "p-1"], now: f.now)
        let got = await engine(f.all, q)
        #expect(got.hits.map(\.description) == ["aaaaaaaa:x1"])
        #expect(got.stats.filesSkippedByIndex == 2, "\(got.stats.line)")
        #expect(got.stats.blocks > 10)
        #expect(got.stats.blocksDecompressed > 0 && got.stats.blocksDecompressed * 3 < got.stats.blocks, "\(got.stats.line)")

        // A field that only the header knows skips whole files unread.
        let bob = await engine(f.all, try query(["--subject", "bob@example.com"], now: f.now))
        #expect(bob.stats.filesSkippedByHeader == 2)
        // The footer's summary: no file but one has an expired approval... or any approval at all.
        let expired = await engine(f.all, try query(["--decision", "expired"], now: f.now))
        #expect(expired.stats.filesSkippedBySummary == 1, "\(expired.stats.line)")
        // A deny in the middle of a long session: only the blocks around it.
        let deny = await engine([f.path(SearchFixture.analytics)], try query(["--decision", "deny"], now: f.now))
        #expect(deny.hits.map(\.description) == ["aaaaaaaa:x2"])
        #expect(deny.stats.blocksDecompressed < deny.stats.blocks, "\(deny.stats.line)")
    }

    /// Without exchange spans (a file with no footer, as a crash leaves it, or a 1.0 file) nothing
    /// may be skipped wrongly: every block of a file with a candidate is read, results are the same.
    @Test func filesWithoutSpansGiveTheSameAnswers() async throws {
        let f = try SearchFixture(blockBytes: 200)
        defer { f.remove() }
        let sealed = try CaptureFile(path: f.path(SearchFixture.analytics))
        let cut = f.path("cut.sesscap")
        let footerAt = Int(sealed.trailer!.footerOffset)
        try Data(try Data(contentsOf: URL(fileURLWithPath: sealed.path)).prefix(footerAt)).write(to: URL(fileURLWithPath: cut))
        let unsealed = try CaptureFile(path: cut)
        #expect(!unsealed.state.isSealed && unsealed.blocks.allSatisfy { $0.exchangeSpan == nil })
        for (args, pattern) in Self.fixtureQueries {
            let q = try query(args, pattern: pattern, now: f.now)
            let a = await engine([sealed.path], q), b = await engine([cut], q)
            #expect(a.hits == b.hits, "\(args)")
            #expect(b.hits == (try Oracle.search([cut], q)), "\(args)")
        }
        // The committed samples are format 1.0 (no spans) and agree with the oracle too.
        let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("samples")
        let paths = try FileManager.default.contentsOfDirectory(atPath: samples.path).filter { $0.hasSuffix(".sesscap") }.sorted()
            .map { samples.appendingPathComponent($0).path }
        for (args, pattern) in Self.fixtureQueries + [(["--table", "analytics.events"], nil), (["--decision", "review"], nil)] {
            let q = try query(args, pattern: pattern, now: f.now)
            #expect(await engine(paths, q).hits == (try Oracle.search(paths, q)), "\(args)")
        }
    }

    /// An exchange that straddles blocks is returned whole: every event, in order, in --json.
    @Test func straddlingExchangesAreComplete() async throws {
        let f = try SearchFixture(blockBytes: 200)
        defer { f.remove() }
        let capture = try CaptureFile(path: f.path(SearchFixture.kubernetes))
        var blocksOf: [UInt64: Set<Int>] = [:]
        var eventsOf: [UInt64: [UInt64]] = [:]
        for (i, b) in capture.blocks.enumerated() {
            for e in try capture.events(in: b) where e.exchangeID != 0 {
                blocksOf[e.exchangeID, default: []].insert(i)
                eventsOf[e.exchangeID, default: []].append(e.sequence)
            }
        }
        #expect(blocksOf[4]!.count > 2, "the exec exchange should span several blocks")
        let options = SearchOptions(renderer: ExchangeRenderer(json: true, terminal: Terminal(environment: [:])), parallelism: 3)
        var lines: [String] = []
        await CaptureSearch.run(paths: [capture.path], query: try query(["--subresource", "exec"], now: f.now), options: options) { o in
            lines += o.output
            return true
        }
        #expect(lines.count == 1)
        let j = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        let seqs = (j["events"] as! [[String: Any]]).map { UInt64($0["seq"] as! Int) }
        #expect(seqs == eventsOf[4])
        #expect(j["outcome"] as? String == "approved")
    }
}
