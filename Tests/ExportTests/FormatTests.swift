import CaptureFormat
@testable import Forensics
import Foundation
import TestSupport
import Testing

@Suite("open formats")
struct FormatTests {
    // MARK: CSV

    @Test func csvQuotesOnlyWhatRFC4180Requires() {
        #expect(CSV.field("plain") == "plain")
        #expect(CSV.field("") == "")
        #expect(CSV.field("a,b") == "\"a,b\"")
        #expect(CSV.field("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(CSV.field("two\nlines") == "\"two\nlines\"")
        #expect(CSV.field("cr\ronly") == "\"cr\ronly\"")
        #expect(CSV.field("=HYPERLINK(\"x\")") == "\"=HYPERLINK(\"\"x\"\")\"", "values are kept as recorded, only quoted")
        #expect(CSV.record(["a", "b,c", ""]) == "a,\"b,c\",\r\n")
    }

    @Test func csvHasOneRecordPerExchangeWithItsDecision() {
        var a = ExchangeAssembler()
        a.add(event(1, .request(.postgres(PostgresRequest(text: "SELECT 1, 'x,y'", path: .extended, parameters: [Parameter(text: nil), Parameter(text: "a\"b")])))))
        a.add(event(1, .decision(Decision(action: .review, policy: "pol", rule: "writes", reason: "needs a DBA"))))
        a.add(event(1, .approval(Approval(state: .granted, approvalID: "apr_1", by: "dba@example.com", reason: "ok"))))
        a.add(event(1, .response(.postgres(PostgresResponse(columns: [Column(name: "c", typeOID: 23)], rows: [[[0x31]], [[0x32]]], rowCount: 2, commandTag: "SELECT 2")))))
        a.add(event(1, .maskSummary(MaskSummary(entries: [MaskCount(detector: "email", count: 3, location: "email")]))))
        a.add(event(2, .request(.http(HTTPRequest(method: "GET", target: "/x?y=1", host: "api.example.com")))))
        a.add(event(2, .decision(Decision(action: .deny, policy: "pol", rule: "no"))))
        let csv = CSV.exchanges(a.exchanges, session: "s1")
        let records = csv.components(separatedBy: "\r\n")
        #expect(records.count == 4, "header, two exchanges, and the empty string after the last CRLF")
        #expect(records[0].hasPrefix("session,exchange,request_seq,time,protocol,request"))
        #expect(records[1].contains("\"SELECT 1, 'x,y'\""))
        #expect(records[1].contains(#""[null,""a\""b""]""#), "parameters as a JSON array, quoted for CSV")
        #expect(records[1].contains(",review,pol,writes,needs a DBA,,granted,dba@example.com,ok,SELECT 2,2,2,"))
        #expect(records[1].contains("email=3@email"))
        #expect(records[2].contains("GET api.example.com/x?y=1"))
        #expect(records[2].contains(",deny,pol,no,"))
        #expect(a.exchanges[0].recordedRows == 2)
        #expect(a.exchanges[0].forwarded)
        #expect(!a.exchanges[1].forwarded)
    }

    // MARK: SQL

    @Test func sqlScriptKeepsHostileValuesInsideComments() throws {
        let hostile = "x'\nDROP TABLE users; --\r\nDELETE FROM t"
        var a = ExchangeAssembler()
        a.add(event(1, .request(.postgres(PostgresRequest(text: "SELECT $1, $2, $3", path: .extended,
                                                         parameters: [Parameter(text: hostile), Parameter(text: nil), Parameter(value: [0, 1, 0xFF], format: 1, typeOID: 17)])))))
        a.add(event(1, .decision(Decision(action: .allow, policy: "p", rule: "ok\nDROP TABLE rules"))))
        a.add(event(2, .request(.postgres(PostgresRequest(text: "DELETE FROM orders\nWHERE true")))))
        a.add(event(2, .decision(Decision(action: .deny, policy: "p", rule: "no-delete", reason: "never\rDROP DATABASE x"))))
        a.add(event(3, .request(.postgres(PostgresRequest(text: "UPDATE t SET a = 1 -- trailing comment")))))
        a.add(event(3, .decision(Decision(action: .review, policy: "p", rule: "r"))))
        a.add(event(3, .approval(Approval(state: .granted, approvalID: "a1", by: "dba"))))
        a.add(event(4, .request(.postgres(PostgresRequest(text: "INSERT INTO t VALUES (1)")))))
        a.add(event(4, .decision(Decision(action: .review, policy: "p", rule: "r"))))
        a.add(event(4, .approval(Approval(state: .expired, approvalID: "a2"))))
        let header = SessionHeader(sessionID: "s\nDROP", target: "db", protocolName: "postgres", subject: "eve\n; DROP TABLE x", proxyID: "g", startMicros: 0)
        let sql = try #require(SQLScript.render(a.exchanges, header: header, capturePath: "captures/x.sesscap"))
        // Lines a client would run: everything that is not a comment, blank, or the \quit guard.
        let live = sql.components(separatedBy: "\n").filter { !$0.hasPrefix("--") && !$0.isEmpty && $0 != "\\quit" }
        #expect(live == ["SELECT $1, $2, $3;", "UPDATE t SET a = 1 -- trailing comment", ";"], "\(live)")
        #expect(!sql.contains("\r"), "a CR would end a comment in PostgreSQL's lexer")
        #expect(sql.contains("-- $1 = E'x''\\nDROP TABLE users; --\\r\\nDELETE FROM t'"))
        #expect(sql.contains("-- $2 = NULL"))
        #expect(sql.contains("-- $3 = '\\x0001ff'::bytea (binary format) -- type bytea"))
        #expect(sql.contains("-- NOT FORWARDED:\n-- DELETE FROM orders\n-- WHERE true;"))
        #expect(sql.contains("-- NOT FORWARDED:\n-- INSERT INTO t VALUES (1);"))
        let quitLine = try #require(sql.components(separatedBy: "\n").firstIndex(of: "\\quit"))
        let firstStatement = try #require(sql.components(separatedBy: "\n").firstIndex(of: "SELECT $1, $2, $3;"))
        #expect(quitLine < firstStatement, "the guard comes before any statement")
        #expect(SQLScript.render([], header: header, capturePath: "x") == nil)
    }

    // MARK: HTML

    @Test func htmlEscapesMarkupAndShowsControlCharacters() {
        #expect(HTML.escape("<script>alert(\"x\" & 'y')</script>") == "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;")
        #expect(HTML.escape("\u{1B}[31mred\u{0}") == "␛[31mred␀")
        #expect(HTML.escape("line\nnext\ttab") == "line\nnext\ttab")
    }

    @Test func reportSectionsKeepToTheirBudget() throws {
        #expect(ReportLimits.forSessions(1).timeline == 2000)
        #expect(ReportLimits.forSessions(200).timeline == 100)
        #expect(ReportLimits.forSessions(200).rows == 50)
        let s = try Scratch()
        defer { s.remove() }
        try writeCapture(s.path("a.sesscap"), key: SigningKey(), postgresExchanges(60))  // 60 exchanges, 6 denied: 176 events
        let capture = try CaptureFile(path: s.path("a.sesscap"))
        let rendering = try SessionRenderer.render(capture, capturePath: "captures/a.sesscap", timeline: 20) { (_: String) throws(ExportError) in
            try DigestWriter(path: nil)
        }
        #expect(rendering.timeline.count == 20)
        #expect(rendering.timelineOmitted == 156)
        let integrity = Integrity(state: .clean, blocks: 1, events: 182, lastSequence: 182, signerKeyId: "k", sealerKeyId: "k", keyPinned: false, fileLength: 1)
        let entry = SessionEntry(session: "s", capture: "captures/a.sesscap", sourcePath: "a", captureFormat: "1.1", subject: "a", groups: [], issuer: "",
                                 target: "t", protocol: "postgres", proxy: "p", writer: "w", start: "x", firstEvent: nil, lastEvent: nil, events: 182,
                                 exchanges: 60, errors: 0, kinds: [:], decisions: [:], approvals: [:], masked: [:], resources: [], requestBytes: 0,
                                 responseBytes: 0, endReason: "", integrity: integrity, files: [])
        let html = ReportSession(entry: entry, directory: "sessions/s", rendering: rendering, limits: ReportLimits(timeline: 20, rows: 4)).section
        #expect(html.contains("The first 4 of 6; all are in <a href=\"sessions/s/exchanges.csv\">"))
        #expect(html.contains("The first 20 events; 156 more are in"))
        #expect(html.components(separatedBy: "<span class=\"bad\">deny</span>").count - 1 == 4)
    }

    // MARK: asciicast

    @Test func asciicastDecodesCharactersSplitAcrossChunksAndKeepsTimeMonotonic() throws {
        var b = AsciicastBuilder()
        let e = Array("é".utf8)  // C3 A9
        b.add(StreamChunk(stream: .resize, columns: 100, rows: 30), event: event(1, .annotation(Annotation()), micros: 1_790_000_000_000_000, nanos: 5_000_000_000))
        b.add(StreamChunk(stream: .stdout, data: Array("caf".utf8) + [e[0]]), event: event(1, .annotation(Annotation()), nanos: 5_100_000_000))
        b.add(StreamChunk(stream: .stdout, data: [e[1]] + Array("!\r\n".utf8)), event: event(1, .annotation(Annotation()), nanos: 5_200_000_000))
        // A clock that goes back (a damaged or hostile file) must not make time go backwards.
        b.add(StreamChunk(stream: .stdin, data: Array("ls\r".utf8)), event: event(1, .annotation(Annotation()), nanos: 4_000_000_000))
        b.add(StreamChunk(stream: .stderr, data: [0xFF, 0x41]), event: event(1, .annotation(Annotation()), nanos: 6_000_000_000))
        let cast = b.render(header: SessionHeader(sessionID: "s", target: "t", protocolName: "kubernetes", subject: "sam", proxyID: "g", startMicros: 0), exchange: nil)
        let lines = cast.split(separator: "\n").map(String.init)
        let header = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(header["version"] as? Int == 2)
        #expect(header["width"] as? Int == 100)
        #expect(header["height"] as? Int == 30)
        let events = try lines.dropFirst().map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [Any]) }
        #expect(events.map { $0[1] as? String } == ["r", "o", "o", "i", "o"])
        #expect(events.map { $0[2] as? String } == ["100x30", "caf", "é!\r\n", "ls\r", "\u{FFFD}A"])
        let times = events.map { ($0[0] as? NSNumber)?.doubleValue ?? -1 }
        #expect(times == [0, 0.1, 0.2, 0.2, 1.0])
        #expect(zip(times, times.dropFirst()).allSatisfy { $0 <= $1 })

        var plain = AsciicastBuilder()
        plain.add(StreamChunk(stream: .stdout, data: [0x61]), event: event(1, .annotation(Annotation()), nanos: 1))
        #expect(plain.render(header: SessionHeader(sessionID: "s", target: "t", protocolName: "k", subject: "s", proxyID: "g", startMicros: 0), exchange: nil)
            .hasPrefix("{\"version\":2,\"width\":80,\"height\":24,"))
    }

    // MARK: HAR

    @Test func harMarksRefusedRequestsAndCappedBodies() throws {
        var a = ExchangeAssembler()
        let big = CappedBytes(data: Array("abc".utf8), totalSize: 10_000, cutSHA256: [UInt8](repeating: 0xAB, count: 32))
        a.add(event(1, .request(.http(HTTPRequest(method: "POST", target: "/v1/users?q=a%20b&flag", host: "api.example.com",
                                                   headers: [KeyValue("Content-Type", "application/json")], body: CappedBytes(data: [0xFF, 0x00]))))))
        a.add(event(1, .decision(Decision(action: .allow, policy: "p", rule: "r"))))
        a.add(event(1, .response(.http(HTTPResponse(status: 200, headers: [KeyValue("content-type", "text/plain")], body: big, durationMicros: 1234)))))
        a.add(event(2, .request(.http(HTTPRequest(method: "DELETE", target: "/v1/users/7")))))
        a.add(event(2, .decision(Decision(action: .deny, policy: "p", rule: "no-delete"))))
        let header = SessionHeader(sessionID: "s1", target: "api", protocolName: "http", subject: "bob", proxyID: "g", startMicros: 1_790_000_000_000_000)
        let text = try #require(HAR.render(a.exchanges, header: header, casts: [:]))
        let har = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let log = try #require(har["log"] as? [String: Any])
        #expect(log["version"] as? String == "1.2")
        let entries = try #require(log["entries"] as? [[String: Any]])
        #expect(entries.count == 2)
        let req = try #require(entries[0]["request"] as? [String: Any])
        #expect(req["url"] as? String == "https://api.example.com/v1/users?q=a%20b&flag")
        let query = try #require(req["queryString"] as? [[String: String]])
        #expect(query == [["name": "q", "value": "a b"], ["name": "flag", "value": ""]])
        let post = try #require(req["postData"] as? [String: Any])
        #expect(post["_encoding"] as? String == "base64")
        #expect(post["text"] as? String == "/wA=")
        let content = try #require((entries[0]["response"] as? [String: Any])?["content"] as? [String: Any])
        #expect(content["size"] as? Int == 10_000)
        #expect(content["text"] as? String == "abc")
        #expect((content["comment"] as? String)?.contains(String(repeating: "ab", count: 32)) == true)
        #expect((entries[0]["time"] as? NSNumber)?.doubleValue == 1.234)
        let refused = try #require(entries[1]["response"] as? [String: Any])
        #expect(refused["status"] as? Int == 0)
        #expect(((entries[1]["_tollgate"] as? [String: Any])?["decision"] as? String) == "deny")
        #expect((entries[1]["request"] as? [String: Any])?["url"] as? String == "https://api/v1/users/7", "no host: the target's name")
    }
}
