import CaptureFormat
import Foundation
import TestSupport
import Testing

/// A scratch directory with an exporter key and a custody log, for runs of the built sessexport.
struct ExportWorkspace {
    let scratch: ScratchDirectory
    var dir: URL { scratch.dir }
    let key: SigningKey
    var keyPath: String { path("exporter.pem") }
    var publicKeyPath: String { path("exporter-public.pem") }
    var custody: String { path("custody.jsonl") }
    let samples = repositoryRoot.appendingPathComponent("samples").path
    var proxyKey: String { samples + "/signing-public.pem" }

    init() throws {
        scratch = try ScratchDirectory("sessexport")
        key = try SigningKey.loadOrCreate(path: scratch.path("exporter.pem"))
        try key.publicKeyPEM.write(toFile: scratch.path("exporter-public.pem"), atomically: true, encoding: .utf8)
    }

    func path(_ name: String) -> String { scratch.path(name) }
    func remove() { scratch.remove() }

    func sessexport(_ arguments: [String], environment: [String: String] = [:]) throws -> Output {
        try run(tool("sessexport").path, arguments, environment: environment)
    }

    /// Exports `selection` to `out` (under the workspace) and requires success.
    @discardableResult
    func export(_ out: String, _ selection: [String], extra: [String] = []) throws -> Output {
        let r = try sessexport(["--out", path(out), "--key", keyPath, "--custody-log", custody] + extra + selection)
        #expect(r.status == 0, "export failed: \(r.stdout)\(r.stderr)")
        return r
    }

    func verify(_ bundle: String, _ extra: [String] = []) throws -> Output {
        try sessexport(["verify"] + extra + [path(bundle)])
    }

    /// A fresh copy of a bundle directory, to damage.
    func copy(_ bundle: String, to name: String) throws -> String {
        try FileManager.default.copyItem(atPath: path(bundle), toPath: path(name))
        return name
    }

    func manifest(_ bundle: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path(bundle + "/manifest.json")))) as? [String: Any])
    }

    /// Rewrites a bundle's manifest through `edit` and signs it again with `signer` (by default the exporter's key):
    /// what someone holding the exporter's key could do, so that only the other checks remain.
    func resign(_ bundle: String, signer: SigningKey? = nil, _ edit: (inout [String: Any]) throws -> Void) throws {
        var m = try manifest(bundle)
        try edit(&m)
        let signer = signer ?? key
        if signer.keyID != key.keyID {
            var exporter = try #require(m["exporter"] as? [String: Any])
            exporter["public_key_pem"] = signer.publicKeyPEM
            exporter["key_id"] = signer.keyID
            m["exporter"] = exporter
        }
        let bytes = try JSONSerialization.data(withJSONObject: m, options: [.prettyPrinted, .sortedKeys])
        try bytes.write(to: URL(fileURLWithPath: path(bundle + "/manifest.json")))
        try Data(signer.sign(Array(bytes))).write(to: URL(fileURLWithPath: path(bundle + "/manifest.sig")))
    }

    func sessionDirectory(_ bundle: String, session: String) -> String { path(bundle + "/sessions/" + session) }
}

func sha256Hex(_ path: String) throws -> String {
    let r = try run("sha256sum", [path])
    return String(r.stdout.prefix(64))
}

/// Sets a file's entry in a manifest dictionary to the file's current hash and size.
func rehash(_ m: inout [String: Any], _ rel: String, in bundleDir: String) throws {
    var files = try #require(m["files"] as? [[String: Any]])
    let i = try #require(files.firstIndex { $0["path"] as? String == rel })
    files[i]["sha256"] = try sha256Hex(bundleDir + "/" + rel)
    files[i]["size"] = try FileManager.default.attributesOfItem(atPath: bundleDir + "/" + rel)[.size] as? Int
    m["files"] = files
}

/// An HTTP session with the awkward cases: a binary request body, a capped response body, a
/// refusal with no response, hostile header values, a query string.
func writeHTTPSession(_ path: String, key: SigningKey) throws -> [Event] {
    let capped = CappedBytes(data: Array("{\"items\":[1,2,3".utf8), totalSize: 20_000, cutSHA256: [UInt8](repeating: 7, count: 32))
    return try writeCapture(path, key: key, protocolName: "http", subject: "bot@example.com", target: "billing-api", [
        (1, .request(.http(HTTPRequest(method: "GET", target: "/v1/invoices?customer=c%2042&limit=10", host: "billing.example.com",
                                       headers: [KeyValue("Accept", "application/json"), KeyValue("X-Note", "<script>alert(1)</script>")])))),
        (1, .decision(Decision(action: .allow, policy: "bots", rule: "read-invoices"))),
        (1, .response(.http(HTTPResponse(status: 200, headers: [KeyValue("Content-Type", "application/json")], body: capped, durationMicros: 12_345)))),
        (1, .maskSummary(MaskSummary(entries: [MaskCount(detector: "email", count: 2, location: "body")]))),
        (2, .request(.http(HTTPRequest(method: "POST", target: "/v1/uploads", host: "billing.example.com",
                                       headers: [KeyValue("Content-Type", "application/octet-stream")], body: CappedBytes(data: [0xFF, 0xFE, 0x00, 0x41]))))),
        (2, .decision(Decision(action: .allow, policy: "bots", rule: "upload"))),
        (2, .response(.http(HTTPResponse(status: 201, body: CappedBytes(data: Array("{}".utf8)), durationMicros: 800)))),
        (3, .request(.http(HTTPRequest(method: "DELETE", target: "/v1/invoices/9", host: "billing.example.com")))),
        (3, .decision(Decision(action: .deny, policy: "bots", rule: "no-deletes", reason: "bots never delete"))),
    ])
}

@Suite("sessexport")
struct SessExportTests {
    @Test func bundleOfTheSamplesVerifies() throws {
        let w = try ExportWorkspace()
        defer { w.remove() }
        let r = try w.export("bundle", [w.samples], extra: ["--case", "INC-2041", "--note", "access review", "--exporter", "ivy@example.com"])
        #expect(r.stdout.contains("wrote \(w.path("bundle")): 6 sessions"))
        #expect(r.stdout.contains("truncated at byte 9314"))
        #expect(!r.stdout.contains("\u{1B}["), "no colour when not a terminal")

        // The captures are delivered byte for byte.
        for name in ["postgres-analytics", "kubernetes-exec", "denied-review", "truncated", "postgres-gate-psql", "kubernetes-gate-exec"] {
            #expect(FileManager.default.contentsEqual(atPath: w.samples + "/\(name).sesscap", andPath: w.path("bundle/captures/\(name).sesscap")), "\(name)")
        }

        let pinned = try w.verify("bundle", ["--key", w.publicKeyPath, "--capture-key", w.proxyKey])
        #expect(pinned.status == 0, "\(pinned.stdout)\(pinned.stderr)")
        #expect(pinned.stdout.contains("origin proven"))
        #expect(pinned.stdout.contains("truncated at byte 9314 of 10870"))
        #expect(pinned.stdout.contains("(as the manifest declares)"))
        #expect(pinned.stdout.contains("VERIFIED"))

        let unpinned = try w.verify("bundle")
        #expect(unpinned.status == 0)
        #expect(unpinned.stdout.contains("ORIGIN NOT PROVEN"))

        let json = try w.verify("bundle", ["--json", "--key", w.publicKeyPath])
        let j = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(j["valid"] as? Bool == true)
        #expect(j["origin_proven"] as? Bool == true)
        #expect(j["derived_identical"] as? Bool == true)
        let sessions = try #require(j["sessions"] as? [[String: Any]])
        #expect(sessions.count == 6)
        #expect(sessions.filter { $0["state"] as? String == "truncated" }.count == 1)
        #expect((j["failures"] as? [Any])?.isEmpty == true)

        let m = try w.manifest("bundle")
        #expect((m["case"] as? [String: String]) == ["id": "INC-2041", "note": "access review"])
        #expect((m["exporter"] as? [String: Any])?["name"] as? String == "ivy@example.com")
        #expect((m["signing_keys"] as? [[String: Any]])?.first?["key_id"] as? String == "314b7318ff49e61b")
        let analytics = try #require((m["sessions"] as? [[String: Any]])?.first { $0["target"] as? String == "analytics-db" })
        #expect((analytics["decisions"] as? [String: Int]) == ["allow": 30, "deny": 1, "review": 5])
        #expect((analytics["integrity"] as? [String: Any])?["state"] as? String == "clean")

        // The signature is plain Ed25519 over the manifest's bytes: openssl checks it without sessexport.
        let openssl = try run("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", w.path("bundle/exporter-public.pem"), "-rawin",
                                          "-in", w.path("bundle/manifest.json"), "-sigfile", w.path("bundle/manifest.sig")])
        #expect(openssl.status == 0, "\(openssl.stdout)\(openssl.stderr)")
    }

    @Test func eachDamageFailsAndNamesItsCause() throws {
        let w = try ExportWorkspace()
        defer { w.remove() }
        try w.export("bundle", [w.samples])
        let m = try w.manifest("bundle")
        let k8s = try #require((m["sessions"] as? [[String: Any]])?.first { $0["protocol"] as? String == "kubernetes" }?["session"] as? String)

        func expectFailure(_ bundle: String, _ extra: [String] = [], needles: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
            let r = try w.verify(bundle, extra)
            #expect(r.status == 1, "\(bundle): \(r.stdout)\(r.stderr)", sourceLocation: sourceLocation)
            for n in needles { #expect(r.stdout.contains(n), "\(bundle): no \"\(n)\" in\n\(r.stdout)", sourceLocation: sourceLocation) }
            #expect(r.stdout.contains("NOT VERIFIED"), sourceLocation: sourceLocation)
        }

        // A changed byte inside a capture block: the hash and the capture's own checks both say so.
        let flipped = try w.copy("bundle", to: "flipped")
        let capture = try CaptureFile(path: w.path("bundle/captures/postgres-analytics.sesscap"))
        var bytes = try Data(contentsOf: URL(fileURLWithPath: w.path("bundle/captures/postgres-analytics.sesscap")))
        bytes[capture.blocks[2].payloadOffset + 10] ^= 0x04
        try bytes.write(to: URL(fileURLWithPath: w.path(flipped + "/captures/postgres-analytics.sesscap")))
        try expectFailure(flipped, needles: ["captures/postgres-analytics.sesscap: SHA-256 is", "the file was changed",
                                    "captures/postgres-analytics.sesscap: block 2 at byte", "CRC mismatch"])

        let removed = try w.copy("bundle", to: "removed")
        try FileManager.default.removeItem(atPath: w.sessionDirectory(removed, session: k8s) + "/http.har")
        try expectFailure(removed, needles: ["sessions/\(k8s)/http.har: listed in the manifest but missing from the bundle"])

        let added = try w.copy("bundle", to: "added")
        try FileManager.default.copyItem(atPath: w.samples + "/denied-review.sesscap", toPath: w.path(added + "/captures/extra.sesscap"))
        try "planted".write(toFile: w.path(added + "/sessions/notes.txt"), atomically: true, encoding: .utf8)
        try expectFailure(added, needles: ["captures/extra.sesscap: unlisted capture", "sessions/notes.txt: present in the bundle but not listed"])

        let edited = try w.copy("bundle", to: "edited")
        let text = try String(contentsOfFile: w.path(edited + "/manifest.json"), encoding: .utf8)
        try text.replacingOccurrences(of: "\"aiko@example.com\"", with: "\"someone-else@example.com\"")
            .write(toFile: w.path(edited + "/manifest.json"), atomically: true, encoding: .utf8)
        try expectFailure(edited, needles: ["manifest.json: signature does not verify", "manifest.json was changed after it was signed"])

        let unsigned = try w.copy("bundle", to: "unsigned")
        try FileManager.default.removeItem(atPath: w.path(unsigned + "/manifest.sig"))
        try expectFailure(unsigned, needles: ["manifest.sig: missing: the manifest is not signed"])

        // Pinned to a key that did not sign it.
        let other = w.path("other.pem")
        try SigningKey().publicKeyPEM.write(toFile: other, atomically: true, encoding: .utf8)
        try expectFailure("bundle", ["--key", other], needles: ["not the trusted key"])
        try expectFailure("bundle", ["--capture-key", other], needles: ["captures/postgres-analytics.sesscap: header at byte", "not the trusted key"])

        // Someone edits the manifest and signs it again with a key of their own: self-consistent, so only pinning catches it.
        let resigned = try w.copy("bundle", to: "resigned")
        let attacker = SigningKey()
        try attacker.publicKeyPEM.write(toFile: w.path(resigned + "/exporter-public.pem"), atomically: true, encoding: .utf8)
        try w.resign(resigned, signer: attacker) { m in
            var s = try #require(m["sessions"] as? [[String: Any]])
            s[0]["subject"] = "someone-else@example.com"
            m["sessions"] = s
            try rehash(&m, "exporter-public.pem", in: w.path(resigned))
        }
        let selfSigned = try w.verify(resigned)
        #expect(selfSigned.status == 0, "\(selfSigned.stdout)")
        #expect(selfSigned.stdout.contains("ORIGIN NOT PROVEN"))
        try expectFailure(resigned, ["--key", w.publicKeyPath], needles: ["manifest.json: signed by exporter key", "not the trusted key \(w.key.keyID)"])

        // A truncated capture put in place of a clean one, with hashes and signature redone by the exporter's own key:
        // only the integrity check knows the manifest declared a clean close.
        let cut = try w.copy("bundle", to: "cut")
        let k8sCapture = w.path(cut + "/captures/kubernetes-exec.sesscap")
        let whole = try CaptureFile(path: k8sCapture)
        let cutAt = Int(whole.blocks[2].offset) + 100
        try Data(contentsOf: URL(fileURLWithPath: k8sCapture)).prefix(cutAt).write(to: URL(fileURLWithPath: k8sCapture))
        try w.resign(cut) { m in try rehash(&m, "captures/kubernetes-exec.sesscap", in: w.path(cut)) }
        try expectFailure(cut, needles: ["captures/kubernetes-exec.sesscap: capture is truncated at byte \(whole.blocks[2].offset)", "but the manifest declares a clean close"])
        let cutReport = try w.verify(cut)
        #expect(!cutReport.stdout.contains("SHA-256 is"), "hashes were redone: the integrity check alone must catch it")

        // Several faults at once: every one is listed, not only the first.
        let many = try w.copy("flipped", to: "many")
        try FileManager.default.removeItem(atPath: w.path(many + "/report.html"))
        try FileManager.default.copyItem(atPath: w.samples + "/denied-review.sesscap", toPath: w.path(many + "/stray.sesscap"))
        try expectFailure(many, needles: ["captures/postgres-analytics.sesscap: SHA-256", "report.html: listed in the manifest but missing", "stray.sesscap: unlisted capture"])
        let j = try #require(try JSONSerialization.jsonObject(with: Data(try w.verify(many, ["--json"]).stdout.utf8)) as? [String: Any])
        let checks = Set(((j["failures"] as? [[String: Any]]) ?? []).compactMap { $0["check"] as? String })
        #expect(checks.isSuperset(of: ["file", "capture", "unlisted"]), "\(checks)")
        #expect(j["valid"] as? Bool == false)
    }

    @Test func unreadableBundleExitsTwo() throws {
        let w = try ExportWorkspace()
        defer { w.remove() }
        let missing = try w.verify("nothing-here")
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("no such file"))

        try FileManager.default.createDirectory(atPath: w.path("empty"), withIntermediateDirectories: true)
        let empty = try w.verify("empty")
        #expect(empty.status == 2)
        #expect(empty.stderr.contains("no manifest.json"))

        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 * 7) }).write(to: URL(fileURLWithPath: w.path("garbage.tar")))
        let garbage = try w.verify("garbage.tar")
        #expect(garbage.status == 2)
        #expect(garbage.stderr.contains("not a tar archive"))

        try w.export("bundle", [w.samples + "/postgres-gate-psql.sesscap"])
        try "{ not json".write(toFile: w.path("bundle/manifest.json"), atomically: true, encoding: .utf8)
        let broken = try w.verify("bundle")
        #expect(broken.status == 2)
        #expect(broken.stderr.contains("cannot be read as a manifest"))

        // Valid JSON with a member removed: unreadable, and the signature says it was changed.
        try w.export("bundle2", [w.samples + "/postgres-gate-psql.sesscap"])
        var m = try w.manifest("bundle2")
        m.removeValue(forKey: "sessions")
        try JSONSerialization.data(withJSONObject: m).write(to: URL(fileURLWithPath: w.path("bundle2/manifest.json")))
        let stripped = try w.verify("bundle2")
        #expect(stripped.status == 2)
        #expect(stripped.stderr.contains("its signature does not verify: it was changed after it was signed"), "\(stripped.stderr)")
    }

    @Test func tarRoundTripVerifiesAndExtracts() throws {
        let w = try ExportWorkspace()
        defer { w.remove() }
        let r = try w.export("evidence.tar", [w.samples], extra: ["--tar", "--case", "INC-7"])
        #expect(r.stdout.contains("archive SHA-256"))
        let ok = try w.verify("evidence.tar", ["--key", w.publicKeyPath, "--capture-key", w.proxyKey])
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.contains("(tar archive)"))

        // The system tar reads it, and what it extracts is the same bundle.
        let x = try run("tar", ["-xf", w.path("evidence.tar"), "-C", w.dir.path])
        #expect(x.status == 0 && x.stderr.isEmpty, "\(x.stderr)")
        let extracted = try w.verify("evidence", ["--key", w.publicKeyPath])
        #expect(extracted.status == 0, "\(extracted.stdout)")
        let listing = try run("tar", ["-tvf", w.path("evidence.tar")])
        #expect(listing.stdout.split(separator: "\n").allSatisfy { $0.contains(" 0/0 ") }, "owner 0/0 on every entry: \(listing.stdout)")

        // A byte changed inside the archive's copy of a capture.
        var tar = try Data(contentsOf: URL(fileURLWithPath: w.path("evidence.tar")))
        let magic = Data(CaptureLayout.magic)
        let start = try #require(tar.range(of: magic)).lowerBound
        tar[start + 700] ^= 0x10
        try tar.write(to: URL(fileURLWithPath: w.path("damaged.tar")))
        let damaged = try w.verify("damaged.tar")
        #expect(damaged.status == 1, "\(damaged.stdout)")
        #expect(damaged.stdout.contains("SHA-256 is"))
    }

    @Test func harValidatesAgainstTheHAR12Schema() throws {
        let w = try ExportWorkspace()
        defer { w.remove() }
        try FileManager.default.createDirectory(atPath: w.path("in"), withIntermediateDirectories: true)
        _ = try writeHTTPSession(w.path("in/http.sesscap"), key: SigningKey())
        try w.export("bundle", [w.path("in/http.sesscap"), w.samples + "/kubernetes-exec.sesscap"])
        let hars = try FileManager.default.subpathsOfDirectory(atPath: w.path("bundle/sessions")).filter { $0.hasSuffix(".har") }.map { w.path("bundle/sessions/" + $0) }
        #expect(hars.count == 2)
        let checker = repositoryRoot.appendingPathComponent("Tests/ToolTests/Fixtures/check_har.py").path
        let r = try run("python3", [checker] + hars)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("0 problems in 2 files"))

        // The checker can fail: a HAR missing a required field, with a misspelt one, is refused.
        var har = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: hars[0]))) as? [String: Any])
        var log = try #require(har["log"] as? [String: Any])
        var entries = try #require(log["entries"] as? [[String: Any]])
        entries[0].removeValue(forKey: "timings")
        entries[0]["cached"] = true
        log["entries"] = entries
        har["log"] = log
        try JSONSerialization.data(withJSONObject: har).write(to: URL(fileURLWithPath: w.path("bad.har")))
        let bad = try run("python3", [checker, w.path("bad.har")])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("'timings' is a required property"))
        #expect(bad.stdout.contains("'cached' does not match"))
    }

    @Test func asciicastFollowsV2AndHoldsTheStreams() throws {
        let w = try ExportWorkspace()
        defer { w.remove() }
        try w.export("bundle", [w.samples + "/kubernetes-exec.sesscap"])
        let m = try w.manifest("bundle")
        let session = try #require((m["sessions"] as? [[String: Any]])?.first?["session"] as? String)
        let dir = w.sessionDirectory("bundle", session: session)
        let casts = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".cast") }.sorted()
        #expect(casts == ["exec-x10.cast", "exec-x8.cast"])
        let events = try jsonLines(String(contentsOfFile: dir + "/events.jsonl", encoding: .utf8))
        for cast in casts {
            let exchange = Int(cast.dropFirst("exec-x".count).dropLast(".cast".count))!
            let lines = try String(contentsOfFile: dir + "/" + cast, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.last == "", "every line ends with a newline")
            let header = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
            #expect(header["version"] as? Int == 2)
            #expect((header["width"] as? Int ?? 0) > 0 && (header["height"] as? Int ?? 0) > 0)
            #expect(header["timestamp"] is Int)
            var last = -1.0, output = "", input = ""
            for line in lines.dropFirst().dropLast() {
                let e = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Any])
                #expect(e.count == 3)
                let t = try #require((e[0] as? NSNumber)?.doubleValue)
                let code = try #require(e[1] as? String)
                let data = try #require(e[2] as? String)
                #expect(t >= last, "times never go back")
                last = t
                switch code {
                case "o": output += data
                case "i": input += data
                case "r": #expect(data.wholeMatch(of: /\d+x\d+/) != nil, "\(data)")
                default: Issue.record("event code \(code) is not o, i or r")
                }
            }
            // What the cast plays is what the capture recorded for that exchange.
            let chunks = events.filter { $0["kind"] as? String == "stream" && $0["exchange"] as? Int == exchange }
            let recordedOut = chunks.filter { ["stdout", "stderr"].contains($0["stream"] as? String) }.compactMap { $0["data"] as? String }.joined()
            let recordedIn = chunks.filter { $0["stream"] as? String == "stdin" }.compactMap { $0["data"] as? String }.joined()
            #expect(output == recordedOut)
            #expect(input == recordedIn)
            #expect(!output.isEmpty)
        }
    }

    @Test func reportEscapesHostileValues() throws {
        let w = try ExportWorkspace()
        defer { w.remove() }
        try FileManager.default.createDirectory(atPath: w.path("in"), withIntermediateDirectories: true)
        let hostile = "SELECT '<script>alert(\"pwned\")</script>' AS x, '<img src=x onerror=alert(1)>'"
        try writeCapture(w.path("in/hostile.sesscap"), key: SigningKey(), subject: "<b onmouseover=alert(2)>mallory</b>", [
            (1, .request(.postgres(PostgresRequest(text: hostile)))),
            (1, .decision(Decision(action: .deny, policy: "p<script>", rule: "r\"><script>alert(3)</script>", reason: "</td></tr></table><script>alert(4)</script>"))),
            (2, .request(.postgres(PostgresRequest(text: "SELECT 1")))),
            (2, .decision(Decision(action: .allow, policy: "p", rule: "ok"))),
            (2, .response(.postgres(PostgresResponse(rowCount: 1, commandTag: "SELECT 1")))),
            (2, .maskSummary(MaskSummary(entries: [MaskCount(detector: "<svg onload=alert(5)>", count: 1, location: "x")]))),
        ])
        try w.export("bundle", [w.path("in")], extra: ["--note", "</p><script>alert(6)</script>"])
        let html = try String(contentsOfFile: w.path("bundle/report.html"), encoding: .utf8)
        #expect(html.contains("SELECT &#39;&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&#39; AS x"))
        #expect(html.contains("&lt;b onmouseover=alert(2)&gt;mallory&lt;/b&gt;"))
        #expect(html.contains("&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;script&gt;alert(4)&lt;/script&gt;"))
        #expect(html.contains("&lt;svg onload=alert(5)&gt;"))
        #expect(html.contains("&lt;/p&gt;&lt;script&gt;alert(6)&lt;/script&gt;"))
        // No markup from a capture survives: every tag in the page is one the report writes.
        let tags = Set(html.matches(of: /<\/?([a-zA-Z][a-zA-Z0-9]*)/).map { String($0.output.1).lowercased() })
        #expect(tags.isSubset(of: ["html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "table", "tr", "th", "td", "p", "code",
                                   "a", "span", "section", "pre"]), "\(tags)")
        #expect(!html.lowercased().contains("<script"))
        #expect(html.contains("Content-Security-Policy"))
        #expect(!html.contains("http://") && !html.contains("https://"), "no external asset")
    }

    @Test func csvAndSQLReadBackFaithfully() throws {
        let w = try ExportWorkspace()
        defer { w.remove() }
        try FileManager.default.createDirectory(atPath: w.path("in"), withIntermediateDirectories: true)
        let texts = ["SELECT 'a,b', \"Col\" FROM t WHERE x = 'say \"hi\"'", "SELECT 1\n-- second line\r\nFROM t", "DELETE FROM t"]
        try writeCapture(w.path("in/s.sesscap"), key: SigningKey(), sessionID: "5e55e55e-0000-4000-8000-000000000001", [
            (1, .request(.postgres(PostgresRequest(text: texts[0], path: .extended, parameters: [Parameter(text: "x'\nDROP TABLE t; --")])))),
            (1, .decision(Decision(action: .allow, policy: "p", rule: "ok"))),
            (2, .request(.postgres(PostgresRequest(text: texts[1])))),
            (2, .decision(Decision(action: .allow, policy: "p", rule: "ok"))),
            (3, .request(.postgres(PostgresRequest(text: texts[2])))),
            (3, .decision(Decision(action: .deny, policy: "p", rule: "no-delete"))),
        ])
        try w.export("bundle", [w.path("in")])
        let dir = w.sessionDirectory("bundle", session: "5e55e55e-0000-4000-8000-000000000001")
        let py = """
            import csv, json, sys
            with open(sys.argv[1], newline="") as f:
                rows = list(csv.DictReader(f, strict=True))
            print(json.dumps([[r["exchange"], r["request"], r["decision"], r["parameters"]] for r in rows]))
            """
        let r = try run("python3", ["-c", py, dir + "/exchanges.csv"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String]])
        #expect(rows.map { $0[0] } == ["1", "2", "3"])
        #expect(rows.map { $0[1] } == texts)
        #expect(rows.map { $0[2] } == ["allow", "allow", "deny"])
        #expect(rows[0][3] == #"["x'\nDROP TABLE t; --"]"#)

        // psql reads the script as comments and the \quit guard; the denied DELETE is commented out.
        let sql = try String(contentsOfFile: dir + "/statements.sql", encoding: .utf8)
        #expect(sql.contains("\n\\quit\n"))
        #expect(sql.contains("-- $1 = E'x''\\nDROP TABLE t; --'"))
        #expect(sql.contains("-- NOT FORWARDED:\n-- DELETE FROM t;"))
        let live = sql.components(separatedBy: "\n").filter { !$0.hasPrefix("--") && !$0.isEmpty && $0 != "\\quit" }
        #expect(!live.contains { $0.contains("DROP") || $0.contains("DELETE") }, "\(live)")
    }

    @Test func custodyLogGetsAChainedEntryPerExport() throws {
        let w = try ExportWorkspace()
        defer { w.remove() }
        try w.export("one", [w.samples + "/denied-review.sesscap"], extra: ["--case", "INC-1", "--note", "first look"])
        try w.export("two.tar", [w.samples + "/kubernetes-exec.sesscap"], extra: ["--tar", "--case", "INC-1"])
        let r = try w.sessexport(["custody", "--log", w.custody, "--key", w.publicKeyPath])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("2 entries; sequence, hash chain and signatures hold"))
        let entries = try jsonLines(String(contentsOfFile: w.custody, encoding: .utf8))
        #expect(entries.map { $0["seq"] as? Int } == [1, 2])
        #expect((entries[0]["case"] as? [String: String]) == ["id": "INC-1", "note": "first look"])
        #expect((entries[0]["bundle"] as? [String: Any])?["manifest_sha256"] as? String == (try sha256Hex(w.path("one/manifest.json"))))
        #expect((entries[1]["bundle"] as? [String: Any])?["sha256"] as? String == (try sha256Hex(w.path("two.tar"))))
        let files = try #require(entries[0]["files"] as? [[String: Any]])
        #expect(files.first?["sha256"] as? String == (try sha256Hex(w.samples + "/denied-review.sesscap")))
        #expect((try w.manifest("one")["custody"] as? [String: Any])?["entry"] as? Int == 1)

        // An edited entry: the chain check fails, and no further export extends the log.
        let text = try String(contentsOfFile: w.custody, encoding: .utf8)
        try text.replacingOccurrences(of: "first look", with: "nothing to see").write(toFile: w.custody, atomically: true, encoding: .utf8)
        let broken = try w.sessexport(["custody", "--log", w.custody, "--json"])
        #expect(broken.status == 1)
        let j = try #require(try JSONSerialization.jsonObject(with: Data(broken.stdout.utf8)) as? [String: Any])
        #expect((j["problems"] as? [[String: Any]])?.map { $0["line"] as? Int } == [1, 2])
        let refused = try w.sessexport(["--out", w.path("three"), "--key", w.keyPath, "--custody-log", w.custody, w.samples + "/denied-review.sesscap"])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("custody log"))
        #expect(!FileManager.default.fileExists(atPath: w.path("three")))
    }

    @Test func sessionIDsResolveUnderTheCaptureDirectory() throws {
        let w = try ExportWorkspace()
        defer { w.remove() }
        let r = try w.sessexport(["--out", w.path("bundle"), "--key", w.keyPath, "--custody-log", w.custody, "--json", "a2c6263a"],
                                 environment: ["TOLLGATE_CAPTURES": w.samples])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let sessions = try #require(j["sessions"] as? [[String: Any]])
        #expect(sessions.map { $0["session"] as? String } == ["a2c6263a-000b-444d-92d5-fd6ee91bc263"])
        #expect(j["custody_entry"] as? Int == 1)

        let unknown = try w.sessexport(["--out", w.path("b2"), "--key", w.keyPath, "--custody-log", w.custody, "deadbeef-0000"],
                                       environment: ["TOLLGATE_CAPTURES": w.samples])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("no capture of that session"))
    }

    @Test func sessgrepFiltersChooseTheSessions() throws {
        let w = try ExportWorkspace()
        defer { w.remove() }
        func sessions(_ r: Output) throws -> [String] {
            let j = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            return ((j["sessions"] as? [[String: Any]]) ?? []).compactMap { $0["capture"] as? String }
        }
        let contractor = try w.export("a", [w.samples], extra: ["--json", "--subject", "*@contractors.example.com"])
        #expect(try sessions(contractor) == ["captures/denied-review.sesscap"])
        let selection = try #require(try w.manifest("a")["selection"] as? [String])
        #expect(selection == [w.samples, "filter: --subject *@contractors.example.com"])

        // Exchange filters go through sessgrep's engine; with no SELECTION, $TOLLGATE_CAPTURES is searched.
        let exec = try w.sessexport(["--out", w.path("b"), "--key", w.keyPath, "--custody-log", w.custody, "--json",
                                     "--verb", "create", "--subresource", "exec", "--decision", "approved"],
                                    environment: ["TOLLGATE_CAPTURES": w.samples])
        #expect(exec.status == 0, "\(exec.stderr)")
        #expect(try Set(sessions(exec)) == ["captures/kubernetes-exec.sesscap", "captures/kubernetes-gate-exec.sesscap"])
        let tables = try w.export("c", [w.samples], extra: ["--json", "--table", "public.order_items", "--statement", "delete", "--decision", "deny"])
        #expect(try sessions(tables) == ["captures/postgres-analytics.sesscap"])
        let masked = try w.export("m", [w.samples], extra: ["--json", "--masked=column:*", "--protocol", "postgres"])
        #expect(try sessions(masked) == ["captures/truncated.sesscap"])

        let none = try w.sessexport(["--out", w.path("d"), "--key", w.keyPath, "--custody-log", w.custody, "--subject", "nobody", w.samples])
        #expect(none.status == 1)
        #expect(none.stderr.contains("no capture matched"))
        #expect(!FileManager.default.fileExists(atPath: w.path("d")))
        let bad = try w.sessexport(["--out", w.path("e"), "--key", w.keyPath, "--decision", "maybe", w.samples])
        #expect(bad.status == 2 && bad.stderr.contains("unknown decision"))
    }

    @Test func exportRefusesADamagedCaptureAndBadArguments() throws {
        let w = try ExportWorkspace()
        defer { w.remove() }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: w.samples + "/denied-review.sesscap"))
        let block = try CaptureFile(path: w.samples + "/denied-review.sesscap").blocks[1]
        bytes[block.payloadOffset + 30] ^= 0x02
        try bytes.write(to: URL(fileURLWithPath: w.path("damaged.sesscap")))
        let r = try w.sessexport(["--out", w.path("bundle"), "--key", w.keyPath, "--custody-log", w.custody, w.path("damaged.sesscap")])
        #expect(r.status == 1)
        #expect(r.stderr.contains("block 1"))
        #expect(r.stderr.contains("nothing was written"))
        #expect(!FileManager.default.fileExists(atPath: w.path("bundle")))

        let help = try w.sessexport(["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("verify"))
        let verifyHelp = try w.sessexport(["verify", "--help"])
        #expect(verifyHelp.status == 0 && verifyHelp.stdout.contains("--capture-key"))

        let noKey = try w.sessexport(["--out", w.path("b"), w.samples], environment: ["TOLLGATE_EXPORT_KEY": ""])
        #expect(noKey.status == 2 && noKey.stderr.contains("--key"))
        let noSelection = try w.sessexport(["--out", w.path("b"), "--key", w.keyPath])
        #expect(noSelection.status == 2)
        let missingKey = try w.sessexport(["--out", w.path("b"), "--key", w.path("new.pem"), "--custody-log", w.custody, w.samples])
        #expect(missingKey.status == 2 && missingKey.stderr.contains("--create-key"))
        #expect(!FileManager.default.fileExists(atPath: w.path("new.pem")))
        let created = try w.sessexport(["--out", w.path("b"), "--key", w.path("new.pem"), "--create-key", "--custody-log", w.custody,
                                        w.samples + "/postgres-gate-psql.sesscap"])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stderr.contains("BEGIN PUBLIC KEY"))
        let mode = (try FileManager.default.attributesOfItem(atPath: w.path("new.pem"))[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        let exists = try w.sessexport(["--out", w.path("b"), "--key", w.keyPath, "--custody-log", w.custody, w.samples])
        #expect(exists.status == 2 && exists.stderr.contains("never overwritten"))
        let publicKey = try w.sessexport(["public-key", "--key", w.keyPath])
        #expect(publicKey.stdout == w.key.publicKeyPEM)
    }
}
