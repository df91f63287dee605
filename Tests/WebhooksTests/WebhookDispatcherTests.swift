import Foundation
import Logging
import MetricsTestKit
import ProxyCore
import Synchronization
import TestSupport
import Testing
@testable import Webhooks

/// Deliveries to real HTTP receivers (Python's http.server, which checks each signature with
/// Python's own hmac): signed and in order, retried with backoff, bounded, and never waited on
/// by whoever submits, however dead a receiver is.
@Suite("webhooks", .serialized)
struct WebhookDispatcherTests {
    /// A receiver that answers each POST with the next of `statuses` ("hang": never answers; the
    /// last status repeats) and prints what it got, with its verdict on the signature, as a JSON line.
    final class Receiver: Sendable {
        let process: Process
        let port: Int
        final class Lines: Sendable {
            let all = Mutex<[String]>([])
            let partial = Mutex<String>("")

            func add(_ chunk: String) {
                let complete = partial.withLock { p -> [String] in
                    p += chunk
                    var parts = p.components(separatedBy: "\n")
                    p = parts.removeLast()
                    return parts
                }
                all.withLock { $0 += complete }
            }
        }
        let lines = Lines()

        init(secret: String, statuses: [String]) throws {
            port = try freePort()
            process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-u", "-c", Self.script, "\(port)", secret, statuses.joined(separator: ",")]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            let lines = self.lines
            out.fileHandleForReading.readabilityHandler = { handle in lines.add(String(decoding: handle.availableData, as: UTF8.self)) }
            try process.run()
            try waitForPort(port)
        }

        static let script = #"""
            import hashlib, hmac, json, sys, threading, time
            from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
            port, secret, statuses = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].split(",")
            lock = threading.Lock()
            class H(BaseHTTPRequestHandler):
                def log_message(self, *a): pass
                def do_POST(self):
                    body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                    ts = self.headers.get("Tollgate-Timestamp", "")
                    expected = "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
                    valid = hmac.compare_digest(expected, self.headers.get("Tollgate-Signature", ""))
                    with lock:
                        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                    print(json.dumps({"event": self.headers.get("Tollgate-Event"), "delivery": self.headers.get("Tollgate-Delivery"),
                                      "valid": valid, "skew": abs(time.time() - int(ts or 0)), "body": json.loads(body), "answer": status}), flush=True)
                    if status == "hang":
                        time.sleep(3600)
                    self.send_response(int(status)); self.send_header("Content-Length", "0"); self.end_headers()
            ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
            """#

        var received: [[String: Any]] {
            lines.all.withLock { $0 }.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        }

        /// Waits without holding a thread of the cooperative pool: the dispatcher's tasks run there
        /// (a blocking wait on a 2-core machine under the full suite starved them).
        func waitFor(_ n: Int) async throws -> [[String: Any]] {
            let deadline = ContinuousClock.now + .seconds(120)
            while received.count < n {
                guard ContinuousClock.now < deadline else { throw HarnessError(description: "timed out waiting for \(n) deliveries") }
                try await Task.sleep(for: .milliseconds(20))
            }
            return received
        }

        deinit { process.terminate() }
    }

    static func settings(_ name: String, port: Int, secret: String = "s3cret-webhook-key", format: WebhookSettings.Format = .json,
                         events: Set<String> = [], attempts: Int = 3, retryAfter: Duration = .milliseconds(20),
                         timeout: Duration = .seconds(5)) -> WebhookSettings {
        WebhookSettings(name: name, url: URL(string: "http://127.0.0.1:\(port)/hook")!, secret: secret, events: events, format: format,
                        timeout: timeout, attempts: attempts, retryAfter: retryAfter)
    }

    static func event(_ n: Int, type: String = "approval.requested") -> WebhookEvent {
        WebhookEvent(type: type, data: Array(#"{"approval_id":"a-\#(n)","statement":"UPDATE customers SET email = 'x' WHERE id = \#(n)"}"#.utf8),
                     summary: "alice@example.com asks to run UPDATE customers … <b>&</b> on demo", link: "https://gate.example.com/approvals/a-\(n)")
    }

    /// Runs the dispatcher as its service does, for the length of `body`.
    static func running(_ dispatcher: WebhookDispatcher, _ body: () async throws -> Void) async throws {
        let task = Task { try await dispatcher.run() }
        defer { dispatcher.finish() }
        try await body()
        dispatcher.finish()
        try await task.value
    }

    @Test func deliveriesAreSignedInOrderAndCarryTheEvent() async throws {
        let receiver = try Receiver(secret: "s3cret-webhook-key", statuses: ["200"])
        let slack = try Receiver(secret: "s3cret-webhook-key", statuses: ["200"])
        let dispatcher = WebhookDispatcher(receivers: [Self.settings("json", port: receiver.port),
                                                       Self.settings("chat", port: slack.port, format: .slack, events: ["approval.requested"])],
                                           gate: "gate-1", logger: Logger(label: "test"))
        try await Self.running(dispatcher) {
            for n in 1...3 { dispatcher.submit(Self.event(n)) }
            dispatcher.submit(Self.event(4, type: "approval.decided"))
            let got = try await receiver.waitFor(4)
            #expect(got.map { $0["valid"] as? Bool } == [true, true, true, true])
            #expect(got.allSatisfy { ($0["skew"] as? Double ?? 99) < 60 })
            let bodies = got.compactMap { $0["body"] as? [String: Any] }
            #expect(bodies.map { ($0["data"] as? [String: Any])?["approval_id"] as? String } == ["a-1", "a-2", "a-3", "a-4"])
            #expect(bodies.map { $0["type"] as? String } == ["approval.requested", "approval.requested", "approval.requested", "approval.decided"])
            #expect(bodies.allSatisfy { $0["gate"] as? String == "gate-1" && ($0["time"] as? String)?.hasSuffix("Z") == true })
            #expect(Set(got.compactMap { $0["delivery"] as? String }).count == 4)
            // The chat receiver wants only requests: three, as Slack messages with the link; the summary's markup escaped.
            let chat = try await slack.waitFor(3)
            let text = (chat.first?["body"] as? [String: Any])?["text"] as? String
            #expect(text == "alice@example.com asks to run UPDATE customers … &lt;b&gt;&amp;&lt;/b&gt; on demo <https://gate.example.com/approvals/a-1|Review it>")
        }
        #expect(slack.received.count == 3)
    }

    @Test func aWrongSecretFailsTheReceiversCheck() async throws {
        let receiver = try Receiver(secret: "the-receivers-key", statuses: ["200"])
        let dispatcher = WebhookDispatcher(receivers: [Self.settings("r", port: receiver.port, secret: "another-key")], gate: "g",
                                           logger: Logger(label: "test"))
        try await Self.running(dispatcher) {
            dispatcher.submit(Self.event(1))
            let got = try await receiver.waitFor(1)
            #expect(got.first?["valid"] as? Bool == false)
        }
    }

    @Test func failuresAreRetriedWithBackoffUpToTheLimitAndA4xxIsNot() async throws {
        let metrics = TestMetrics()
        let flaky = try Receiver(secret: "s3cret-webhook-key", statuses: ["500", "503", "200"])
        let refusing = try Receiver(secret: "s3cret-webhook-key", statuses: ["400"])
        let broken = try Receiver(secret: "s3cret-webhook-key", statuses: ["502"])
        let dispatcher = WebhookDispatcher(receivers: [Self.settings("flaky", port: flaky.port), Self.settings("refusing", port: refusing.port),
                                                       Self.settings("broken", port: broken.port)],
                                           gate: "g", logger: Logger(label: "test"), factory: metrics)
        try await Self.running(dispatcher) {
            dispatcher.submit(Self.event(1))
            _ = try await flaky.waitFor(3)
            _ = try await broken.waitFor(3)
            _ = try await refusing.waitFor(1)
        }
        #expect(flaky.received.count == 3 && broken.received.count == 3 && refusing.received.count == 1)
        func outcome(_ receiver: String, _ outcome: String) throws -> Int64 {
            (try? metrics.expectCounter("tollgate_webhook_deliveries_total", [("receiver", receiver), ("outcome", outcome)]).totalValue) ?? 0
        }
        #expect(try outcome("flaky", "delivered") == 1)
        #expect(try outcome("refusing", "failed") == 1)
        #expect(try outcome("broken", "failed") == 1)
        #expect(try metrics.expectCounter("tollgate_webhook_attempts_total", [("receiver", "broken")]).totalValue == 3)
    }

    /// A dead receiver (nothing listens) and one that never answers hold up only themselves:
    /// `submit` returns at once, the live receiver gets every event while the others are still
    /// retrying or waiting, and a full queue drops new events instead of growing.
    @Test func aDeadOrHangingReceiverDelaysNobodyElse() async throws {
        let metrics = TestMetrics()
        let live = try Receiver(secret: "s3cret-webhook-key", statuses: ["200"])
        let hanging = try Receiver(secret: "s3cret-webhook-key", statuses: ["hang"])
        let deadPort = try freePort()
        let dispatcher = WebhookDispatcher(receivers: [Self.settings("dead", port: deadPort, attempts: 20, retryAfter: .seconds(60)),
                                                       Self.settings("hanging", port: hanging.port, attempts: 1, timeout: .seconds(3600)),
                                                       Self.settings("live", port: live.port)],
                                           gate: "g", logger: Logger(label: "test"), queueLimit: 5, factory: metrics)
        let task = Task { try await dispatcher.run() }
        func ids(_ got: [[String: Any]]) -> [String] {
            got.compactMap { (($0["body"] as? [String: Any])?["data"] as? [String: Any])?["approval_id"] as? String }
        }
        for n in 1...5 { dispatcher.submit(Self.event(n)) }
        #expect(ids(try await live.waitFor(5)) == (1...5).map { "a-\($0)" })
        // The hanging receiver holds its first event in flight, four wait; of the next five, one fits.
        _ = try await hanging.waitFor(1)
        for n in 6...10 { dispatcher.submit(Self.event(n)) }
        #expect(ids(try await live.waitFor(10)) == (1...10).map { "a-\($0)" })
        #expect(try metrics.expectCounter("tollgate_webhook_deliveries_total", [("receiver", "hanging"), ("outcome", "dropped")]).totalValue == 4)
        #expect(try metrics.expectCounter("tollgate_webhook_deliveries_total", [("receiver", "live"), ("outcome", "delivered")]).totalValue == 10)
        // The dead one is still in its first backoff: nothing it did held the others.
        #expect(try metrics.expectCounter("tollgate_webhook_attempts_total", [("receiver", "dead")]).totalValue == 1)
        task.cancel()
        hanging.process.terminate()
        _ = try? await task.value
    }
}
