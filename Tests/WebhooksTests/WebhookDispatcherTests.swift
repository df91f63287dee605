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
    typealias Receiver = WebhookReceiver

    static func settings(_ name: String, port: Int, secret: String = "s3cret-webhook-key", format: WebhookSettings.Format = .json,
                         events: Set<String> = [], attempts: Int = 3, retryAfter: Duration = .milliseconds(20),
                         timeout: Duration = .seconds(60)) -> WebhookSettings {
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
        func outcome(_ receiver: String, _ outcome: String) throws -> Int64 {
            (try? metrics.expectCounter("tollgate_webhook_deliveries_total", [("receiver", receiver), ("outcome", outcome)]).totalValue) ?? 0
        }
        try await Self.running(dispatcher) {
            dispatcher.submit(Self.event(1))
            _ = try await flaky.waitFor(3)
            _ = try await broken.waitFor(3)
            _ = try await refusing.waitFor(1)
            // Each outcome is counted once the dispatcher has read the reply, a moment after the receiver has the request.
            try await pollUntil("an outcome counted for each receiver", timeout: .seconds(30)) {
                try outcome("flaky", "delivered") + outcome("refusing", "failed") + outcome("broken", "failed") == 3
            }
        }
        #expect(flaky.received.count == 3 && broken.received.count == 3 && refusing.received.count == 1)
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
        // The receiver has the tenth delivery a moment before the dispatcher has read its reply and counted it.
        try await pollUntil("ten deliveries counted for the live receiver", timeout: .seconds(30)) {
            (try? metrics.expectCounter("tollgate_webhook_deliveries_total", [("receiver", "live"), ("outcome", "delivered")]).totalValue) == 10
        }
        // The dead one is still in its first backoff: nothing it did held the others.
        #expect(try metrics.expectCounter("tollgate_webhook_attempts_total", [("receiver", "dead")]).totalValue == 1)
        task.cancel()
        hanging.process.terminate()
        _ = try? await task.value
    }
}
