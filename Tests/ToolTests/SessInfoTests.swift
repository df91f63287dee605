import CaptureFormat
import Foundation
import TestSupport
import Testing

func sessinfo(_ arguments: [String]) throws -> Output {
    try run(tool("sessinfo").path, arguments)
}

func jsonLines(_ text: String) throws -> [[String: Any]] {
    try text.split(separator: "\n").map { line in
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(obj as? [String: Any])
    }
}

/// A session of `exchanges` request/decision/response triples, written with small blocks.
struct Fixture {
    let dir: URL
    let key: SigningKey
    let path: String
    let events: Int

    init(exchanges: Int = 40, close: Bool = true) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("sessinfo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        key = SigningKey()
        path = dir.appendingPathComponent("s.sesscap").path
        var options = WriterOptions()
        options.blockTargetBytes = 1024
        options.durability = .none
        let header = SessionHeader(sessionID: "7d5c1c1e-0000-4000-8000-000000000001", target: "analytics-db",
                                   protocolName: "postgres", subject: "alice@example.com", groups: ["ai-assistants"],
                                   proxyID: "gate-1", startMicros: 1_790_000_000_000_000)
        let w = try CaptureWriter(path: path, header: header, key: key, options: options)
        var t: Int64 = 1_790_000_000_000_000
        func add(_ p: Payload, _ x: UInt64 = 0) throws {
            t += 1500
            try w.append(Event(monotonicNanos: UInt64(t - 1_790_000_000_000_000) * 1000, wallMicros: t, exchangeID: x, payload: p))
        }
        try add(.sessionStart(SessionStart(clientAddress: "127.0.0.1:50000", applicationName: "psql")))
        for i in 1...exchanges {
            let x = UInt64(i)
            try add(.request(.postgres(PostgresRequest(text: "SELECT id, email FROM analytics.users WHERE id = $1", path: .extended,
                                                      parameters: [Parameter(text: "\(i)")],
                                                      resources: [Resource(schema: "analytics", name: "users", access: .read)]))), x)
            try add(.decision(Decision(action: i % 10 == 0 ? .deny : .allow, policy: "copilot", rule: i % 10 == 0 ? "no-writes" : "read-analytics")), x)
            if i % 10 != 0 {
                try add(.response(.postgres(PostgresResponse(columns: [Column(name: "id", typeOID: 23), Column(name: "email", typeOID: 25)],
                                                            rows: [[Array("\(i)".utf8), Array("a****@example.com".utf8)]],
                                                            rowCount: 1, commandTag: "SELECT 1"))), x)
                try add(.maskSummary(MaskSummary(entries: [MaskCount(detector: "email", count: 1, location: "email")])), x)
            }
        }
        try add(.sessionEnd(SessionEnd(reason: "client-terminate")))
        events = 2 + exchanges * 2 + (exchanges - exchanges / 10) * 2
        if close { try w.close() } else { try w.flush() }
    }

    func file(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func publicKey() throws -> String {
        let p = file("pub.pem")
        try key.publicKeyPEM.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    func privateKey() throws -> String {
        let p = file("key.pem")
        _ = try SigningKey.loadOrCreate(path: p)
        return p
    }

    func remove() { try? FileManager.default.removeItem(at: dir) }
}

@Suite("sessinfo")
struct SessInfoTests {
    @Test func summaryReadsTheFooter() throws {
        let f = try Fixture()
        defer { f.remove() }
        let r = try sessinfo([f.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("alice@example.com (groups: ai-assistants)"))
        #expect(r.stdout.contains("analytics-db (postgres)"))
        #expect(r.stdout.contains("sealed (clean close)"))
        #expect(r.stdout.contains("deny 4"))
        #expect(!r.stdout.contains("\u{1B}["), "no colour when not a terminal")

        let j = try #require(try jsonLines(try sessinfo(["--json", f.path]).stdout).first)
        #expect(j["events"] as? Int == f.events)
        #expect(j["session"] as? String == "7d5c1c1e-0000-4000-8000-000000000001")
        #expect((j["decisions"] as? [String: Int]) == ["allow": 36, "deny": 4])
        #expect((j["masked"] as? [String: Int]) == ["email": 36])
        #expect((j["resources"] as? [String]) == ["analytics.users"])
        #expect((j["state"] as? [String: Any])?["sealed"] as? Bool == true)
        #expect(j["blocks"] as? Int ?? 0 > 1)
    }

    @Test func eventsAsJSONLinesWithFilters() throws {
        let f = try Fixture()
        defer { f.remove() }
        let all = try jsonLines(try sessinfo(["--events", "--json", f.path]).stdout)
        #expect(all.count == f.events)
        #expect(all.map { $0["seq"] as? Int } == (1...f.events).map { $0 })
        #expect(all.first?["kind"] as? String == "session-start")
        let req = try #require(all.first { $0["kind"] as? String == "request" })
        #expect(req["statement"] as? String == "SELECT id, email FROM analytics.users WHERE id = $1")
        #expect(req["parameters"] as? [String] == ["1"])

        let denies = try jsonLines(try sessinfo(["--events", "--json", "--kind", "decision", f.path]).stdout)
        #expect(denies.count == 40)
        #expect(denies.filter { $0["decision"] as? String == "deny" }.count == 4)

        let later = try jsonLines(try sessinfo(["--events", "--json", "--from-seq", "100", "--limit", "5", f.path]).stdout)
        #expect(later.map { $0["seq"] as? Int } == [100, 101, 102, 103, 104])

        let text = try sessinfo(["--events", "--limit", "3", f.path])
        #expect(text.status == 0)
        #expect(text.stdout.split(separator: "\n").count == 3)
        #expect(text.stdout.contains("[extended] SELECT id, email FROM analytics.users"))
    }

    @Test func verifyPassesAndPinsTheKey() throws {
        let f = try Fixture()
        defer { f.remove() }
        let ok = try sessinfo(["--verify", f.path])
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.hasPrefix("OK"))
        let pinned = try sessinfo(["--verify", "--key", try f.publicKey(), "--json", f.path])
        #expect(pinned.status == 0)
        let j = try #require(try jsonLines(pinned.stdout).first)
        #expect(j["valid"] as? Bool == true)
        #expect(j["key_pinned"] as? Bool == true)

        // The key may come through a pipe (`--key <(capture-proxy public-key …)`): read once.
        let piped = try run(tool("sessinfo").path, ["--verify", "--key", "/dev/stdin", f.path], stdin: f.key.publicKeyPEM)
        #expect(piped.status == 0, "\(piped.stdout)\(piped.stderr)")

        let other = f.file("other.pem")
        try SigningKey().publicKeyPEM.write(toFile: other, atomically: true, encoding: .utf8)
        let wrong = try sessinfo(["--verify", "--key", other, f.path])
        #expect(wrong.status == 1)
        #expect(wrong.stdout.contains("not the trusted key"))
    }

    @Test func verifyNamesTheDamagedBlock() throws {
        let f = try Fixture()
        defer { f.remove() }
        let capture = try CaptureFile(path: f.path)
        let block = capture.blocks[2]
        var bytes = try Data(contentsOf: URL(fileURLWithPath: f.path))
        let at = block.payloadOffset + 3
        bytes[at] ^= 0x40
        let bad = f.file("bad.sesscap")
        try bytes.write(to: URL(fileURLWithPath: bad))
        let r = try sessinfo(["--verify", bad])
        #expect(r.status == 1)
        #expect(r.stdout.contains("FAILED"))
        #expect(r.stdout.contains("block 2"))
        let j = try #require(try jsonLines(try sessinfo(["--verify", "--json", bad]).stdout).first)
        let first = try #require((j["problems"] as? [[String: Any]])?.first)
        #expect(first["location"] as? String == "block 2")
        #expect(first["offset"] as? Int ?? 0 >= Int(block.offset))
        #expect(first["offset"] as? Int ?? .max < Int(block.offset) + Int(block.length))

        // A changed header byte is a failed check naming the header, not unreadable input.
        var headerFlip = try Data(contentsOf: URL(fileURLWithPath: f.path))
        headerFlip[30] ^= 0x01
        let hbad = f.file("header.sesscap")
        try headerFlip.write(to: URL(fileURLWithPath: hbad))
        let h = try sessinfo(["--verify", hbad])
        #expect(h.status == 1)
        #expect(h.stdout.contains("header at byte"))
        #expect(h.stdout.contains("CRC mismatch"))
    }

    @Test func truncatedFileIsReportedAndRecovered() throws {
        let f = try Fixture()
        defer { f.remove() }
        let capture = try CaptureFile(path: f.path)
        let cutAt = Int(capture.blocks[3].offset) + 10
        let cut = f.file("cut.sesscap")
        try Data(contentsOf: URL(fileURLWithPath: f.path)).prefix(cutAt).write(to: URL(fileURLWithPath: cut))

        let summary = try sessinfo([cut])
        #expect(summary.status == 0)
        #expect(summary.stdout.contains("TRUNCATED"))
        #expect(summary.stdout.contains("complete blocks end at byte \(capture.blocks[3].offset)"))

        let verify = try sessinfo(["--verify", cut])
        #expect(verify.status == 1)

        let out = f.file("recovered.sesscap")
        let rec = try sessinfo(["--recover", out, "--sign-key", try f.privateKey(), cut])
        #expect(rec.status == 0, "\(rec.stderr)")
        #expect(rec.stdout.contains("kept 3 blocks"))
        let again = try sessinfo(["--verify", "--json", out])
        #expect(again.status == 0, "\(again.stdout)")
        let j = try #require(try jsonLines(again.stdout).first)
        #expect(j["recovered"] as? Bool == true)
        let attributes = try FileManager.default.attributesOfItem(atPath: out)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        let sealed = try sessinfo(["--recover", f.file("again.sesscap"), "--sign-key", try f.privateKey(), f.path])
        #expect(sealed.status == 1)
        #expect(sealed.stderr.contains("nothing to recover"))
    }

    @Test func unreadableInputExitsTwo() throws {
        let f = try Fixture(exchanges: 2)
        defer { f.remove() }
        let text = f.file("notes.txt")
        try "hello\n".write(toFile: text, atomically: true, encoding: .utf8)
        let notCapture = try sessinfo([text])
        #expect(notCapture.status == 2)
        #expect(notCapture.stderr.contains("not a Tollgate capture"))

        let missing = try sessinfo(["--verify", f.file("missing.sesscap")])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("missing.sesscap"))

        let badArgs = try sessinfo(["--events", "--verify", f.path])
        #expect(badArgs.status == 2)
        #expect(badArgs.stderr.contains("choose one of"))

        let badKind = try sessinfo(["--events", "--kind", "nonsense", f.path])
        #expect(badKind.status == 2)

        let help = try sessinfo(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("--verify"))
    }
}
