import CaptureFormat
import Foundation
import Synchronization

/// Records one session to its capture file off the event loop: protocol handlers
/// call `record` (cheap, ordered, never blocks on disk); one task per session, on one of
/// the `WriterThreads` (lowest priority), appends to the writer, seals blocks by age, and
/// closes the file at the end.
///
/// Events are handed over in batches: `record` appends under a lock and wakes the
/// writer task only when the batch was empty, and the task lets events gather for a quarter
/// of a second, or until they hold `drainBytes`, before it drains them. At thousands of
/// statements a second this is one wake-up per batch instead of one per event (measured: the
/// per-event wake-ups cost the gate a third of its throughput), and on a core shared with the
/// event loop fewer, longer batches delayed it less than many short ones (PostgreSQL's core
/// behind the gate, pinned: 95 % busy with 50 ms batches, 96–97 % with 250 ms, 97–98 % with 1 s).
/// A crash of the gate loses what is queued and the open block, which is sealed within a second
/// of turning 2 s old: at most about 3 s of events while the writer keeps up.
public final class SessionRecorder: Sendable {
    enum Item: Sendable {
        case wake
        case tick
    }

    struct Batch {
        var events: [Event] = []
        var signalled = false
        /// About how many bytes the queued events hold.
        var bytes = 0
        /// Set when `bytes` passed the limit: the writer calls the drained callback once it has caught up.
        var overLimit = false
        /// The writer task, while it waits for the batch to gather; resumed once, by the first of
        /// its timer, a batch reaching `drainBytes`, and `finish`.
        var gathering: CheckedContinuation<Void, Never>?
        /// Counts the waits, so that a timer left over from an earlier one cannot end a later one.
        var gatherings: UInt64 = 0
        /// Set by `finish`: what is queued is written without waiting.
        var finishing = false

        /// The waiting writer, taken out (so it is resumed once; resume it after the lock is released).
        mutating func takeGathering(_ wait: UInt64? = nil) -> CheckedContinuation<Void, Never>? {
            guard wait == nil || wait == gatherings else { return nil }
            defer { gathering = nil }
            return gathering
        }
    }

    /// The hand-over buffer, shared by `record` and the writer task.
    final class SharedBatch: Sendable {
        let mutex = Mutex(Batch())
        func withLock<R>(_ body: (inout Batch) -> R) -> R { mutex.withLock { body(&$0) } }

        /// Returns once `delay` has passed or the batch holds `bytes` (or `finish` ends the wait).
        func gathered(within delay: Duration, orBytes bytes: Int) async {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let wait: UInt64? = withLock { b in
                    if b.bytes >= bytes || b.finishing { return nil }
                    b.gatherings += 1
                    b.gathering = c
                    return b.gatherings
                }
                guard let wait else { return c.resume() }
                DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(delay.nanoseconds))) { [self] in
                    withLock { $0.takeGathering(wait) }?.resume()
                }
            }
        }
    }

    public let path: String
    public let sessionID: String
    let continuation: AsyncStream<Item>.Continuation
    let consumer: Task<CaptureError?, Never>
    let ticker: Task<Void, Never>
    let started = ContinuousClock.now
    let batch = SharedBatch()
    /// Queued bytes that end the gathering at once: a session streaming a large result is
    /// written as it comes, not a quarter of a second at a time.
    public static let drainBytes = 1 << 20
    /// Queued bytes above which the session should stop reading (see `record`): a writer slower
    /// than the traffic (compressing large results) must not make the gate's memory grow.
    public static let backlogLimit = 8 << 20
    /// What the writer's task calls: when a backlog over the limit has been written, and when writing fails.
    let callbacks = Callbacks()

    final class Callbacks: Sendable {
        let drained = Mutex<(@Sendable () -> Void)?>(nil)
        let failed = Mutex<(@Sendable (CaptureError) -> Void)?>(nil)
    }

    /// Creates DIR/YYYY/MM/DD/SESSION-ID.sesscap (directories 0700, file 0600) and writes its header.
    /// `thread`: where the writing runs (see `WriterThreads`).
    /// `gatherDelay`: how long events gather before they are written (see above).
    public init(directory: String, header: SessionHeader, key: SigningKey, options: WriterOptions = WriterOptions(),
                thread: WriterThread = WriterThreads.shared.next(), gatherDelay: Duration = .milliseconds(250)) throws(CaptureError) {
        let dir = SessionRecorder.datedDirectory(directory, micros: header.startMicros)
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CaptureError(.io, "\(dir): cannot create capture directory: \(error.localizedDescription)")
        }
        path = (dir as NSString).appendingPathComponent("\(header.sessionID).sesscap")
        sessionID = header.sessionID
        let writer = try CaptureWriter(path: path, header: header, key: key, options: options)
        let (stream, continuation) = AsyncStream<Item>.makeStream()
        self.continuation = continuation
        let batch = self.batch
        let callbacks = self.callbacks
        consumer = Task(executorPreference: thread) {
            var failure: CaptureError?
            for await item in stream {
                do throws(CaptureError) {
                    switch item {
                    case .wake:
                        await batch.gathered(within: gatherDelay, orBytes: SessionRecorder.drainBytes)
                        var (events, wasOver) = batch.withLock { b in
                            defer { b.events = []; b.signalled = false; b.bytes = 0; b.overLimit = false }
                            return (b.events, b.overLimit)
                        }
                        // Whatever happens to the writing, a session paused for the backlog must go on
                        // (and a failed one is told so and ended by its owner).
                        defer { if wasOver { callbacks.drained.withLock { $0 }?() } }
                        if failure == nil { try writer.append(moving: &events) }
                    case .tick:
                        try writer.sealIfDue()
                    }
                } catch {
                    if failure == nil { callbacks.failed.withLock { $0 }?(error) }
                    failure = failure ?? error
                }
            }
            do throws(CaptureError) { try writer.close() } catch { failure = failure ?? error }
            return failure
        }
        ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                continuation.yield(.tick)
            }
        }
    }

    static func datedDirectory(_ base: String, micros: Int64) -> String {
        let day = String(isoTime(micros: micros).prefix(10)).replacingOccurrences(of: "-", with: "/")
        return (base as NSString).appendingPathComponent(day)
    }

    /// Stamps `payload` now and queues it. Returns true when the queue is over `backlogLimit`:
    /// the caller should stop reading until `whenDrained`'s handler runs.
    @discardableResult
    public func record(_ payload: consuming Payload, exchange: UInt64 = 0) -> Bool {
        var one = [stamp(payload, exchange: exchange)]
        return submit(&one)
    }

    /// `payload` as an event stamped now, for `submit`: a protocol handler stamps the events of
    /// one read and hands them over together (one lock and at most one wake-up, not one per event).
    public func stamp(_ payload: consuming Payload, exchange: UInt64 = 0) -> Event {
        let mono = UInt64(max(0, (ContinuousClock.now - started).nanoseconds))
        return Event(monotonicNanos: mono, wallMicros: nowMicros(), exchangeID: exchange, payload: payload)
    }

    /// Queues stamped events, in order, and leaves `events` empty. Returns true when the queue is
    /// over `backlogLimit` (see `record`).
    @discardableResult
    public func submit(_ events: inout [Event]) -> Bool {
        guard !events.isEmpty else { return false }
        let size = events.reduce(0) { $0 + SessionRecorder.approximateSize($1.payload) }
        let (wake, over, full) = batch.withLock { b in
            if b.events.isEmpty {
                swap(&b.events, &events)
            } else {
                // Moved, not copied (see `Event.take`); the caller's array keeps its capacity.
                for i in events.indices { b.events.append(Event.take(&events[i])) }
            }
            b.bytes += size
            if b.bytes > SessionRecorder.backlogLimit { b.overLimit = true }
            defer { b.signalled = true }
            return (!b.signalled, b.overLimit, b.bytes >= SessionRecorder.drainBytes ? b.takeGathering() : nil)
        }
        events.removeAll(keepingCapacity: true)
        if wake { continuation.yield(.wake) }
        full?.resume()
        return over
    }

    /// Sets what to call when a backlog over the limit has been written.
    public func whenDrained(_ handler: @escaping @Sendable () -> Void) {
        callbacks.drained.withLock { $0 = handler }
    }

    /// Sets what to call (once) when writing the capture fails: nothing after it is recorded, so
    /// the session must not go on.
    public func whenFailed(_ handler: @escaping @Sendable (CaptureError) -> Void) {
        callbacks.failed.withLock { $0 = handler }
    }

    static func approximateSize(_ payload: Payload) -> Int {
        switch payload {
        case .response(.postgres(let p)): return 64 + p.packedRows.encoded.capacity  // what the rows hold in memory
        case .response(.http(let h)): return 64 + h.body.data.count
        case .streamChunk(let c): return 32 + c.data.count
        case .request(.postgres(let p)): return 64 + p.text.utf8.count + p.parameters.reduce(0) { $0 + ($1.value?.count ?? 0) }
        default: return 64
        }
    }

    /// Records the session end, seals and closes the file. Returns the first write error, if any.
    @discardableResult
    public func finish(reason: String, detail: String = "") async -> CaptureError? {
        record(.sessionEnd(SessionEnd(reason: reason, detail: detail)))
        batch.withLock { b in b.finishing = true; return b.takeGathering() }?.resume()  // written now, not after the gathering
        ticker.cancel()
        continuation.finish()
        return await consumer.value
    }
}
