import CaptureFormat
import Foundation
import TestSupport
import Testing

/// `sessreplay` with an http(s) target on a capture whose gate masked with a custom pattern: the
/// replay cannot mask its own capture the same way unless that pattern is given, so it refuses
/// before sending anything (exit 2); with `--mask-regex NAME=REGEX` it plans the replay.
@Suite("sessreplay HTTP: the original's masks")
struct HTTPReplayMaskTests {
    func capture(in dir: URL) throws -> String {
        let path = dir.appendingPathComponent("masked.sesscap").path
        var options = WriterOptions()
        options.durability = .none
        let header = SessionHeader(sessionID: "5b0c2d1e-0000-4000-8000-00000000a021", target: "hr-api", protocolName: "http",
                                   subject: "dana@example.com", groups: ["hr"], proxyID: "gate-1", startMicros: 1_790_000_000_000_000)
        let w = try CaptureWriter(path: path, header: header, key: SigningKey(), options: options)
        var t: Int64 = 1_790_000_000_000_000
        func add(_ p: Payload, _ x: UInt64 = 0) throws {
            t += 1000
            try w.append(Event(monotonicNanos: UInt64(t - 1_790_000_000_000_000) * 1000, wallMicros: t, exchangeID: x, payload: p))
        }
        try add(.sessionStart(SessionStart(clientAddress: "10.0.0.7:41000")))
        try add(.request(.http(HTTPRequest(method: "GET", target: "/employees/7", host: "hr"))), 1)
        try add(.decision(Decision(action: .allow, policy: "hr", rule: "reads")), 1)
        try add(.response(.http(HTTPResponse(status: 200, headers: [KeyValue("Content-Type", "application/json")],
                                             body: CappedBytes(data: Array(#"{"id":"[REDACTED:employee_id]"}"#.utf8))))), 1)
        try add(.maskSummary(MaskSummary(entries: [MaskCount(detector: "employee_id", count: 1, location: "body")])), 1)
        try add(.sessionEnd(SessionEnd(reason: "client-close")))
        try w.close()
        return path
    }

    @Test func aCustomPatternTheReplayDoesNotKnowRefusesItUntilGiven() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("httpreplay21-masks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = try capture(in: dir)
        // Nothing listens on the target: the refusal comes before any connection.
        let refused = try run(tool("sessreplay").path, ["--dry-run", "--target", "http://127.0.0.1:9", path])
        #expect(refused.status == 2 && refused.stderr.contains("employee_id") && refused.stderr.contains("--mask-regex"), "\(refused)")
        let given = try run(tool("sessreplay").path, ["--dry-run", "--json", "--mask-regex", #"employee_id=EMP-\d{6}"#,
                                                       "--target", "http://127.0.0.1:9", path])
        #expect(given.status == 0 && given.stdout.contains(#""replayed":1"#), "\(given)")
        let bad = try run(tool("sessreplay").path, ["--dry-run", "--mask", "no_such_detector", "--target", "http://127.0.0.1:9", path])
        #expect(bad.status == 2 && bad.stderr.contains("no_such_detector"), "\(bad)")
        // HTTP options with a postgres:// target are a usage error.
        let mixed = try run(tool("sessreplay").path, ["--dry-run", "--token-file", "/nonexistent", "--target", "postgres://u@127.0.0.1/db", path])
        #expect(mixed.status != 0 && mixed.stderr.contains("http(s)://"), "\(mixed)")
    }
}
