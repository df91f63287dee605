import AsyncHTTPClient
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import ProxyCore
import ServiceLifecycle
import Synchronization

/// Sends the gate's events to its webhook receivers. `submit` never waits: each receiver has
/// its own bounded queue and its own task, so a slow or dead receiver delays only its own
/// deliveries, never the data path or another receiver. A full queue drops the new event
/// (counted and logged). Each delivery is tried up to the receiver's `attempts`, with
/// exponential backoff, on a connection error, a time-out, 408, 429 or a 5xx; any other answer
/// ends it. Runs as a service: on shutdown, the delivery in flight is cancelled and what is
/// queued is abandoned (logged with its count), so that a dead receiver cannot hold the gate's
/// shutdown for its time-outs and backoff.
public final class WebhookDispatcher: Service, Sendable {
    struct Receiver: Sendable {
        let settings: WebhookSettings
        let queue: AsyncStream<WebhookEvent>
        let input: AsyncStream<WebhookEvent>.Continuation
        let delivered: Counter
        let failed: Counter
        let dropped: Counter
        let attempts: Counter
        /// Queued or in flight: what a shutdown abandons.
        let pending: Pending
    }

    /// A count shared by `submit` and the receiver's task.
    final class Pending: Sendable {
        let count = Atomic<Int>(0)
    }

    let receivers: [Receiver]
    let gate: String
    let logger: Logger
    let client: HTTPClient

    /// `queueLimit`: events waiting per receiver beyond the one in flight.
    public init(receivers: [WebhookSettings], gate: String, logger: Logger, queueLimit: Int = 1000,
                factory: any MetricsFactory = MetricsSystem.factory) {
        self.gate = gate
        self.logger = logger
        // Redirects are not followed: a receiver's answer is its answer, and a signed body is not resent elsewhere.
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.timeout.connect = .seconds(5)
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.receivers = receivers.map { settings in
            let (queue, input) = AsyncStream.makeStream(of: WebhookEvent.self, bufferingPolicy: .bufferingOldest(queueLimit))
            func counter(_ outcome: String) -> Counter {
                Counter(label: "tollgate_webhook_deliveries_total", dimensions: [("receiver", settings.name), ("outcome", outcome)], factory: factory)
            }
            return Receiver(settings: settings, queue: queue, input: input, delivered: counter("delivered"), failed: counter("failed"),
                            dropped: counter("dropped"),
                            attempts: Counter(label: "tollgate_webhook_attempts_total", dimensions: [("receiver", settings.name)], factory: factory),
                            pending: Pending())
        }
    }

    /// Queues `event` for every receiver that wants its type. Never waits.
    public func submit(_ event: WebhookEvent) {
        for r in receivers where r.settings.events.isEmpty || r.settings.events.contains(event.type) {
            let result = r.input.yield(event)
            if case .enqueued = result { r.pending.count.add(1, ordering: .relaxed) }
            if case .dropped = result {
                r.dropped.increment()
                logger.warning("webhook queue full: event dropped", metadata: ["receiver": "\(r.settings.name)", "event": "\(event.type)", "id": "\(event.id)"])
            }
        }
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for r in receivers {
                // On graceful shutdown the task is cancelled: a delivery in flight (or waiting to be
                // retried) ends now, not after a dead receiver's time-outs.
                group.addTask { _ = await cancelOnGracefulShutdown { await self.serve(r) } }
            }
            // On graceful shutdown the queues end (and the tasks are cancelled, above).
            await withGracefulShutdownHandler {
                await group.waitForAll()
            } onGracefulShutdown: {
                for r in self.receivers { r.input.finish() }
            }
        }
        try await client.shutdown()
    }

    /// Stops taking events and waits for the deliveries in flight (tests and tools without a ServiceGroup).
    public func finish() {
        for r in receivers { r.input.finish() }
    }

    func serve(_ r: Receiver) async {
        for await event in r.queue {
            await deliver(event, to: r)
            if Task.isCancelled { break }
            r.pending.count.subtract(1, ordering: .relaxed)
        }
        let abandoned = r.pending.count.load(ordering: .relaxed)
        if abandoned > 0 {
            logger.warning("webhook events abandoned at shutdown", metadata: ["receiver": "\(r.settings.name)", "events": "\(abandoned)"])
        }
    }

    func deliver(_ event: WebhookEvent, to r: Receiver) async {
        let s = r.settings
        let delivery = WebhookDelivery(event, to: s, gate: gate, timestamp: Int64(Date().timeIntervalSince1970))
        var request = HTTPClientRequest(url: s.url.absoluteString)
        request.method = .POST
        for (name, value) in delivery.headers { request.headers.add(name: name, value: value) }
        var wait = s.retryAfter
        for attempt in 1...s.attempts {
            r.attempts.increment()
            request.body = .bytes(delivery.body)
            let outcome: String
            do {
                let response = try await client.execute(request, timeout: .nanoseconds(Int64(s.timeout.components.seconds) * 1_000_000_000
                                                                                        + s.timeout.components.attoseconds / 1_000_000_000))
                let code = response.status.code
                // The body is not ours to keep; drain it so the connection can be reused.
                _ = try? await response.body.collect(upTo: 64 * 1024)
                if (200..<300).contains(code) {
                    r.delivered.increment()
                    logger.debug("webhook delivered", metadata: ["receiver": "\(s.name)", "event": "\(event.type)", "attempt": "\(attempt)"])
                    return
                }
                guard code == 408 || code == 429 || code >= 500 else {
                    r.failed.increment()
                    logger.error("webhook refused by its receiver", metadata: ["receiver": "\(s.name)", "event": "\(event.type)", "status": "\(code)"])
                    return
                }
                outcome = "status \(code)"
            } catch {
                // Shutting down: abandoned (counted by `serve`), not failed.
                if Task.isCancelled { return }
                // The receiver's name, never its URL: a Slack webhook's URL is its secret.
                outcome = "\(type(of: error))"
            }
            guard attempt < s.attempts else { break }
            logger.notice("webhook attempt failed; retrying", metadata: ["receiver": "\(s.name)", "event": "\(event.type)", "attempt": "\(attempt)",
                                                                         "outcome": "\(outcome)", "retry_in": "\(wait)"])
            do { try await Task.sleep(for: wait) } catch { return }
            wait = min(wait * 2, .seconds(300))
        }
        r.failed.increment()
        logger.error("webhook not delivered", metadata: ["receiver": "\(s.name)", "event": "\(event.type)", "id": "\(event.id)", "attempts": "\(s.attempts)"])
    }
}
