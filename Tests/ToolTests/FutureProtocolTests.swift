import CaptureFormat
import Foundation
import TestSupport
import Testing

/// A capture of a protocol added after this reader (a MySQL, SSH or MCP adapter's): its
/// requests and responses under payload tags this reader does not know. The spec promises that
/// older readers step over what they do not know: the tools read it as "unknown protocol (N)"
/// with everything else intact, and it verifies.
@Suite("captures of a protocol added later")
struct FutureProtocolTests {
    /// On disk exactly what a newer writer produces: `Request`/`Response` messages whose only
    /// field is a nested message under tag 7 (written here through `.unknown`, which stores its
    /// bytes as they are).
    func futureCapture(in dir: URL) throws -> String {
        let path = dir.appendingPathComponent("future.sesscap").path
        var options = WriterOptions()
        options.durability = .none
        let header = SessionHeader(sessionID: "7d5c1c1e-0000-4000-8000-00000000f007", target: "orders-mysql", protocolName: "mysql",
                                   subject: "dana@example.com", groups: ["dba"], proxyID: "gate-9", startMicros: 1_790_000_000_000_000)
        let w = try CaptureWriter(path: path, header: header, key: SigningKey(), options: options)
        var futureRequest = WireWriter()
        futureRequest.string(1, "SELECT * FROM orders")  // the future protocol's own fields
        futureRequest.uint(2, 3)
        var futureResponse = WireWriter()
        futureResponse.uint(1, 12)
        var t: Int64 = 1_790_000_000_000_000
        func add(_ p: Payload, _ x: UInt64 = 0) throws {
            t += 1000
            try w.append(Event(monotonicNanos: UInt64(t - 1_790_000_000_000_000) * 1000, wallMicros: t, exchangeID: x, payload: p))
        }
        try add(.sessionStart(SessionStart(clientAddress: "10.0.0.7:41000", applicationName: "mysql-cli")))
        try add(.request(.unknown(UnknownProtocol(tag: 7, bytes: futureRequest.bytes))), 1)
        try add(.decision(Decision(action: .allow, policy: "dba", rule: "read-orders")), 1)
        try add(.response(.unknown(UnknownProtocol(tag: 7, bytes: futureResponse.bytes))), 1)
        try add(.sessionEnd(SessionEnd(reason: "client-terminate")))
        try w.close()
        return path
    }

    @Test func theEventDecodesAsAnUnknownProtocol() throws {
        var future = WireWriter()
        future.string(1, "SHOW TABLES")
        var request = WireWriter()
        request.bytes(7, future.bytes)
        let decoded = try Request(decoding: request.bytes)
        #expect(decoded == .unknown(UnknownProtocol(tag: 7, bytes: future.bytes)))
        #expect(decoded.encoded() == request.bytes, "re-encoded unchanged")
        // A known protocol next to a later field still reads as itself.
        var both = WireWriter()
        both.message(1, PostgresRequest(text: "SELECT 1", path: .simple))
        both.bytes(9, [1, 2, 3])
        guard case .postgres(let p) = try Request(decoding: both.bytes) else { Issue.record("not postgres"); return }
        #expect(p.text == "SELECT 1")
    }

    @Test func sessinfoSessgrepAndSessexportReadIt() throws {
        let scratch = try ScratchDirectory("future-protocol")
        defer { scratch.remove() }
        let path = try futureCapture(in: scratch.dir)

        let verify = try sessinfo(["--verify", path])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")

        let events = try sessinfo(["--events", path])
        #expect(events.status == 0, "\(events.stderr)")
        #expect(events.stdout.contains("unknown protocol (7)"), "\(events.stdout)")
        #expect(events.stdout.contains("read-orders") && events.stdout.contains("client-terminate"), "\(events.stdout)")

        let json = try jsonLines(try sessinfo(["--events", "--json", path]).stdout)
        #expect(json.count == 5)
        #expect(json.filter { $0["protocol"] as? String == "unknown protocol (7)" }.count == 2, "\(json)")

        let summary = try sessinfo([path])
        #expect(summary.status == 0 && summary.stdout.contains("dana@example.com"), "\(summary.stdout)\(summary.stderr)")

        let found = try sessgrep(["--subject", "dana@example.com", "--decision", "allow", scratch.dir.path])
        #expect(found.status == 0, "\(found.stdout)\(found.stderr)")
        #expect(found.stdout.contains("orders-mysql") || found.stdout.contains("future.sesscap"), "\(found.stdout)")
        let notPostgres = try sessgrep(["--table", "orders", scratch.dir.path])
        #expect(notPostgres.status == 1, "a table criterion names PostgreSQL's fields: \(notPostgres.stdout)\(notPostgres.stderr)")

        let key = scratch.path("exporter.pem")
        _ = try SigningKey.loadOrCreate(path: key)
        let bundle = scratch.path("bundle")
        let export = try run(tool("sessexport").path, ["--out", bundle, "--key", key, "--custody-log", scratch.path("custody.jsonl"), path])
        #expect(export.status == 0, "\(export.stdout)\(export.stderr)")
        let checked = try run(tool("sessexport").path, ["verify", bundle])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
    }
}
