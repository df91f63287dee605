import CaptureFormat
import Foundation
import TestSupport
import Testing

/// JSON field-name masks (`{json_field: …}`) on an HTTP target (issue 20): curl through the built
/// capture-proxy to a real nginx serving JSON, small and large bodies and JSON lines; what is not
/// JSON is cut, never passed in clear.
@Suite("HTTP gate: JSON field masks and gzip/deflate bodies", .serialized)
struct HTTPGateMaskingTests {
    static let upstreamToken = "k8smore20-upstream-token"

    let provider: OIDCProvider

    init() throws { provider = try sharedProvider.get() }

    struct Setup {
        let nginx: NginxServer
        let gate: GateProcess
        var url: String { "http://127.0.0.1:\(gate.port("api"))" }
        func stop() { gate.stop(); nginx.stop() }
    }

    /// nginx serving `files`, and a gate in front of it allowing GET with `masks`.
    static func start(provider: OIDCProvider, files: [String: String], masks: String, nginxServer: String = "", rules: String = "") throws -> Setup {
        let nginx = try NginxServer(files: files, extraServer: nginxServer)
        let secrets = FileManager.default.temporaryDirectory.appendingPathComponent("k8smore20-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: secrets, withIntermediateDirectories: true)
        let tokenFile = secrets.appendingPathComponent("upstream.token")
        try (upstreamToken + "\n").write(to: tokenFile, atomically: true, encoding: .utf8)
        let port = try freePort()
        let yaml = """
            \(gateConfigHead(id: "k8smore20-gate", issuer: provider.issuer))
            targets:
              api:
                protocol: http
                listen: 127.0.0.1:\(port)
                upstream: 127.0.0.1:\(nginx.port)
                upstream_tls: disable
                credentials: {token_file: \(tokenFile.path)}
                masks: \(masks)
            policies:
              - name: api-agents
                who: {groups: [ai-assistants]}
                target: api
                rules:
                  - {name: reads, when: {method: [GET, HEAD]}, then: allow}
                  \(rules)

            """
        return Setup(nginx: nginx, gate: try GateProcess(config: yaml, ports: ["api": port]))
    }

    static func curl(_ url: String, token: String, _ extra: [String] = []) throws -> Output {
        try run("curl", ["-sS", "--max-time", "60", "-H", "Authorization: Bearer \(token)"] + extra + [url], timeout: .seconds(90))
    }

    static let small = #"{"user": {"name": "ada", "password": "hunter2-clear-small"}, "api": {"token": "tok-clear-1", "note": "kept"}, "token": "top-kept"}"#
    static let big = "[" + (0..<4000).map { #"{"id": \#($0), "name": "n\#($0)", "password": "pw-clear-\#($0)"}"# }.joined(separator: ",\n") + "]"
    static let lines = "{\"type\":\"ADDED\",\"object\":{\"password\":\"line-clear-1\"}}\n{\"type\":\"ADDED\",\"object\":{\"password\":\"line-clear-2\"}}\n"
    static let broken = #"{"a": tru, "password": "broken-clear"}"#

    @Test func namedFieldsAreMaskedInSmallAndLargeJSONBodiesAndJSONLinesForCurlAndInTheCapture() throws {
        let s = try Self.start(provider: provider, files: ["small.json": Self.small, "big.json": Self.big, "events.ndjson": Self.lines,
                                                           "broken.json": Self.broken],
                               masks: #"[email, {json_field: password}, {json_field: "*.token"}]"#)
        defer { s.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let small = try Self.curl("\(s.url)/small.json", token: agent)
        #expect(small.status == 0 && small.stdout == #"{"user": {"name": "ada", "password": "********"}, "api": {"token": "********", "note": "kept"}, "token": "top-kept"}"#,
                "\(small)")
        let big = try Self.curl("\(s.url)/big.json", token: agent)
        #expect(Self.big.utf8.count > 64 * 1024)
        let parsed = (try? JSONSerialization.jsonObject(with: Data(big.stdout.utf8)) as? [[String: Any]]) ?? []
        let passwords = parsed.map { $0["password"] as? String ?? "" }
        let lastName = parsed.last?["name"] as? String
        #expect(big.status == 0 && parsed.count == 4000 && lastName == "n3999", "\(big.stderr)")
        #expect(passwords.allSatisfy { $0 == "********" })
        #expect(!big.stdout.contains("pw-clear"))
        let lines = try Self.curl("\(s.url)/events.ndjson", token: agent)
        var expectedLines = Self.lines.replacingOccurrences(of: #""line-clear-1""#, with: #""********""#)
        expectedLines = expectedLines.replacingOccurrences(of: #""line-clear-2""#, with: #""********""#)
        #expect(lines.status == 0 && lines.stdout == expectedLines, "\(lines)")
        // Not JSON: the body is cut where it stops being JSON, the value after it never sent.
        let broken = try Self.curl("\(s.url)/broken.json", token: agent)
        #expect(broken.status != 0 && !broken.stdout.contains("broken-clear"), "\(broken)")
        s.gate.stop()
        let events = try s.gate.captures().flatMap { try allEvents($0) }
        var counted: UInt64 = 0
        for e in events { if case .maskSummary(let m) = e.payload { for entry in m.entries where entry.detector == "json_field" { counted += entry.count } } }
        #expect(counted == 2 + 4000 + 2, "\(counted)")
        let written = try s.gate.everythingWritten()
        for clear in ["hunter2-clear-small", "tok-clear-1", "pw-clear-1", "line-clear-1", "broken-clear"] {
            let found = written.contains(bytes: clear)
            #expect(!found, "\(clear) reached the capture or the log")
        }
    }

    /// Files under nginx's document root written by Python's zlib: `NAME` compressed as gzip or
    /// deflate (zlib format), and a bomb (20 MiB of line breaks, about 20 KB gzipped).
    static func writeCoded(_ nginx: NginxServer, _ files: [String: (coding: String, text: String)]) throws {
        let root = nginx.directory.appendingPathComponent("www")
        for (name, f) in files {
            let script = """
                import gzip, sys, zlib
                data = sys.stdin.buffer.read() if sys.argv[2] != "bomb" else b"\\n" * (20 << 20)
                out = zlib.compress(data) if sys.argv[2] == "deflate" else gzip.compress(data)
                open(sys.argv[1], "wb").write(out)
                """
            let r = try run("python3", ["-c", script, root.appendingPathComponent(name).path, f.coding], stdin: f.text)
            guard r.status == 0 else { throw HarnessError(description: "python3: \(r.stderr)") }
        }
    }

    /// gzip and deflate bodies: decoded, masked, and sent decoded (no Content-Encoding) whether
    /// nginx compressed on the fly (`gzip on`, curl `--compressed`) or sends stored coded files
    /// to a client that did not ask; a bomb and a corrupt stream are cut; br is a 502 naming it.
    @Test func gzipAndDeflateBodiesAreDecodedMaskedAndSentDecodedAndOtherCodingsAreRefused() throws {
        let s = try Self.start(provider: provider, files: ["small.json": Self.small, "big.json": Self.big, "brotli.json": "not really br"],
                               masks: #"[email, us_ssn, {json_field: password}]"#, nginxServer: """
                                   gzip on; gzip_proxied any; gzip_types application/json text/plain; gzip_min_length 0;
                                   location ~ ^/stored-gzip/ { add_header Content-Encoding gzip; default_type application/json; gzip off; }
                                   location ~ ^/stored-deflate/ { add_header Content-Encoding deflate; default_type application/json; gzip off; }
                                   location = /brotli.json { add_header Content-Encoding br; gzip off; }
                                   """)
        defer { s.stop() }
        try FileManager.default.createDirectory(at: s.nginx.directory.appendingPathComponent("www/stored-gzip"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: s.nginx.directory.appendingPathComponent("www/stored-deflate"), withIntermediateDirectories: true)
        let customers = #"{"email": "ada.lovelace@example.com", "ssn": "078-05-1120", "password": "gz-clear-pw"}"#
        try Self.writeCoded(s.nginx, ["stored-gzip/c": ("gzip", customers), "stored-deflate/c": ("deflate", customers),
                                      "stored-gzip/bomb": ("bomb", ""), "stored-gzip/corrupt": ("gzip", customers)])
        // A gzip stream with its last bytes (CRC and length) cut off.
        let corrupt = s.nginx.directory.appendingPathComponent("www/stored-gzip/corrupt")
        try Data(try Data(contentsOf: corrupt).dropLast(6)).write(to: corrupt)
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let expected = #"{"email": "a****@example.com", "ssn": "***-**-****", "password": "********"}"#

        // nginx compresses on the fly for curl --compressed: the gate decodes, masks, sends it decoded.
        let compressed = try Self.curl("\(s.url)/small.json", token: agent, ["--compressed", "-D", "-"])
        #expect(compressed.status == 0 && compressed.stdout.hasSuffix(#""password": "********"}, "api": {"token": "tok-clear-1", "note": "kept"}, "token": "top-kept"}"#),
                "\(compressed)")
        #expect(!compressed.stdout.lowercased().contains("content-encoding"), "\(compressed.stdout)")
        // nginx did send it gzipped (curl --compressed asks for gzip among others; the gate passes gzip and deflate on).
        #expect(s.nginx.accessLog.contains { $0.hasPrefix("GET /small.json ") && $0.contains("ce=[gzip]") }, "\(s.nginx.accessLog)")
        let big = try Self.curl("\(s.url)/big.json", token: agent, ["--compressed"])
        #expect(big.status == 0 && !big.stdout.contains("pw-clear") && big.stdout.contains(#""name": "n3999""#), "\(big.stderr)")
        // Stored coded files to a client that asked for no coding: decoded for it.
        for path in ["stored-gzip/c", "stored-deflate/c"] {
            let r = try Self.curl("\(s.url)/\(path)", token: agent, ["-D", "-"])
            #expect(r.status == 0 && r.stdout.hasSuffix(expected) && !r.stdout.lowercased().contains("content-encoding"), "\(path): \(r)")
        }
        for path in ["stored-gzip/bomb", "stored-gzip/corrupt"] {
            let r = try Self.curl("\(s.url)/\(path)", token: agent)
            #expect(r.status != 0 && !r.stdout.contains("gz-clear-pw") && r.stdout.utf8.count < 8 << 20, "\(path): \(r.status) \(r.stderr)")
        }
        let br = try Self.curl("\(s.url)/brotli.json", token: agent, ["-w", "\n%{http_code}"])
        #expect(br.stdout.hasSuffix("\n502") && br.stdout.contains("`br`") && !br.stdout.contains("not really br"), "\(br)")
        s.gate.stop()
        let log = s.gate.logText
        #expect(log.contains("a compression bomb") && log.contains("ends before its compressed stream"), "\(log)")
        let written = try s.gate.everythingWritten()
        for clear in ["ada.lovelace@example.com", "078-05-1120", "gz-clear-pw", "pw-clear-1"] {
            let found = written.contains(bytes: clear)
            #expect(!found, "\(clear) reached the capture or the log")
        }
    }
}
