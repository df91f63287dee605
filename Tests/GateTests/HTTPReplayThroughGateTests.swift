import CaptureFormat
import Foundation
import TestSupport
import Testing

/// `sessreplay` with an http(s):// target (issue 21): a curl session recorded through the real
/// gate against nginx A (HTTPGateTests' gate and policy) is replayed against nginx B, which serves
/// the same files but one changed document and one missing; `sessdiff` reports exactly those.
/// Denied requests are never replayed, a POST only with --allow-writes, the target's token comes
/// from a file, and an unreachable target, a certificate from another CA or a bad token file
/// stop the replay with exit 2.
@Suite("sessreplay against an HTTP target, on captures made through the gate", .serialized)
struct HTTPReplayThroughGateTests {
    static let changedDocument = HTTPGateTests.document.replacingOccurrences(of: "\"Ada\"", with: "\"Grace\"")
    static let notes = "replay21 notes: nothing secret\n"
    static let stagingToken = "httpreplay21-staging-token"

    let gateTests: HTTPGateTests
    init() throws { gateTests = try HTTPGateTests() }

    /// nginx B: A's files, with customers.json changed and api/notes.txt missing.
    static func stagingServer(tls: (cert: String, key: String)? = nil) throws -> NginxServer {
        try NginxServer(files: ["api/customers.json": changedDocument, "api/admin/users.json": #"{"admins":[]}"#,
                                "gzipped.json": "not really gzip"], tls: tls)
    }

    func scratch(_ name: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("httpreplay21-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return dir
    }

    /// One curl session through the gate to nginx A: three GETs that nginx answers, one denied GET,
    /// a POST to /upload, a GET with a query. Returns the gate (stopped) and its one capture.
    /// `maskedQuery`: one more GET whose query holds an e-mail address, recorded masked.
    func record(maskedQuery: Bool = false) throws -> (HTTPGateTests.Setup, String) {
        let s = try gateTests.start()
        try Self.notes.write(to: s.nginx.directory.appendingPathComponent("www/api/notes.txt"), atomically: true, encoding: .utf8)
        let agent = try gateTests.provider.token("agent@example.com", groups: ["ai-assistants"])
        let auth = "Authorization: Bearer \(agent)"
        let out = try run("curl", ["-sS", "--max-time", "60", "-o", "/dev/null", "-w", "[%{http_code}]\n",
                                   "-H", auth, "\(s.url)/api/customers.json", "\(s.url)/api/notes.txt", "\(s.url)/api/admin/users.json",
                                   "--next", "-sS", "-o", "/dev/null", "-w", "[%{http_code}]\n", "-H", auth, "-H", "Content-Type: text/plain",
                                   "--data-binary", "replay21 upload", "\(s.url)/upload",
                                   "--next", "-sS", "-o", "/dev/null", "-w", "[%{http_code}]\n", "-H", auth, "-H", "X-Replay21: kept",
                                   "\(s.url)/api/customers.json?page=2"]
                                   + (maskedQuery ? ["--next", "-sS", "-o", "/dev/null", "-w", "[%{http_code}]\n", "-H", auth,
                                                     "\(s.url)/api/customers.json?contact=ada.lovelace@example.com"] : []),
                           timeout: .seconds(90))
        // Each transfer's status, after its body (only the first goes to /dev/null).
        let statuses = out.stdout.split(separator: "\n").filter { $0.hasSuffix("]") }.map { String($0.suffix(5)) }
        #expect(statuses == ["[200]", "[200]", "[403]", "[200]", "[200]"] + (maskedQuery ? ["[200]"] : []), "\(out)")
        s.gate.stop()
        let captures = try s.gate.captures()
        try #require(captures.count == 1, "one curl, one connection, one session: \(captures)")
        return (s, captures[0].path)
    }

    func replay(_ arguments: [String], environment: [String: String] = [:]) throws -> Output {
        try run(tool("sessreplay").path, arguments, environment: environment, timeout: .seconds(120))
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not JSON: \(text)")
    }

    func replayCapture(_ dir: URL) throws -> String {
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sesscap") }
        try #require(files.count == 1, "\(files)")
        return dir.appendingPathComponent(files[0]).path
    }

    @Test func replayAgainstASecondNginxAndDiff() throws {
        let (s, original) = try record()
        defer { s.nginx.stop() }
        let b = try Self.stagingServer()
        defer { b.stop() }
        let dir = try scratch("run")
        let key = dir.appendingPathComponent("replay.pem").path
        try #require(try run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key]).status == 0)
        let tokenFile = dir.appendingPathComponent("staging.token")
        try (Self.stagingToken + "\n").write(to: tokenFile, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: tokenFile.path)
        let target = "http://127.0.0.1:\(b.port)"

        // The plan: the denied GET and (without --allow-writes) the POST are not replayed.
        let plan = try replay(["--dry-run", "--json", "--target", target, original])
        #expect(plan.status == 0, "\(plan)")
        let steps = try #require((try Self.json(plan.stdout)["sessions"] as? [[String: Any]])?.first?["steps"] as? [[String: Any]])
        let planned = steps.map { "\($0["method"]!) \($0["target"]!) \(($0["replay"] as? Bool) == true ? "replay" : $0["skip"]!)" }
        #expect(planned == ["GET /api/customers.json replay", "GET /api/notes.txt replay", "GET /api/admin/users.json not-forwarded",
                            "POST /upload write", "GET /api/customers.json?page=2 replay"], "\(planned)")
        #expect(b.accessLog.isEmpty, "a dry run sent something: \(b.accessLog)")

        // Without --allow-writes: the POST is refused, nothing but the GETs reaches nginx B, with the staging token.
        let reads = try replay(["--fast", "--json", "--token-file", tokenFile.path, "--target", target, "--signing-key", key,
                                "--out", dir.appendingPathComponent("reads").path, original])
        // notes.txt is missing on B: a 404 where the recording had 200 is a new error (exit 1).
        #expect(reads.status == 1, "\(reads)")
        let summary = try Self.json(reads.stdout)
        #expect(summary["replayed"] as? Int == 3 && (summary["skipped"] as? [String: Int]) == ["write": 1, "not-forwarded": 1], "\(summary)")
        let readLog = b.accessLog
        #expect(readLog.count == 3 && readLog.allSatisfy { $0.hasPrefix("GET /api/") && $0.contains("auth=[Bearer \(Self.stagingToken)]") },
                "\(readLog)")
        #expect(!readLog.joined().contains("/upload") && !readLog.joined().contains("/api/admin"), "\(readLog)")

        // With --allow-writes: the POST with its recorded body too; then sessdiff against the original.
        let out = dir.appendingPathComponent("all")
        let all = try replay(["--fast", "--json", "--allow-writes", "--token-file", tokenFile.path, "--target", target,
                              "--signing-key", key, "--out", out.path, original])
        #expect(all.status == 1, "\(all)")
        #expect(b.accessLog.filter { $0.hasPrefix("POST /upload ") && $0.contains("body=[replay21 upload]") }.count == 1, "\(b.accessLog)")
        #expect(b.accessLog.count == 3 + 3 + 2, "three GETs, then three and the upload (which nginx proxies to itself): \(b.accessLog)")
        let replayed = try replayCapture(out)
        let capture = try CaptureFile(path: replayed)
        let attributes = Dictionary(uniqueKeysWithValues: capture.header.attributes.map { ($0.key, $0.value) })
        #expect(attributes["replay.of_capture"] == original && attributes["replay.target"] == "http://127.0.0.1:\(b.port)"
                && attributes["replay.credential"] == "--token-file \(tokenFile.path)" && capture.header.protocolName == "http", "\(attributes)")
        // The replay's capture is masked as the original was (email, us_ssn) and holds no token.
        for clear in ["ada.lovelace@example.com", "078-05-1120", Self.stagingToken] {
            let grep = try run(tool("sessgrep").path, ["-e", NSRegularExpression.escapedPattern(for: clear), out.path])
            #expect(grep.status == 1, "\(clear) in the replay's capture: \(grep)")
        }

        let diff = try run(tool("sessdiff").path, ["--json", "--forwarded-only", original, replayed])
        #expect(diff.status == 1, "\(diff)")
        let lines = try diff.stdout.split(separator: "\n").map { try Self.json(String($0)) }
        let found = lines.filter { $0["kind"] != nil && $0["statement"] != nil }.map { "\($0["kind"]!) \($0["statement"]!)" }.sorted()
        #expect(found == ["http-body GET /api/customers.json", "http-body GET /api/customers.json?page=2",
                          "http-body GET /api/notes.txt", "http-status GET /api/notes.txt"], "\(diff.stdout)")
        let bodyLine = lines.first { "\($0["statement"] ?? "")" == "GET /api/customers.json" }
        #expect("\(bodyLine ?? [:])".contains("Grace") && "\(bodyLine ?? [:])".contains("Ada"), "\(diff.stdout)")

        // A replay of the replay against A's nginx gives back A's documents: the same as the original.
        let again = dir.appendingPathComponent("again")
        try #require(try replay(["--fast", "--allow-writes", "--target", "http://127.0.0.1:\(s.nginx.port)", "--signing-key", key,
                                 "--out", again.path, original]).status == 0)
        let same = try run(tool("sessdiff").path, ["--forwarded-only", original, try replayCapture(again)])
        #expect(same.status == 0, "\(same)")
    }

    @Test func unreachableTargetForeignCertificateAndBadTokenFilesExit2() throws {
        let (s, original) = try record(maskedQuery: true)
        defer { s.nginx.stop() }
        let dir = try scratch("bad")
        let key = dir.appendingPathComponent("replay.pem").path
        try #require(try run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key]).status == 0)
        func attempt(_ target: String, _ extra: [String] = [], environment: [String: String] = [:]) throws -> Output {
            try replay(["--fast", "--target", target, "--signing-key", key, "--out", dir.appendingPathComponent("out").path] + extra + [original],
                       environment: environment)
        }

        // The request whose query the gate recorded masked cannot be re-sent: skipped as withheld.
        let plan = try replay(["--dry-run", "--json", "--target", "http://127.0.0.1:\(s.nginx.port)", original])
        let steps = try #require((try Self.json(plan.stdout)["sessions"] as? [[String: Any]])?.first?["steps"] as? [[String: Any]])
        let masked = steps.last { ($0["target"] as? String)?.contains("contact=") == true }
        #expect(masked?["skip"] as? String == "withheld" && (masked?["target"] as? String)?.contains("ada.lovelace") == false, "\(steps)")

        let unreachable = try attempt("http://127.0.0.1:\(try freePort())")
        #expect(unreachable.status == 2 && unreachable.stderr.contains("cannot connect"), "\(unreachable)")

        // https: nginx B with a certificate from its own CA; trusted with --ca-file, refused with another CA's.
        for sub in ["ca", "other"] { try FileManager.default.createDirectory(at: dir.appendingPathComponent(sub), withIntermediateDirectories: true) }
        let certs = try makeTestCertificates(in: dir.appendingPathComponent("ca"), caName: "httpreplay21 CA")
        let foreign = try makeTestCertificates(in: dir.appendingPathComponent("other"), caName: "httpreplay21 other CA")
        let b = try Self.stagingServer(tls: (certs.cert, certs.key))
        defer { b.stop() }
        let trusted = try attempt("https://127.0.0.1:\(b.port)", ["--ca-file", certs.ca, "--server-name", "localhost"])
        #expect(trusted.status == 1 && b.accessLog.count == 3 && trusted.stdout.contains("withheld in the recording"), "the 404 of notes.txt is the one new error: \(trusted) \(b.accessLog)")
        let untrusted = try attempt("https://127.0.0.1:\(b.port)", ["--ca-file", foreign.ca])
        #expect(untrusted.status == 2 && untrusted.stderr.contains("TLS"), "\(untrusted)")
        #expect(b.accessLog.count == 3, "a request reached nginx over an unverified connection: \(b.accessLog)")

        let target = "http://127.0.0.1:\(s.nginx.port)"
        let missing = try attempt(target, ["--token-file", dir.appendingPathComponent("nope.token").path])
        #expect(missing.status == 2 && missing.stderr.contains("--token-file"), "\(missing)")
        let open = dir.appendingPathComponent("open.token")
        try "t0ken\n".write(to: open, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: open.path)
        let readable = try attempt(target, ["--token-file", open.path])
        #expect(readable.status == 2 && readable.stderr.contains("readable by group or others"), "\(readable)")
        let inURL = try attempt("http://user:secret@127.0.0.1:\(s.nginx.port)")
        #expect(inURL.status == 2 && inURL.stderr.contains("user or password"), "\(inURL)")
        #expect(s.nginx.accessLog.count == 6, "only the recording reached nginx A: \(s.nginx.accessLog)")
    }
}
