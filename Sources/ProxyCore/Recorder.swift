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
        /// On the writer thread's schedule, for `at`, with the token that entry carries (urgent:
        /// in the rescuer's urgent lane, for a session waiting on it).
        case scheduled(token: UInt64, at: ContinuousClock.Instant, urgent: Bool)
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
        /// Strict recording: sessions waiting for what they queued to be durable (see `submitDurably`).
        var durableWaiters: [@Sendable (CaptureError?) -> Void] = []
        /// Taken by a run and waiting for its group commit's sync, with how many events it covers.
        var committing: [@Sendable (CaptureError?) -> Void] = []
        var committingUpTo: UInt64 = 0
        /// Events queued so far, and how many of them a group commit has made durable.
        var enqueued: UInt64 = 0
        var synced: UInt64 = 0

        /// When the writer thread should run next (nil: nothing to do until more is submitted).
        var wantedDue: ContinuousClock.Instant? {
            if finishing || !durableWaiters.isEmpty || bytes >= SessionRecorder.drainBytes { return .now }
            guard let write = writeDue else { return sealDue }
            return min(write, sealDue ?? write)
        }

        /// Moves the session's entry earlier if it needs to run earlier: the token and time to
        /// schedule (schedule them after the lock is released).
        mutating func reschedule() -> Schedule? {
            guard let due = wantedDue else { return nil }
            let urgent = !durableWaiters.isEmpty
            switch phase {
            case .idle: break
            case .scheduled(_, let at, let wasUrgent) where !wasUrgent && (urgent || due < at): break
            default: return nil
            }
            tokens += 1
            phase = .scheduled(token: tokens, at: due, urgent: urgent)
            return Schedule(token: tokens, at: due, urgent: urgent)
        }
    }

    struct Schedule {
        let token: UInt64
        let at: ContinuousClock.Instant
        let urgent: Bool
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

    func schedule(_ next: Schedule?) {
        guard let next else { return }
        if next.urgent { thread.scheduleUrgent(self, token: next.token) } else { thread.schedule(self, token: next.token, at: next.at) }
    }

    /// One run on the writer thread: writes what is queued, seals the open block if it is due,
    /// closes the file once `finish` was called, and schedules the next run.
    func run(token: UInt64, on thread: WriterThread) {
        var commit = GroupCommit()
        run(token: token, on: thread, commit: &commit)
        commit.complete(on: thread)
    }

    func run(token: UInt64, on thread: WriterThread, commit: inout GroupCommit) {
        let taken: (events: [Event], wasOver: Bool, closing: Bool, durable: [@Sendable (CaptureError?) -> Void], upTo: UInt64)? = queue.withLock { q in
            guard case .scheduled(token, _, _) = q.phase else { return nil }  // an entry moved earlier since
            q.phase = .running
            defer { q.events = []; q.bytes = 0; q.writeDue = nil; q.durableWaiters = [] }
            return (q.events, q.bytes > SessionRecorder.backlogLimit, q.finishing, q.durableWaiters, q.enqueued)
        }
        guard let (queued, wasOver, closing, durable, upTo) = taken else { return }
        var events = queued
        let (failed, failure, sealDue) = output.withLock { o -> (CaptureError?, CaptureError?, ContinuousClock.Instant?) in
            var failed: CaptureError?
            if o.failure == nil {
                do throws(CaptureError) {
                    try o.writer.append(moving: &events)  // (and seals the open block if it is due)
                    // A session waits on these: sealed now, synced with the group (below, or at close).
                    if !durable.isEmpty && !closing { try o.writer.sealDeferringSync() }
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
        let (next, waiters, late) = queue.withLock { q -> (Schedule?, [CheckedContinuation<CaptureError?, Never>], [@Sendable (CaptureError?) -> Void]) in
            if closing {
                q.phase = .closed(failure)
                if failure == nil { q.synced = upTo }  // closing syncs
                defer { q.waiters = []; q.durableWaiters = [] }
                return (nil, q.waiters, q.durableWaiters)
            }
            q.phase = .idle
            q.sealDue = sealDue
            if !durable.isEmpty {
                q.committing.append(contentsOf: durable)
                q.committingUpTo = upTo
            }
            return (q.reschedule(), [], [])
        }
        if !durable.isEmpty && !closing { commit.join(self) }
        if closing, !(durable + late).isEmpty {
            let acks = durable + late
            thread.handOff { for ack in acks { ack(failure) } }
        }
        schedule(next)
        // Whatever happens to the writing, a session paused for the backlog must go on (and a
        // failed one is told so and ended by its owner).
        if wasOver, let drained = callbacks.drained.withLock({ $0 }) { thread.handOff(drained) }
        // (Sessions waiting on these events learn it from their acknowledgement: they refuse what waited.)
        if let failed, durable.isEmpty, let onFailure = callbacks.failed.withLock({ $0 }) { thread.handOff { onFailure(failed) } }
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
        let (over, next) = queue.withLock { q -> (Bool, Schedule?) in
            enqueue(&events, size: size, into: &q)
            return (q.bytes > SessionRecorder.backlogLimit, q.reschedule())
        }
        events.removeAll(keepingCapacity: true)
        schedule(next)
        return over
    }

    /// Strict recording: queues `events` (possibly none) and calls `acknowledged` once they and
    /// everything queued before them are written and synced (nil), or could not be (the error);
    /// the writer thread runs it at once, in a group commit with the other sessions waiting on
    /// that thread. Returns false, without calling `acknowledged`, when there is nothing to wait
    /// for (nothing queued since the last sync). Called after `finish`, it acknowledges with an error.
    public func submitDurably(_ events: inout [Event], acknowledged: @escaping @Sendable (CaptureError?) -> Void) -> Bool {
        let size = events.reduce(0) { $0 + SessionRecorder.approximateSize($1.payload) }
        let (wait, finished, next) = queue.withLock { q -> (Bool, Bool, Schedule?) in
            if q.finishing { return (true, true, nil) }
            if !events.isEmpty { enqueue(&events, size: size, into: &q) }
            guard q.enqueued > q.synced else { return (false, false, nil) }
            q.durableWaiters.append(acknowledged)
            return (true, false, q.reschedule())
        }
        events.removeAll(keepingCapacity: true)
        if finished { acknowledged(CaptureError(.io, "\(path): the capture is closed")) }
        schedule(next)
        return wait
    }

    /// The group commit's part for this session (on the writer thread, after its run): syncs the
    /// file and returns the acknowledgements of the sessions that waited for it.
    func syncForGroupCommit(on thread: WriterThread) -> [@Sendable () -> Void] {
        let (acks, upTo) = queue.withLock { q in
            defer { q.committing = [] }
            return (q.committing, q.committingUpTo)
        }
        guard !acks.isEmpty else { return [] }
        let (failed, failure) = output.withLock { o -> (CaptureError?, CaptureError?) in
            guard o.failure == nil else { return (nil, o.failure) }
            do throws(CaptureError) {
                try o.writer.syncWritten()
                return (nil, nil)
            } catch {
                o.failure = error
                return (error, error)
            }
        }
        if failure == nil { queue.withLock { q in q.synced = max(q.synced, upTo) } }
        if let failed, let onFailure = callbacks.failed.withLock({ $0 }) { thread.handOff { onFailure(failed) } }
        return acks.map { ack in { ack(failure) } }
    }

    func enqueue(_ events: inout [Event], size: Int, into q: inout Queue) {
        guard !q.finishing else { return }
        if q.events.isEmpty {
            q.enqueued += UInt64(events.count)
            swap(&q.events, &events)
            q.writeDue = .now + gatherDelay
        } else {
            // Moved, not copied (see `Event.take`); the caller's array keeps its capacity.
            q.enqueued += UInt64(events.count)
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
        let next = queue.withLock { q -> Schedule? in
            enqueue(&end, size: size, into: &q)
            q.finishing = true
            return q.reschedule()
        }
        schedule(next)
        return await withCheckedContinuation { (waiter: CheckedContinuation<CaptureError?, Never>) in
            let phase = queue.withLock { q in
                if case .closed = q.phase {} else { q.waiters.append(waiter) }
                return q.phase
            }
            if case .closed(let failure) = phase { waiter.resume(returning: failure) }
        }
    }
}
