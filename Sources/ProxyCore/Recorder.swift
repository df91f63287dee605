import CaptureFormat
import Foundation
import Synchronization

/// Records one session to its capture file off the event loop: protocol handlers
/// call `record` (cheap, ordered, never blocks on disk); the session's writer thread (one of the
/// `WriterThreads`, lowest priority) appends to the writer, seals blocks by age, and closes the
/// file at the end.
///
/// Events are handed over in batches: `record` appends under a lock, and the writer thread
/// drains the batch a quarter of a second after its first event, or as soon as it holds
/// `drainBytes`. At thousands of statements a second this is one wake-up per batch instead of
/// one per event (measured: the per-event wake-ups cost the gate a third of its throughput),
/// and on a core shared with the event loop fewer, longer batches delayed it less than many
/// short ones (PostgreSQL's core behind the gate, pinned: 95 % busy with 50 ms batches, 96–97 %
/// with 250 ms, 97–98 % with 1 s). An open block is sealed when it turns 2 s old: a crash of the
/// gate loses what is queued and the open block, at most about 2.5 s of events while the writer
/// keeps up.
public final class SessionRecorder: WriterJob {
    enum Phase {
        case idle
        /// On the writer thread's schedule, for `at`, with the token that entry carries.
        case scheduled(token: UInt64, at: ContinuousClock.Instant)
        /// The writer thread is draining (what is submitted meanwhile waits for the next run).
        case running
        /// The file is closed, with the first write error, if any.
        case closed(CaptureError?)
    }

    /// The hand-over state, shared by `record` and the writer thread.
    struct Queue {
        var events: [Event] = []
        /// About how many bytes the queued events hold (over `backlogLimit`, the writer calls the
        /// drained callback once it has written them).
        var bytes = 0
        /// When the queued events are to be written: `gatherDelay` after the first (nil: none queued).
        var writeDue: ContinuousClock.Instant?
        /// When the open block is to be sealed (the writer's `sealDue`, after each run).
        var sealDue: ContinuousClock.Instant?
        var phase = Phase.idle
        var tokens: UInt64 = 0
        /// Set by `finish`: what is queued is written without waiting, then the file is closed.
        var finishing = false
        /// The callers of `finish`, while the file is not closed yet.
        var waiters: [CheckedContinuation<CaptureError?, Never>] = []

        /// When the writer thread should run next (nil: nothing to do until more is submitted).
        var wantedDue: ContinuousClock.Instant? {
            if finishing || bytes >= SessionRecorder.drainBytes { return .now }
            guard let write = writeDue else { return sealDue }
            return min(write, sealDue ?? write)
        }

        /// Moves the session's entry earlier if it needs to run earlier: the token and time to
        /// schedule (schedule them after the lock is released).
        mutating func reschedule() -> (token: UInt64, at: ContinuousClock.Instant)? {
            guard let due = wantedDue else { return nil }
            switch phase {
            case .idle: break
            case .scheduled(_, let at) where due < at: break
            default: return nil
            }
            tokens += 1
            phase = .scheduled(token: tokens, at: due)
            return (tokens, due)
        }
    }

    /// What only the writer thread touches (the phase makes its runs one at a time).
    struct Output {
        let writer: CaptureWriter
        var failure: CaptureError?
    }

    public let path: String
    public let sessionID: String
    let thread: WriterThread
    let gatherDelay: Duration
    let started = ContinuousClock.now
    let queue = Mutex(Queue())
    let output: Mutex<Output>
    /// Queued bytes that end the gathering at once: a session streaming a large result is
    /// written as it comes, not a quarter of a second at a time.
    public static let drainBytes = 1 << 20
    /// Queued bytes above which the session should stop reading (see `record`): a writer slower
    /// than the traffic (compressing large results) must not make the gate's memory grow.
    public static let backlogLimit = 8 << 20
    /// What the writer thread hands off: when a backlog over the limit has been written, and when writing fails.
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
        self.thread = thread
        self.gatherDelay = gatherDelay
        output = Mutex(Output(writer: try CaptureWriter(path: path, header: header, key: key, options: options)))
    }

    /// One run on the writer thread: writes what is queued, seals the open block if it is due,
    /// closes the file once `finish` was called, and schedules the next run.
    func run(token: UInt64, on thread: WriterThread) {
        let taken: (events: [Event], wasOver: Bool, closing: Bool)? = queue.withLock { q in
            guard case .scheduled(token, _) = q.phase else { return nil }  // an entry moved earlier since
            q.phase = .running
            defer { q.events = []; q.bytes = 0; q.writeDue = nil }
            return (q.events, q.bytes > SessionRecorder.backlogLimit, q.finishing)
        }
        guard let (queued, wasOver, closing) = taken else { return }
        var events = queued
        let (failed, failure, sealDue) = output.withLock { o -> (CaptureError?, CaptureError?, ContinuousClock.Instant?) in
            var failed: CaptureError?
            if o.failure == nil {
                do throws(CaptureError) {
                    try o.writer.append(moving: &events)  // (and seals the open block if it is due)
                } catch {
                    failed = error
                    o.failure = error
                }
            }
            if closing {
                do throws(CaptureError) { try o.writer.close() } catch { o.failure = o.failure ?? error }
            }
            return (failed, o.failure, closing || o.failure != nil ? nil : o.writer.sealDue)
        }
        let (next, waiters) = queue.withLock { q -> ((token: UInt64, at: ContinuousClock.Instant)?, [CheckedContinuation<CaptureError?, Never>]) in
            if closing {
                q.phase = .closed(failure)
                defer { q.waiters = [] }
                return (nil, q.waiters)
            }
            q.phase = .idle
            q.sealDue = sealDue
            return (q.reschedule(), [])
        }
        if let next { thread.schedule(self, token: next.token, at: next.at) }
        // Whatever happens to the writing, a session paused for the backlog must go on (and a
        // failed one is told so and ended by its owner).
        if wasOver, let drained = callbacks.drained.withLock({ $0 }) { thread.handOff(drained) }
        if let failed, let onFailure = callbacks.failed.withLock({ $0 }) { thread.handOff { onFailure(failed) } }
        if !waiters.isEmpty { thread.handOff { for waiter in waiters { waiter.resume(returning: failure) } } }
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
    /// over `backlogLimit` (see `record`). (After `finish`, events are dropped.)
    @discardableResult
    public func submit(_ events: inout [Event]) -> Bool {
        guard !events.isEmpty else { return false }
        let size = events.reduce(0) { $0 + SessionRecorder.approximateSize($1.payload) }
        let (over, next) = queue.withLock { q -> (Bool, (token: UInt64, at: ContinuousClock.Instant)?) in
            enqueue(&events, size: size, into: &q)
            return (q.bytes > SessionRecorder.backlogLimit, q.reschedule())
        }
        events.removeAll(keepingCapacity: true)
        if let next { thread.schedule(self, token: next.token, at: next.at) }
        return over
    }

    func enqueue(_ events: inout [Event], size: Int, into q: inout Queue) {
        guard !q.finishing else { return }
        if q.events.isEmpty {
            swap(&q.events, &events)
            q.writeDue = .now + gatherDelay
        } else {
            // Moved, not copied (see `Event.take`); the caller's array keeps its capacity.
            for i in events.indices { q.events.append(Event.take(&events[i])) }
        }
        q.bytes += size
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

    /// Records the session end, seals and closes the file (at once, not after the gathering).
    /// Returns the first write error, if any. (Called again, it records nothing more and returns the same.)
    @discardableResult
    public func finish(reason: String, detail: String = "", counts: SessionCounts? = nil) async -> CaptureError? {
        var end = [stamp(.sessionEnd(SessionEnd(reason: reason, detail: detail, counts: counts)))]
        let size = SessionRecorder.approximateSize(end[0].payload)
        let next = queue.withLock { q -> (token: UInt64, at: ContinuousClock.Instant)? in
            enqueue(&end, size: size, into: &q)
            q.finishing = true
            return q.reschedule()
        }
        if let next { thread.schedule(self, token: next.token, at: next.at) }
        return await withCheckedContinuation { (waiter: CheckedContinuation<CaptureError?, Never>) in
            let phase = queue.withLock { q in
                if case .closed = q.phase {} else { q.waiters.append(waiter) }
                return q.phase
            }
            if case .closed(let failure) = phase { waiter.resume(returning: failure) }
        }
    }
}
