import CaptureFormat
import Foundation
import TestSupport
import Testing

/// Bad input through the HTTP gate (issue 20), each after a valid request on the same connection
/// so that a session exists: every smuggling form, oversized headers, malformed chunks, and
/// refused tokens each get a clear error, reach nothing upstream (nginx's access log holds only
/// the valid requests), and are recorded as refused.
@Suite("HTTP gate: bad input is refused, reaches nothing and is recorded", .serialized)
struct HTTPGateBadInputTests {
    let provider: OIDCProvider

    init() throws { provider = try sharedProvider.get() }

    /// Sends `bytes` on one connection and reads until the gate closes it.
    static let rawClient = """
        import socket, sys
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
        s.sendall(sys.stdin.buffer.read())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        sys.stdout.write(data.decode("latin-1"))
        """

    func setup() throws -> HTTPGateMaskingTests.Setup {
        // A header limit the oversized case exceeds (the default is 16 KiB).
        try HTTPGateMaskingTests.start(provider: provider, files: ["ok.json": #"{"ok": true}"#, "upload": "stored"],
                                       masks: "[]\n    limits: {max_header_bytes: 4096}",
                                       rules: "- {name: uploads, when: {method: [POST], http_path: [/upload]}, then: allow}")
    }

    @Test func everySmugglingFormOversizedHeadersAndMalformedChunksAreRefusedAndRecorded() throws {
        let s = try setup()
        defer { s.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let auth = "Authorization: Bearer \(agent)\r\n"
        let valid = "GET /ok.json HTTP/1.1\r\nHost: x\r\n\(auth)\r\n"
        // (label, the refused request, status, what the recorded reason names)
        let cases: [(String, String, Int, String)] = [
            ("CL and TE", "POST /upload HTTP/1.1\r\nHost: x\r\n\(auth)Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "content_length_and_transfer_encoding"),
            ("two lengths", "POST /upload HTTP/1.1\r\nHost: x\r\n\(auth)Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400, "length"),
            ("a length list", "POST /upload HTTP/1.1\r\nHost: x\r\n\(auth)Content-Length: 3, 3\r\n\r\nabc", 400, "length"),
            ("a signed length", "POST /upload HTTP/1.1\r\nHost: x\r\n\(auth)Content-Length: +3\r\n\r\nabc", 400, "length"),
            ("TE not chunked last", "POST /upload HTTP/1.1\r\nHost: x\r\n\(auth)Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400, "transfer"),
            ("two TE fields", "POST /upload HTTP/1.1\r\nHost: x\r\n\(auth)Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "transfer"),
            ("obs-fold", "GET /ok.json HTTP/1.1\r\nHost: x\r\n\(auth)X-A: a\r\n b\r\n\r\n", 400, "fold"),
            ("space before colon", "GET /ok.json HTTP/1.1\r\nHost: x\r\n\(auth)X-A : a\r\n\r\n", 400, ""),
            ("bare LF", "GET /ok.json HTTP/1.1\nHost: x\r\n\(auth)\r\n", 400, ""),
            ("two Hosts", "GET /ok.json HTTP/1.1\r\nHost: x\r\nHost: y\r\n\(auth)\r\n", 400, "host"),
            ("absolute-form", "GET http://other/ok.json HTTP/1.1\r\nHost: x\r\n\(auth)\r\n", 400, ""),
            ("a signed chunk size", "POST /upload HTTP/1.1\r\nHost: x\r\n\(auth)Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", 400, "chunk"),
            ("a 0x chunk size", "POST /upload HTTP/1.1\r\nHost: x\r\n\(auth)Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400, "chunk"),
            ("chunk data longer than its size", "POST /upload HTTP/1.1\r\nHost: x\r\n\(auth)Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400, "chunk"),
            ("a chunk line ended by LF", "POST /upload HTTP/1.1\r\nHost: x\r\n\(auth)Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400, "chunk"),
            ("oversized headers", "GET /ok.json HTTP/1.1\r\nHost: x\r\n\(auth)X-Big: \(String(repeating: "a", count: 5000))\r\n\r\n", 431, ""),
            ("HTTP/2.0", "GET /ok.json HTTP/2.0\r\nHost: x\r\n\(auth)\r\n", 505, ""),
        ]
        for (label, bad, status, _) in cases {
            let r = try run("python3", ["-c", Self.rawClient, "\(s.gate.port("api"))"], stdin: valid + bad, timeout: .seconds(60))
            // The valid request answered, then the refusal (the last answer: the gate closed the connection).
            let answers = Array(r.stdout.components(separatedBy: "HTTP/1.1 ").dropFirst())
            #expect(answers.count >= 2 && answers[0].hasPrefix("200 ") && answers[1].hasPrefix("\(status) ") && answers[1].contains("Connection: close"),
                    "\(label): \(r.stdout.debugDescription)")
        }
        // Only the valid requests reached nginx.
        let log = s.nginx.accessLog
        #expect(log.count == cases.count && log.allSatisfy { $0.hasPrefix("GET /ok.json ") }, "\(log)")
        s.gate.stop()
        let events = try s.gate.captures().flatMap { try allEvents($0) }
        let refusals = events.compactMap { if case .decision(let d) = $0.payload, d.rule == "http-framing", d.action == .deny { d.reason.lowercased() } else { nil } }
        #expect(refusals.count == cases.count, "\(refusals)")
        for (label, _, _, word) in cases where !word.isEmpty {
            #expect(refusals.contains { $0.contains(word) }, "\(label): no recorded refusal naming \(word): \(refusals)")
        }
        let statuses = events.compactMap { if case .response(.http(let h)) = $0.payload { Int(h.status) } else { nil } }
        #expect(statuses.filter { $0 >= 400 }.count == cases.count, "\(statuses)")
    }

    @Test func refusedTokensInASessionAre401RecordedAndReachNothing() throws {
        let s = try setup()
        defer { s.stop() }
        let agent = try provider.token("agent@example.com", groups: ["ai-assistants"])
        let other = try OIDCProvider()
        let foreign = try other.token("agent@example.com", groups: ["ai-assistants"])
        let wrongAudience = try provider.token("agent@example.com", groups: ["ai-assistants"], audience: "other-app")
        var bytes = "GET /ok.json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(agent)\r\n\r\n"
        for header in ["", "Authorization: Bearer not.a.jwt\r\n", "Authorization: Bearer \(wrongAudience)\r\n",
                       "Authorization: Bearer \(foreign)\r\n", "Authorization: Basic YTpi\r\n"] {
            bytes += "GET /ok.json HTTP/1.1\r\nHost: x\r\n\(header)\r\n"
        }
        bytes += "GET /ok.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer \(agent)\r\n\r\n"
        let r = try run("python3", ["-c", Self.rawClient, "\(s.gate.port("api"))"], stdin: bytes, timeout: .seconds(60))
        let answers = r.stdout.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
        #expect(answers == ["200", "401", "401", "401", "401", "401", "200"], "\(r.stdout)")
        #expect(r.stdout.components(separatedBy: "error=\"invalid_token\"").count - 1 >= 3, "\(r.stdout)")
        #expect(s.nginx.accessLog.count == 2, "\(s.nginx.accessLog)")
        s.gate.stop()
        let events = try s.gate.captures().flatMap { try allEvents($0) }
        let refused = events.compactMap { if case .decision(let d) = $0.payload, d.rule == "authentication", d.action == .deny { d.reason } else { nil } }
        #expect(refused.count == 5, "\(refused)")
        try s.gate.expectNoSecrets([agent, wrongAudience, foreign])
    }
}
