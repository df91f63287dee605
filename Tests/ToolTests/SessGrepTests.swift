import CaptureFormat
import Foundation
import TestSupport
import Testing

func sessgrep(_ arguments: [String], environment: [String: String] = ["NO_COLOR": ""]) throws -> Output {
    var env = environment
    env["TOLLGATE_CAPTURES"] = env["TOLLGATE_CAPTURES"] ?? ""
    return try run(tool("sessgrep").path, arguments, environment: env)
}

/// `SESSION8:xN` (or `SESSION8:#SEQ`) of each output line, in order.
func ids(_ o: Output) -> [String] {
    o.stdout.split(separator: "\n").map { String($0.split(separator: " ")[0]) }
}

/// Exchange ids from --json output, as `SESSION8:xN`.
func jsonIDs(_ o: Output) throws -> [String] {
    try jsonLines(o.stdout).map { j in
        let session = String((j["session"] as! String).prefix(8))
        if let x = j["exchange"] as? Int { return "\(session):x\(x)" }
        let seq = ((j["events"] as! [[String: Any]])[0]["seq"] as! Int)
        return "\(session):#\(seq)"
    }
}

/// key=value pairs of `--stats`.
func stats(_ o: Output) -> [String: Int] {
    guard let line = o.stderr.split(separator: "\n").first(where: { $0.hasPrefix("sessgrep: stats:") }) else { return [:] }
    var out: [String: Int] = [:]
    for pair in line.dropFirst("sessgrep: stats:".count).split(separator: " ") {
        let kv = pair.split(separator: "=")
        if kv.count == 2, let v = Int(kv[1]) { out[String(kv[0])] = v }
    }
    return out
}

@Suite("sessgrep")
struct SessGrepTests {
    @Test func oneLinePerMatchingExchange() throws {
        let f = try SearchFixture()
        defer { f.remove() }
        let r = try sessgrep(["--decision", "deny", "-e", "", f.dir.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(ids(r) == ["aaaaaaaa:x2", "bbbbbbbb:x3", "cccccccc:x2"])
        let lines = r.stdout.split(separator: "\n")
        #expect(lines[0].contains(" alice@example.com analytics-db deny DELETE FROM pii.users WHERE id = 7"))
        #expect(lines[1].contains(" sam@example.com prod-cluster deny list secrets -n payments"))
        #expect(lines[2].contains(" bob@example.com orders-db deny TRUNCATE public.orders"))
        // Time: RFC 3339 UTC to the millisecond.
        #expect(lines[0].split(separator: " ")[1].count == "2026-11-20T09:14:03.034Z".count)
        #expect(!r.stdout.contains("\u{1B}["), "no colour when not a terminal")
        #expect(r.stderr.isEmpty)
    }

    /// Every filter from the command line, alone and combined (AND across fields, OR within one).
    @Test func everyFilter() throws {
        let f = try SearchFixture()
        defer { f.remove() }
        let cases: [([String], [String])] = [
            (["--subject", "alice@example.com", "--decision", "deny"], ["aaaaaaaa:x2"]),
            (["--subject", "*@example.com", "--group", "developers"], ["cccccccc:x1", "cccccccc:x2"]),
            (["--target", "prod-*", "--status", "404"], ["bbbbbbbb:x5"]),
            (["--protocol", "kubernetes", "--verb", "list"], ["bbbbbbbb:x2", "bbbbbbbb:x3"]),
            (["--session", "cccc", "--statement", "truncate"], ["cccccccc:x2"]),
            (["--decision", "expired", "--decision", "denied"], ["aaaaaaaa:x4"]),
            (["--decision", "approved"], ["aaaaaaaa:x3", "bbbbbbbb:x4"]),
            (["--decision", "review", "--table", "public.orders"], ["aaaaaaaa:x3", "aaaaaaaa:x4"]),
            (["--kind", "stream"], ["bbbbbbbb:x4"]),
            (["--kind", "session-start", "--subject", "bob*"], ["cccccccc:#1"]),
            (["--table", "pii.*", "--statement", "delete"], ["aaaaaaaa:x2"]),
            (["--table", "users"], ["aaaaaaaa:x1", "aaaaaaaa:x2"]),
            (["--table", "orders", "--table", "payments"], ["aaaaaaaa:x3", "aaaaaaaa:x4", "aaaaaaaa:x7", "cccccccc:x1", "cccccccc:x2"]),
            (["--function", "pg_sleep"], ["aaaaaaaa:x5"]),
            (["--method", "post"], ["bbbbbbbb:x4"]),
            (["--status", "4xx"], ["bbbbbbbb:x3", "bbbbbbbb:x5"]),
            (["--path", "/api/v1/namespaces/payments/*"], ["bbbbbbbb:x2", "bbbbbbbb:x3", "bbbbbbbb:x4"]),
            (["--path", "/api"], ["bbbbbbbb:x1"]),
            (["--namespace", "search"], ["bbbbbbbb:x5"]),
            (["--resource", "secrets"], ["bbbbbbbb:x3"]),
            (["--subresource", "exec"], ["bbbbbbbb:x4"]),
            (["--masked"], ["aaaaaaaa:x1", "aaaaaaaa:x7"]),
            (["--masked=credit_card"], ["aaaaaaaa:x7"]),
            (["--prompt", "p-1"], ["aaaaaaaa:x1"]),
            (["--trace", "00-\(SearchFixture.traceT1)-b7ad6b7169203331-01"], ["aaaaaaaa:x1"]),
            (["--since", "1h"], ["bbbbbbbb:x1", "bbbbbbbb:x2", "bbbbbbbb:x3", "bbbbbbbb:x4", "bbbbbbbb:x5"]),
            (["--since", "4d", "--until", "1d", "--decision", "deny"], ["cccccccc:x2"]),
            (["--since", "yesterday", "--decision", "deny", "--protocol", "postgres"], ["aaaaaaaa:x2"]),
            (["--subject", "nobody@example.com"], []),
        ]
        for (args, expected) in cases {
            let r = try sessgrep(args + ["--json", "-e", "", f.dir.path])
            #expect(r.status == (expected.isEmpty ? 1 : 0), "\(args): \(r.stderr)")
            #expect(try jsonIDs(r) == expected, "\(args)")
        }
    }

    @Test func patternsInRequestsAndResponses() throws {
        let f = try SearchFixture()
        defer { f.remove() }
        let cases: [([String], [String])] = [
            (["DELETE FROM [a-z.]+ WHERE"], ["aaaaaaaa:x2"]),
            (["-i", "delete from"], ["aaaaaaaa:x2"]),
            (["-F", "1/0"], ["aaaaaaaa:x8"]),
            (["1/0"], ["aaaaaaaa:x8"]),
            (["-F", "pii.users", "-v", "--subject", "alice*"], ["aaaaaaaa:x3", "aaaaaaaa:x4", "aaaaaaaa:x5", "aaaaaaaa:x6", "aaaaaaaa:x7", "aaaaaaaa:x8"]),
            (["secret-token-\\d+"], ["aaaaaaaa:x6"]),          // a bound parameter
            (["4242"], []),                                   // only in a response
            (["--in", "responses", "4242"], ["aaaaaaaa:x7"]),
            (["--in", "responses", "division by zero"], ["aaaaaaaa:x8"]),
            (["--in", "all", "root:x:0"], ["bbbbbbbb:x4"]),
            (["--in", "requests", "root:x:0"], []),
            (["cat /etc/passwd"], ["bbbbbbbb:x4"]),           // stdin of an exec
            (["^POST /api/v1/namespaces/payments/pods/[^/]+/exec"], ["bbbbbbbb:x4"]),
            (["-e", "TRUNCATE", "-e", "pg_sleep"], ["aaaaaaaa:x5", "cccccccc:x2"]),
        ]
        for (args, expected) in cases {
            let operands = args.contains("-e") ? [f.dir.path] : [f.dir.path]
            let r = try sessgrep(["--json"] + args + operands)
            #expect(r.status == (expected.isEmpty ? 1 : 0), "\(args): \(r.stderr)")
            #expect(try jsonIDs(r) == expected, "\(args)")
        }
        let bad = try sessgrep(["(unclosed", f.dir.path])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("bad regular expression"))
    }

    @Test func countsListsQuietAndContext() throws {
        let f = try SearchFixture()
        defer { f.remove() }
        let counts = try sessgrep(["-c", "--decision", "allow", "-e", "", f.dir.path])
        #expect(counts.status == 0)
        #expect(counts.stdout == "\(f.path(SearchFixture.analytics)):5\n\(f.path(SearchFixture.kubernetes)):3\n\(f.path(SearchFixture.orders)):1\n")
        let one = try sessgrep(["-c", "--decision", "expired", "-e", "", f.path(SearchFixture.orders)])
        #expect(one.status == 1)
        #expect(one.stdout == "0\n")
        let jsonCount = try jsonLines(try sessgrep(["-c", "--json", "--masked", "-e", "", f.dir.path]).stdout)
        #expect(jsonCount.count == 1 && jsonCount[0]["count"] as? Int == 2 && jsonCount[0]["subject"] as? String == "alice@example.com")

        let files = try sessgrep(["-l", "--decision", "deny", "-e", "", f.dir.path])
        #expect(files.stdout == f.all.map { $0 + "\n" }.joined())
        let none = try sessgrep(["-l", "--decision", "expired", "--protocol", "kubernetes", "-e", "", f.dir.path])
        #expect(none.status == 1 && none.stdout.isEmpty)

        let quiet = try sessgrep(["-q", "--prompt", "p-1", "-e", "", f.dir.path])
        #expect(quiet.status == 0 && quiet.stdout.isEmpty)
        #expect(try sessgrep(["-q", "--prompt", "p-9", "-e", "", f.dir.path]).status == 1)

        // Context: exchanges before and after, '-' marks them, '--' separates groups (also across files).
        let ctx = try sessgrep(["-B1", "-A1", "--decision", "deny", "-e", "", f.dir.path])
        #expect(ids(ctx) == ["aaaaaaaa-x1", "aaaaaaaa:x2", "aaaaaaaa-x3", "--", "bbbbbbbb-x2", "bbbbbbbb:x3", "bbbbbbbb-x4", "--",
                             "cccccccc-x1", "cccccccc:x2"])
        let both = try sessgrep(["-C", "2", "--function", "pg_sleep", "-e", "", f.path(SearchFixture.analytics)])
        #expect(ids(both) == ["aaaaaaaa-x3", "aaaaaaaa-x4", "aaaaaaaa:x5", "aaaaaaaa-x6", "aaaaaaaa-x7"])
        let adjacent = try sessgrep(["-A1", "--decision", "approved", "--decision", "expired", "-e", "", f.path(SearchFixture.analytics)])
        #expect(ids(adjacent) == ["aaaaaaaa:x3", "aaaaaaaa:x4", "aaaaaaaa-x5"])
        let jsonContext = try jsonLines(try sessgrep(["--json", "-B1", "--resource", "secrets", "-e", "", f.dir.path]).stdout)
        #expect(jsonContext.map { $0["context"] as? Bool ?? false } == [true, false])

        #expect(try sessgrep(["-c", "-l", "-e", "", f.dir.path]).status == 2)
    }

    @Test func jsonLinesCarryTheWholeExchange() throws {
        let f = try SearchFixture()
        defer { f.remove() }
        let r = try sessgrep(["--json", "--decision", "approved", "--protocol", "postgres", "-e", "", f.dir.path])
        let objects = try jsonLines(r.stdout)
        #expect(objects.count == 1)
        let x = objects[0]
        #expect(x["file"] as? String == f.path(SearchFixture.analytics))
        #expect(x["session"] as? String == "aaaaaaaa-0000-4000-8000-000000000001")
        #expect(x["exchange"] as? Int == 3)
        #expect(x["subject"] as? String == "alice@example.com")
        #expect(x["groups"] as? [String] == ["ai-assistants", "analysts"])
        #expect(x["target"] as? String == "analytics-db")
        #expect(x["protocol"] as? String == "postgres")
        #expect(x["outcome"] as? String == "approved")
        let events = try #require(x["events"] as? [[String: Any]])
        #expect(events.map { $0["kind"] as? String } == ["request", "decision", "approval", "approval", "response"])
        #expect(events[0]["statement"] as? String == "UPDATE public.orders SET status = 'shipped' WHERE id = 42")
        #expect(events[3]["state"] as? String == "granted" && events[3]["by"] as? String == "dba@example.com")
        #expect(events[4]["command_tag"] as? String == "UPDATE 1")
        #expect(Set(events.map { $0["exchange"] as? Int }) == [3])
    }

    @Test func exitCodesAndLocations() throws {
        let f = try SearchFixture()
        defer { f.remove() }
        #expect(try sessgrep(["--decision", "deny", "-e", "", f.dir.path]).status == 0)
        #expect(try sessgrep(["--decision", "deny", "--subject", "nobody", "-e", "", f.dir.path]).status == 1)
        let missing = try sessgrep(["-e", "", f.path("missing.sesscap")])
        #expect(missing.status == 2 && missing.stderr.contains("missing.sesscap: no such file or directory"))
        #expect(try sessgrep(["--decision", "maybe", "-e", "", f.dir.path]).status == 2)
        #expect(try sessgrep(["-v", "-e", "", f.dir.path]).status == 2)

        // The capture directory: PATH, else --config's proxy.captures, else $TOLLGATE_CAPTURES, else an error.
        let nothing = try sessgrep(["--decision", "deny"])
        #expect(nothing.status == 2)
        #expect(nothing.stderr.contains("no captures to search"))
        // An existing file that is no capture is still the PATTERN (as in grep), with a hint.
        let readme = repositoryRoot.appendingPathComponent("README.md").path
        let hinted = try sessgrep(["--decision", "deny", readme])
        #expect(hinted.status == 2 && hinted.stderr.contains("was taken as PATTERN"), "\(hinted.stderr)")
        let env = try sessgrep(["-c", "--decision", "deny"], environment: ["TOLLGATE_CAPTURES": f.dir.path])
        #expect(env.status == 0 && env.stdout.split(separator: "\n").count == 3)
        let config = f.path("gate.yaml")
        try """
            proxy:
              id: test-gate
              captures: \(f.dir.path)
              signing_key: \(f.path("signing.key"))
            identity:
              issuer: http://127.0.0.1:9400
              audiences: [tollgate]
            targets:
              demo:
                protocol: postgres
                listen: 127.0.0.1:6432
                upstream: 127.0.0.1:5432
                credentials: {user: gate, password_env: SESSGREP_TEST_UNSET_PASSWORD}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let fromConfig = try sessgrep(["--config", config, "-l", "--decision", "deny"])
        #expect(fromConfig.status == 0, "\(fromConfig.stderr)")
        #expect(fromConfig.stdout.split(separator: "\n").count == 3)
        let badConfig = try sessgrep(["--config", f.path("nope.yaml"), "--decision", "deny"])
        #expect(badConfig.status == 2 && badConfig.stderr.contains("nope.yaml"))

        let help = try sessgrep(["--help"])
        #expect(help.status == 0 && help.stdout.contains("--masked") && help.stdout.contains("--since"))
    }

    /// A truncated and a corrupted capture among good ones: both reported with block and byte,
    /// both searched as far as they can be read; the damage makes the exit status 2 (grep's rule).
    @Test func damagedCapturesAmongGoodOnes() throws {
        let f = try SearchFixture(blockBytes: 300)
        defer { f.remove() }
        let good = f.path(SearchFixture.analytics)
        let capture = try CaptureFile(path: good)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))

        // Cut inside a block near the end, as by a crash.
        let victim = capture.blocks[capture.blocks.count - 2]
        let cutAt = Int(victim.offset) + Int(victim.length) / 2
        let truncated = f.path("d-truncated.sesscap")
        try bytes.prefix(cutAt).write(to: URL(fileURLWithPath: truncated))
        // A flipped byte in an early block's payload of a sealed copy.
        var flipped = bytes
        let bad = capture.blocks[3]
        flipped[bad.payloadOffset + 5] ^= 0x20
        let corrupt = f.path("e-corrupt.sesscap")
        try flipped.write(to: URL(fileURLWithPath: corrupt))
        // Not a capture at all.
        try "hello\n".write(toFile: f.path("f-junk.sesscap"), atomically: true, encoding: .utf8)

        let r = try sessgrep(["-c", "-e", "", f.dir.path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("d-truncated.sesscap: not sealed"))
        #expect(r.stderr.contains("block \(capture.blocks.count - 2) at byte \(victim.offset)"))
        #expect(r.stderr.contains("e-corrupt.sesscap: block 3 at byte"))
        #expect(r.stderr.contains("CRC mismatch"))
        #expect(r.stderr.contains("f-junk.sesscap: not a Tollgate capture"))
        // Good files fully, the damaged ones as far as they can be read.
        let counted = Dictionary(uniqueKeysWithValues: r.stdout.split(separator: "\n").map { line -> (String, Int) in
            let i = line.lastIndex(of: ":")!
            return (String((line[..<i] as Substring).split(separator: "/").last!), Int(line[line.index(after: i)...])!)
        })
        #expect(counted[SearchFixture.analytics] == 8 && counted[SearchFixture.kubernetes] == 5 && counted[SearchFixture.orders] == 2)
        #expect((1..<8).contains(counted["d-truncated.sesscap"] ?? 0), "\(counted)")
        #expect((1...8).contains(counted["e-corrupt.sesscap"] ?? 0), "\(counted)")
        // Blocks after the damaged one are still searched; nothing after the cut is invented.
        let late = try sessgrep(["-l", "-F", "1/0", f.dir.path])
        #expect(late.stdout.contains("e-corrupt.sesscap") && !late.stdout.contains("d-truncated.sesscap"), "\(late.stdout)")
        let early = try sessgrep(["-l", "--prompt", "p-1", "-e", "", f.dir.path])
        #expect(early.stdout.contains("d-truncated.sesscap"))

        // A file without its footer (as a crash leaves it) and with a damaged block in the middle: the walk
        // stops there, which is damage, not a cut-off end.
        var unsealed = Array(bytes.prefix(Int(capture.trailer!.footerOffset)))
        unsealed[capture.blocks[2].payloadOffset + 3] ^= 0x01
        try Data(unsealed).write(to: URL(fileURLWithPath: f.path("g-unsealed-damaged.sesscap")))
        let walk = try sessgrep(["-l", "--kind", "session-start", "-e", "", f.path("g-unsealed-damaged.sesscap")])
        #expect(walk.status == 2)
        #expect(walk.stderr.contains("g-unsealed-damaged.sesscap: damaged: searched its 2 blocks before the damage"), "\(walk.stderr)")
        #expect(walk.stderr.contains("block 2 at byte \(capture.blocks[2].offset)") && walk.stderr.contains("CRC mismatch"))
        #expect(walk.stdout.contains("g-unsealed-damaged.sesscap"), "what lies before the damage is still found")
        try FileManager.default.removeItem(atPath: f.path("g-unsealed-damaged.sesscap"))

        // Only a truncated file among good ones: a note, not an error (a live session's file looks the same).
        try FileManager.default.removeItem(atPath: corrupt)
        try FileManager.default.removeItem(atPath: f.path("f-junk.sesscap"))
        let cut = try sessgrep(["-c", "-e", "", f.dir.path])
        #expect(cut.status == 0, "\(cut.stderr)")
        #expect(cut.stderr.contains("not sealed (still being written, or cut off)"))
        // -q stops at the first match: exit 0 even though a later file is damaged.
        try flipped.write(to: URL(fileURLWithPath: f.path("z-corrupt.sesscap")))
        #expect(try sessgrep(["-q", "-e", "", f.dir.path]).status == 0)
    }

    @Test func statsShowWhatTheIndexSkipped() throws {
        let f = try SearchFixture(blockBytes: 200)
        defer { f.remove() }
        let r = try sessgrep(["--stats", "--prompt", "p-1", "-e", "", f.dir.path])
        #expect(ids(r) == ["aaaaaaaa:x1"])
        let s = stats(r)
        #expect(s["files"] == 3 && s["skipped_by_index"] == 2, "\(r.stderr)")
        #expect(s["decompressed"]! > 0 && s["decompressed"]! * 3 < s["blocks"]!, "\(r.stderr)")
        let all = stats(try sessgrep(["--stats", "-c", "-e", "", f.dir.path]))
        #expect(all["decompressed"] == all["blocks"])
        let header = stats(try sessgrep(["--stats", "--subject", "sam*", "-e", "", f.dir.path]))
        #expect(header["skipped_by_header"] == 2)
    }

    /// The committed samples, including the real capture the gate recorded.
    @Test func committedSamples() throws {
        let samples = repositoryRoot.appendingPathComponent("samples").path
        let gate = samples + "/postgres-gate-psql.sesscap"
        let prompt = try sessgrep(["--prompt", "prm_revenue_by_country", "-e", "", gate])
        #expect(prompt.status == 0 && ids(prompt) == ["680a701c:x1"])
        // The division by zero reads customers, which a masking rule covers: its message is withheld (format 1.4 flags it).
        let error = try sessgrep(["--in", "responses", "SQLSTATE 22012", gate])
        #expect(ids(error) == ["680a701c:x5"])
        let copy = try sessgrep(["--in", "responses", "-c", "^2026-02-01,", gate])
        #expect(copy.stdout == "1\n")
        let deny = try sessgrep(["-c", "--decision", "deny", "-e", "", samples])
        #expect(deny.status == 0, "\(deny.stderr)")
        #expect(deny.stderr.contains("truncated.sesscap: not sealed"))
        let perFile = deny.stdout.split(separator: "\n").map { $0.split(separator: "/").last! }
        #expect(perFile == ["denied-review.sesscap:8", "kubernetes-exec.sesscap:1", "postgres-analytics.sesscap:1", "postgres-gate-psql.sesscap:1",
                            "truncated.sesscap:1"])
        let secrets = try sessgrep(["--resource", "secrets", "--namespace", "payments", "-e", "", samples])
        #expect(ids(secrets) == ["a2c6263a:x9"])
        let masked = try sessgrep(["-l", "--masked=credit_card", "-e", "", samples])
        #expect(masked.stdout.split(separator: "\n").map { $0.split(separator: "/").last! } == ["kubernetes-gate-exec.sesscap", "postgres-analytics.sesscap", "postgres-gate-psql.sesscap"])
    }

    @Test func colourOnlyOnATerminalAndNeverWithNoColor() throws {
        let f = try SearchFixture()
        defer { f.remove() }
        let command = "\(tool("sessgrep").path) --decision deny -e '' \(f.dir.path)"
        // script(1) gives the command a pseudo-terminal.
        let tty = try run("/usr/bin/script", ["-qec", command, "/dev/null"], environment: ["NO_COLOR": "", "TERM": "xterm"])
        #expect(tty.stdout.contains("\u{1B}[31;1mdeny\u{1B}[0m"), "\(tty.stdout)")
        let noColor = try run("/usr/bin/script", ["-qec", command, "/dev/null"], environment: ["NO_COLOR": "1", "TERM": "xterm"])
        #expect(noColor.stdout.contains("deny") && !noColor.stdout.contains("\u{1B}["))
        // The pattern's matches in the request are marked, as grep marks them.
        let marked = try run("/usr/bin/script", ["-qec", "\(tool("sessgrep").path) -i 'delete from [a-z.]+' \(f.dir.path)", "/dev/null"],
                             environment: ["NO_COLOR": "", "TERM": "xterm"])
        #expect(marked.stdout.contains("\u{1B}[1;35mDELETE FROM pii.users\u{1B}[0m WHERE id = 7"), "\(marked.stdout)")
    }

    /// A first operand that names a capture directory or file is a PATH, not a PATTERN.
    @Test func filtersAloneOverAPathOperand() throws {
        let samples = repositoryRoot.appendingPathComponent("samples").path
        let withE = try sessgrep(["-c", "--decision", "deny", "-e", "", samples])
        let without = try sessgrep(["-c", "--decision", "deny", samples])
        #expect(without.status == 0, "\(without.stderr)")
        #expect(without.stdout == withE.stdout && !without.stdout.isEmpty)
        let file = try sessgrep(["-l", "--decision", "deny", samples + "/denied-review.sesscap"])
        #expect(file.stdout.contains("denied-review.sesscap"), "\(file.stdout)\(file.stderr)")
        // Not a path: still the pattern, as in grep.
        let pattern = try sessgrep(["-c", "no-such-statement-text", samples])
        #expect(pattern.status == 1)
    }
}
