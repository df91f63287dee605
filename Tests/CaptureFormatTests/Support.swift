import CaptureFormat
import Foundation
import Testing

// Shared helpers for the capture-format tests: temporary directories, a seeded
// fixed sample events and a random event builder.

/// A directory under the system temporary directory, removed by `remove()`.
struct TempDir {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Runs `body` with a fresh temporary directory and removes it afterwards.
func withTempDir<R>(_ body: (TempDir) throws -> R) throws -> R {
    let dir = try TempDir()
    defer { dir.remove() }
    return try body(dir)
}


func sampleHeader(_ sessionID: String = "sess-0001") -> SessionHeader {
    SessionHeader(sessionID: sessionID, target: "analytics-db", protocolName: "postgres", subject: "alice@example.com",
                  groups: ["ai-assistants", "dba"], issuer: "https://idp.example.com", proxyID: "proxy-1",
                  startMicros: 1_790_000_000_000_000, attributes: [KeyValue("region", "eu-west-1")])
}

/// Options for tests: no fsync unless asked, and no age-based sealing (so block boundaries are deterministic).
func testOptions(blockTargetBytes: Int = 128 * 1024, durability: Durability = .none) -> WriterOptions {
    var o = WriterOptions()
    o.blockTargetBytes = blockTargetBytes
    o.durability = durability
    o.maxBlockAge = .seconds(3600)
    return o
}

/// Writes `events` to a new capture at `path` and closes it (unless `close` is false).
/// Returns the events as the writer numbered them.
@discardableResult
func writeCapture(_ events: [Event], to path: String, key: SigningKey, options: WriterOptions,
                  header: SessionHeader = sampleHeader(), close: Bool = true) throws -> [Event] {
    let writer = try CaptureWriter(path: path, header: header, key: key, options: options)
    var numbered: [Event] = []
    for e in events {
        var n = e
        n.sequence = try writer.append(e)
        numbered.append(n)
    }
    if close { try writer.close() }
    return numbered
}

/// All events of a capture, block by block.
func allEvents(_ capture: CaptureFile) throws -> [Event] {
    var out: [Event] = []
    for b in capture.blocks { out += try capture.events(in: b) }
    return out
}

func summaryOf(_ events: [Event]) -> SessionSummary {
    var b = SummaryBuilder()
    for e in events { b.add(e) }
    return b.build()
}

/// Round trip through the event envelope's wire encoding.
func wireRoundTrip(_ event: Event) throws -> Event {
    try Event(decoding: event.encoded())
}

func decodeEvent(_ bytes: [UInt8]) throws -> Event {
    try Event(decoding: bytes)
}

func posixMode(_ path: String) throws -> Int {
    let attrs = try FileManager.default.attributesOfItem(atPath: path)
    return (attrs[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

func readBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

func open(bytes: [UInt8], path: String = "mem.sesscap") throws(CaptureError) -> CaptureFile {
    try CaptureFile(path: path, data: Data(bytes))
}

// MARK: - Fixed samples: one or more events of every kind

func samplePayloads() -> [(String, Payload)] {
    let sha = [UInt8](repeating: 0xAB, count: 32)
    return [
        ("session start with TLS", .sessionStart(SessionStart(
            clientAddress: "10.0.0.7:53122", applicationName: "psql",
            tls: TLSInfo(version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", serverName: "db.internal"),
            parameters: [KeyValue("user", "copilot"), KeyValue("database", "analytics"), KeyValue("client_encoding", "UTF8")]))),
        ("session start without TLS", .sessionStart(SessionStart(clientAddress: "[::1]:4000"))),
        ("session start with empty TLS", .sessionStart(SessionStart(clientAddress: "", tls: TLSInfo(version: "", cipher: "")))),
        ("postgres simple query", .request(.postgres(PostgresRequest(
            text: "SELECT id, email FROM analytics.users WHERE id = 42", path: .simple,
            fingerprint: "a1b2c3d4e5f60718", normalized: "SELECT id, email FROM analytics.users WHERE id = $1",
            statementKinds: ["select"], resources: [Resource(schema: "analytics", name: "users", access: .read)],
            functions: ["lower"])))),
        ("postgres extended query", .request(.postgres(PostgresRequest(
            text: "UPDATE public.orders SET note = $1, blob = $2, n = $3 WHERE id = $4", path: .extended,
            statementName: "s1", portalName: "p1",
            parameters: [Parameter(text: "héllo ✓"), Parameter(value: nil), Parameter(value: [0x00, 0xFF, 0x10, 0x80], format: 1, typeOID: 17),
                         Parameter(value: [], format: 0, typeOID: 25), Parameter(value: [0, 0, 0, 42], format: 1, typeOID: 23)],
            statementKinds: ["update"], resources: [Resource(schema: "", name: "orders", access: .write)])))),
        ("postgres function call", .request(.postgres(PostgresRequest(text: "", path: .functionCall, functions: ["pg_sleep"])))),
        ("http request", .request(.http(HTTPRequest(
            method: "POST", target: "/v1/orders?dry_run=1", host: "api.internal",
            headers: [KeyValue("content-type", "application/json"), KeyValue("x-empty", "")],
            body: CappedBytes(data: Array("{\"qty\": 3}".utf8)))))),
        ("http request capped body", .request(.http(HTTPRequest(
            method: "PUT", target: "/upload", body: CappedBytes(data: [1, 2, 3, 4], totalSize: 1_000_000, cutSHA256: sha))))),
        ("kubernetes exec", .request(.kubernetes(KubernetesRequest(
            http: HTTPRequest(method: "POST", target: "/api/v1/namespaces/prod/pods/web-0/exec?command=sh", host: "k8s.internal"),
            verb: "create", apiGroup: "", apiVersion: "v1", resource: "pods", namespace: "prod", name: "web-0",
            subresource: "exec", command: ["sh", "-c", "cat /etc/hostname && echo ''", ""], container: "app")))),
        ("kubernetes list", .request(.kubernetes(KubernetesRequest(
            http: HTTPRequest(method: "GET", target: "/apis/apps/v1/deployments"), verb: "list", apiGroup: "apps",
            resource: "deployments")))),
        ("decision allow", .decision(Decision(action: .allow, policy: "copilot-analytics", rule: "rule-1",
                                              reason: "select on analytics", masks: ["email", "credit_card"]))),
        ("decision deny", .decision(Decision(action: .deny, policy: "copilot-analytics", rule: "rule-3", reason: "DELETE is denied"))),
        ("decision review", .decision(Decision(action: .review, policy: "p", rule: "rule-2"))),
        ("approval requested", .approval(Approval(state: .requested, approvalID: "ap-1", approverGroups: ["dba", "sre"]))),
        ("approval granted", .approval(Approval(state: .granted, approvalID: "ap-1", by: "bob", reason: "looks fine"))),
        ("approval denied", .approval(Approval(state: .denied, approvalID: "ap-2", by: "carol", reason: "too broad"))),
        ("approval expired", .approval(Approval(state: .expired, approvalID: "ap-3"))),
        ("approval withdrawn", .approval(Approval(state: .withdrawn, approvalID: "ap-4", reason: "withdrawn: cancelled by the client"))),
        ("approval abandoned", .approval(Approval(state: .abandoned, approvalID: "ap-5", reason: "the gate stopped while it waited"))),
        ("approval reused", .approval(Approval(state: .reused, approvalID: "ap-6", by: "bob, carol", reason: "grant g-1 from approval ap-1",
                                               grantID: "g-1"))),
        ("postgres response rows", .response(.postgres(PostgresResponse(
            columns: [Column(name: "id", typeOID: 23, tableOID: 16384, attributeNumber: 1),
                      Column(name: "email", typeOID: 25, tableOID: 16384, attributeNumber: 2),
                      Column(name: "raw", typeOID: 17, format: 1)],
            rows: [[Array("1".utf8), Array("a***@example.com".utf8), [0, 1, 2]],
                   [Array("2".utf8), nil, []],
                   [nil, [], nil],
                   []],
            rowCount: 4, commandTag: "SELECT 4",
            notices: [PostgresNotice(severity: "NOTICE", sqlState: "00000", message: "masked 1 value")],
            durationMicros: 1234)))),
        ("postgres response error", .response(.postgres(PostgresResponse(
            commandTag: "", error: PostgresNotice(severity: "ERROR", sqlState: "42P01", message: "relation \"nope\" does not exist",
                                                  detail: "d", hint: "h"),
            notices: [PostgresNotice(severity: "WARNING", sqlState: "01000", message: "w1"),
                      PostgresNotice(severity: "NOTICE", sqlState: "00000", message: "")])))),
        ("postgres response cut rows", .response(.postgres(PostgresResponse(
            columns: [Column(name: "n", typeOID: 20)], rows: [[Array("1".utf8)]], rowCount: 1_000_000, commandTag: "SELECT 1000000",
            cut: CutRows(rows: 999_999, bytes: 6_888_888, sha256: sha))))),
        ("http response capped body", .response(.http(HTTPResponse(
            status: 200, headers: [KeyValue("content-type", "text/plain")],
            body: CappedBytes(data: Array("first part".utf8), totalSize: 50_000_000, cutSHA256: sha), durationMicros: 99)))),
        ("http response 404", .response(.http(HTTPResponse(status: 404)))),
        ("stream stdin", .streamChunk(StreamChunk(stream: .stdin, data: Array("ls -la\n".utf8)))),
        ("stream stdout", .streamChunk(StreamChunk(stream: .stdout, data: [0x1B, 0x5B, 0x33, 0x31, 0x6D, 0x0A]))),
        ("stream stderr", .streamChunk(StreamChunk(stream: .stderr, data: Array("error: nope\n".utf8)))),
        ("stream resize", .streamChunk(StreamChunk(stream: .resize, columns: 120, rows: 40))),
        ("stream empty stdin", .streamChunk(StreamChunk(stream: .stdin))),
        ("mask summary", .maskSummary(MaskSummary(entries: [MaskCount(detector: "email", count: 3, location: "email"),
                                                           MaskCount(detector: "credit_card", count: 1),
                                                           MaskCount(detector: "email", count: 2, location: "notes")]))),
        ("annotation", .annotation(Annotation(promptID: "prompt-77", traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                             text: "assistant asked for revenue by month", attributes: [KeyValue("model", "x")]))),
        ("divergence", .divergence(Divergence(statement: 1, expected: "select", actual: "DELETE 1"))),
        ("unknown kind", .unknown(kind: 42, bytes: [0x0A, 0x03, 0x61, 0x62, 0x63, 0xFF, 0x00])),
        ("unknown kind, empty body", .unknown(kind: 200, bytes: [])),
        ("session end", .sessionEnd(SessionEnd(reason: "client-terminate", detail: "Terminate message"))),
        ("session end with counts", .sessionEnd(SessionEnd(reason: "client-terminate", counts: SessionCounts(
            requests: 12, refused: 2, errors: 3, rows: 1_000_000_007, bytesFromClient: 4_096, bytesToClient: 1 << 33)))),
    ]
}

func sampleEvents() -> [Event] {
    samplePayloads().enumerated().map { i, p in
        Event(monotonicNanos: UInt64(i) * 1_000_000, wallMicros: 1_790_000_000_000_000 + Int64(i) * 1000,
              exchangeID: UInt64(i / 4), payload: p.1)
    }
}

// MARK: - Random events

enum RandomEvents {
    static let pieces: [String] = ["a", "b", "z", "Q", "0", "9", " ", "_", "-", ".", "é", "ß", "Ω", "日", "本", "語", "🦊", "👩‍💻",
                                   "\u{301}", "ש", "\n", "\t", "\"", "\\", "\u{0}", "\u{FFFD}", "𝄞", "ﬀ"]

    static func count(_ g: inout some RandomNumberGenerator, small: ClosedRange<Int>, medium: ClosedRange<Int>, large: ClosedRange<Int>) -> Int {
        let p = Int.random(in: 0..<100, using: &g)
        if p < 70 { return Int.random(in: small, using: &g) }
        if p < 97 { return Int.random(in: medium, using: &g) }
        return Int.random(in: large, using: &g)
    }

    static func string(_ g: inout some RandomNumberGenerator) -> String {
        let n = count(&g, small: 0...8, medium: 9...60, large: 200...2000)
        var s = ""
        for _ in 0..<n { s += pieces[Int.random(in: 0..<pieces.count, using: &g)] }
        return s
    }

    static func strings(_ g: inout some RandomNumberGenerator) -> [String] {
        (0..<Int.random(in: 0...3, using: &g)).map { _ in string(&g) }
    }

    static func bytes(_ g: inout some RandomNumberGenerator) -> [UInt8] {
        let n = count(&g, small: 0...16, medium: 17...300, large: 1000...20_000)
        return (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
    }

    static func bool(_ g: inout some RandomNumberGenerator) -> Bool { Bool.random(using: &g) }

    static func u64(_ g: inout some RandomNumberGenerator) -> UInt64 {
        // Mix small values (short varints, zero defaults) with full-range ones.
        switch Int.random(in: 0..<4, using: &g) {
        case 0: 0
        case 1: UInt64.random(in: 0...300, using: &g)
        default: UInt64.random(in: 0...UInt64.max, using: &g)
        }
    }

    static func keyValues(_ g: inout some RandomNumberGenerator) -> [KeyValue] {
        (0..<Int.random(in: 0...3, using: &g)).map { _ in KeyValue(string(&g), string(&g)) }
    }

    static func capped(_ g: inout some RandomNumberGenerator) -> CappedBytes {
        let data = bytes(&g)
        if bool(&g) { return CappedBytes(data: data) }
        let extra = UInt64.random(in: 1...UInt64(1) << 40, using: &g)
        return CappedBytes(data: data, totalSize: UInt64(data.count) + extra,
                           cutSHA256: (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) })
    }

    static func http(_ g: inout some RandomNumberGenerator) -> HTTPRequest {
        HTTPRequest(method: string(&g), target: string(&g), host: string(&g), headers: keyValues(&g), body: capped(&g))
    }

    static func notice(_ g: inout some RandomNumberGenerator) -> PostgresNotice {
        PostgresNotice(severity: string(&g), sqlState: string(&g), message: string(&g), detail: string(&g), hint: string(&g))
    }

    static func row(_ g: inout some RandomNumberGenerator) -> Row {
        (0..<Int.random(in: 0...4, using: &g)).map { _ in bool(&g) ? bytes(&g) : nil }
    }

    static func payload(_ g: inout some RandomNumberGenerator) -> Payload {
        switch Int.random(in: 0..<11, using: &g) {
        case 0:
            return .sessionStart(SessionStart(clientAddress: string(&g), applicationName: string(&g),
                                              tls: bool(&g) ? TLSInfo(version: string(&g), cipher: string(&g), serverName: string(&g)) : nil,
                                              parameters: keyValues(&g)))
        case 1:
            let counts = bool(&g) ? SessionCounts(requests: .random(in: 0...UInt64.max, using: &g), refused: .random(in: 0...3, using: &g),
                                                   errors: .random(in: 0...1_000, using: &g), rows: .random(in: 0...UInt64.max, using: &g),
                                                   bytesFromClient: .random(in: 0...1 << 40, using: &g), bytesToClient: 0) : nil
            return .sessionEnd(SessionEnd(reason: string(&g), detail: string(&g), counts: counts))
        case 2:
            switch Int.random(in: 0..<3, using: &g) {
            case 0:
                let params = (0..<Int.random(in: 0...4, using: &g)).map { _ in
                    Parameter(value: bool(&g) ? bytes(&g) : nil, format: UInt8.random(in: 0...1, using: &g),
                              typeOID: UInt32.random(in: 0...UInt32.max, using: &g))
                }
                let resources = (0..<Int.random(in: 0...3, using: &g)).map { _ in
                    Resource(schema: string(&g), name: string(&g), access: bool(&g) ? .read : .write)
                }
                return .request(.postgres(PostgresRequest(
                    text: string(&g), path: [.simple, .extended, .functionCall][Int.random(in: 0..<3, using: &g)],
                    statementName: string(&g), portalName: string(&g), parameters: params, fingerprint: string(&g),
                    normalized: string(&g), statementKinds: strings(&g), resources: resources, functions: strings(&g))))
            case 1:
                return .request(.http(http(&g)))
            default:
                return .request(.kubernetes(KubernetesRequest(
                    http: http(&g), verb: string(&g), apiGroup: string(&g), apiVersion: string(&g), resource: string(&g),
                    namespace: string(&g), name: string(&g), subresource: string(&g), command: strings(&g), container: string(&g))))
            }
        case 3:
            return .decision(Decision(action: Decision.Action.allCases.randomElement(using: &g)!, policy: string(&g),
                                      rule: string(&g), reason: string(&g), masks: strings(&g)))
        case 4:
            return .approval(Approval(state: Approval.State.allCases.randomElement(using: &g)!, approvalID: string(&g),
                                      by: string(&g), reason: string(&g), approverGroups: strings(&g), grantID: string(&g)))
        case 5:
            if bool(&g) {
                let columns = (0..<Int.random(in: 0...3, using: &g)).map { _ in
                    Column(name: string(&g), typeOID: UInt32.random(in: 0...UInt32.max, using: &g),
                           tableOID: UInt32.random(in: 0...UInt32.max, using: &g),
                           attributeNumber: UInt16.random(in: 0...UInt16.max, using: &g), format: UInt8.random(in: 0...1, using: &g))
                }
                return .response(.postgres(PostgresResponse(
                    columns: columns, rows: (0..<Int.random(in: 0...5, using: &g)).map { _ in row(&g) },
                    rowCount: u64(&g), commandTag: string(&g), error: bool(&g) ? notice(&g) : nil,
                    notices: (0..<Int.random(in: 0...2, using: &g)).map { _ in notice(&g) }, durationMicros: u64(&g),
                    cut: bool(&g) ? CutRows(rows: u64(&g) >> 24, bytes: u64(&g) >> 24, sha256: bytes(&g)) : nil)))
            }
            return .response(.http(HTTPResponse(status: UInt16.random(in: 0...UInt16.max, using: &g), headers: keyValues(&g),
                                                body: capped(&g), durationMicros: u64(&g))))
        case 6:
            let stream = StreamChunk.Stream.allCases.randomElement(using: &g)!
            return .streamChunk(StreamChunk(stream: stream, data: bytes(&g), columns: UInt16.random(in: 0...UInt16.max, using: &g),
                                            rows: UInt16.random(in: 0...UInt16.max, using: &g)))
        case 7:
            return .maskSummary(MaskSummary(entries: (0..<Int.random(in: 0...4, using: &g)).map { _ in
                MaskCount(detector: string(&g), count: u64(&g) >> 16, location: string(&g))
            }))
        case 8:
            let traceparent = bool(&g)
                ? "00-\((0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined())-00f067aa0ba902b7-01"
                : string(&g)
            return .annotation(Annotation(promptID: string(&g), traceparent: traceparent, text: string(&g), attributes: keyValues(&g)))
        default:
            // Codes 11...255 are kinds this reader does not know (10 is divergence, since 1.2).
            return .unknown(kind: UInt8.random(in: 11...255, using: &g), bytes: bytes(&g))
        }
    }

    static func event(_ g: inout some RandomNumberGenerator) -> Event {
        Event(sequence: u64(&g), monotonicNanos: u64(&g), wallMicros: Int64(bitPattern: u64(&g)),
              exchangeID: u64(&g), payload: payload(&g))
    }
}

/// Block index entries without their exchange spans (which only a footer's index holds), to compare with scanned blocks.
func withoutSpans(_ blocks: [BlockInfo]) -> [BlockInfo] {
    blocks.map { var b = $0; b.exchangeSpan = nil; return b }
}
