import CaptureFormat
import Dispatch
import Foundation
import HeapModule
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The threads the session recorders write on, at the lowest scheduling priority (`SCHED_IDLE`
/// on Linux): the kernel gives them a core only when no event loop wants it, and takes it back
/// the moment one does (and a rescuer at normal priority takes over what waits too long, see
/// `WriterThread`). On the cooperative pool a writer compressing a batch held the core for
/// about half a millisecond while the event loop, woken by a client's message, waited: with
/// every client's next statement behind it, PostgreSQL's core went idle (measured: PostgreSQL's
/// core 92 % busy behind the gate, 98 % with the writer's work left out, 99 % behind pgbouncer).
///
/// Events wait in their session's queue until written: a session whose queue passes
/// `SessionRecorder.backlogLimit` stops reading until its writer has caught up.
public final class WriterThreads: Sendable {
    /// One per core, for recorders made without threads of their own (a gate sizes its own by
    /// the cores it may use).
    public static let shared = WriterThreads(count: ProcessInfo.processInfo.activeProcessorCount)

    let threads: [WriterThread]
    let nextThread = Atomic<Int>(0)

    public init(count: Int, name: String = "tg-writer-") {
        threads = (0..<max(1, count)).map { WriterThread(name: "\(name)\($0)") }
    }

    /// Stops every thread once it has run what is scheduled (for a gate that has sealed its
    /// captures: a thread left running would outlive the gate in a process that goes on).
    public func stop() async {
        for thread in threads { await thread.stop() }
    }

    /// A thread for the next recorder, in turn.
    public func next() -> WriterThread {
        threads[nextThread.add(1, ordering: .relaxed).oldValue % threads.count]
    }
}

/// Work for a writer thread: `run` is called on the thread once the time it was scheduled for
/// has come, with the token it was scheduled with (a job scheduled anew can tell an old entry),
/// runs to its end without waiting for anything, and reaches other threads only through
/// `WriterThread.handOff`.
protocol WriterJob: AnyObject, Sendable {
    func run(token: UInt64, on thread: WriterThread)
    /// As `run`, for a job that may leave its file's sync to the group commit it joins.
    func run(token: UInt64, on thread: WriterThread, commit: inout GroupCommit)
}

extension WriterJob {
    func run(token: UInt64, on thread: WriterThread, commit: inout GroupCommit) { run(token: token, on: thread) }
}

/// Runs scheduled jobs, each once its time has come, earliest first: a thread at idle priority
/// runs them whenever its core has nothing else to do; a second thread, at normal priority (the
/// rescuer), runs any job left waiting `rescueAfter` past its time, and everything the jobs hand
/// off. On a core with idle time the rescuer only looks; on a saturated one, where an
/// idle-priority thread would get nearly nothing (sessions paused by the backlog limit, then
/// everything written at once, from cold caches), the writing takes its fair share instead.
///
/// The idle thread runs only the jobs' own code: never a task, a continuation or a callback.
/// A thread inherits its creator's priority, and the cooperative pool starts its threads from
/// whichever thread hands it work: when the writing ran as tasks on the idle thread, pool
/// threads started from it ran at idle priority too (measured), and with them the gate's async
/// work (token checks, approvals), starved whenever the event loops kept the cores busy.
public final class WriterThread: Sendable {
    struct Entry: Comparable {
        let due: ContinuousClock.Instant
        /// The order scheduled (unique): entries due at the same instant run in it.
        let order: UInt64
        let job: any WriterJob
        let token: UInt64

        static func < (a: Entry, b: Entry) -> Bool { (a.due, a.order) < (b.due, b.order) }
        static func == (a: Entry, b: Entry) -> Bool { a.order == b.order }
    }

    enum Next {
        case job(Entry)
        /// Nothing is due yet: sleep until then (nil: until something is scheduled).
        case sleep(until: ContinuousClock.Instant?)
    }

    struct State {
        /// The scheduled entries, earliest first (a thread serves many sessions, each with an entry or two).
        var due = Heap<Entry>()
        var scheduled: UInt64 = 0
        var handOffs: [@Sendable () -> Void] = []
        /// Jobs a session waits on (strict recording): the rescuer runs them at once, together, as one group commit.
        var urgent: [(job: any WriterJob, token: UInt64)] = []
        /// `stop` was called: run what is left without waiting for its time, then exit.
        var stopping = false
        /// Both threads have exited: what is scheduled from now on runs on the caller.
        var stopped = false
        var whenStopped: [CheckedContinuation<Void, Never>] = []

        /// The earliest entry if it is `late` past its time, or when it will be.
        mutating func takeDue(late: Duration) -> Next {
            guard let first = due.min else { return .sleep(until: nil) }
            return first.due + late <= .now ? .job(due.removeMin()) : .sleep(until: first.due + late)
        }
    }

    let state = Mutex(State())
    /// Signalled when the earliest entry changes: the idle thread sleeps until it is due.
    let idleWake = DispatchSemaphore(value: 0)
    /// Signalled when the earliest entry changes or a hand-off is queued.
    let rescuerWake = DispatchSemaphore(value: 0)
    /// Signalled by the idle thread as it exits (see `stop`).
    let idleExited = DispatchSemaphore(value: 0)
    let hasIdleThread: Bool
    /// How many jobs have run (entries a job no longer needed included).
    public let jobsRun = Atomic<Int>(0)
    /// How many of them the rescuer ran.
    public let jobsRescued = Atomic<Int>(0)
    /// How many group commits (sync passes for sessions waiting on strict recording) have run.
    public let groupCommits = Atomic<Int>(0)
    /// Set by the idle thread once it has lowered its priority: whether `SCHED_IDLE` was granted.
    let idlePolicy = Atomic<Int>(0)  // 0 not yet, 1 granted, 2 refused
    let rescueAfter: Duration?

    /// The idle thread's name, as `ps -L` and `top -H` show it (at most 15 bytes on Linux); the
    /// rescuer's is the same with an `r`.
    public let name: String

    /// (Tests take either part away: `idleThread: false` leaves every job to the rescuer,
    /// `rescueAfter: nil` every job to the idle thread; the rescuer still runs the hand-offs.)
    init(name: String, rescueAfter: Duration? = .milliseconds(20), idleThread: Bool = true) {
        self.name = name
        self.rescueAfter = rescueAfter
        hasIdleThread = idleThread
        if idleThread { Thread { [self] in runAtIdlePriority() }.start() } else { idlePolicy.store(2, ordering: .releasing) }
        Thread { [self] in rescue() }.start()
    }

    /// Runs `job` (with `token`) once `due` has come.
    func schedule(_ job: any WriterJob, token: UInt64, at due: ContinuousClock.Instant) {
        let earliest: Bool? = state.withLock { s in
            if s.stopped { return nil }
            s.scheduled += 1
            s.due.insert(Entry(due: due, order: s.scheduled, job: job, token: token))
            return s.due.min?.order == s.scheduled
        }
        guard let earliest else { return run(Entry(due: due, order: 0, job: job, token: token), rescued: false) }
        if earliest {
            idleWake.signal()
            rescuerWake.signal()
        }
    }

    /// Runs `job` on the rescuer as soon as it can, at normal priority, with every other urgent job
    /// queued by then: their files are synced in one pass after they all ran (see `GroupCommit`).
    /// For a session whose forwarding waits on it: at idle priority it would wait for a free core.
    func scheduleUrgent(_ job: any WriterJob, token: UInt64) {
        let queued = state.withLock { s in
            if !s.stopped { s.urgent.append((job, token)) }
            return !s.stopped
        }
        if queued { rescuerWake.signal() } else { runUrgent([(job, token)]) }
    }

    /// Runs `body` on the rescuer, at normal priority, in the order handed off: what a job does
    /// that wakes or starts other threads (resuming a task, a session's callbacks).
    func handOff(_ body: @escaping @Sendable () -> Void) {
        let queued = state.withLock { s in
            if !s.stopped { s.handOffs.append(body) }
            return !s.stopped
        }
        if queued { rescuerWake.signal() } else { body() }
    }

    /// Lets both threads exit once everything scheduled has run (entries not yet due run at
    /// once), and returns when they have.
    func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s in
                if s.stopped { return true }
                s.stopping = true
                s.whenStopped.append(continuation)
                return false
            }
            if done { continuation.resume() } else { idleWake.signal(); rescuerWake.signal() }
        }
    }

    /// Whether the idle thread's scheduling policy is `SCHED_IDLE` (false where that is not available).
    public var runsAtIdlePriority: Bool {
        get async {
            while idlePolicy.load(ordering: .acquiring) == 0 { try? await Task.sleep(for: .milliseconds(1)) }
            return idlePolicy.load(ordering: .acquiring) == 1
        }
    }

    func run(_ entry: Entry, rescued: Bool) {
        jobsRun.add(1, ordering: .relaxed)
        if rescued { jobsRescued.add(1, ordering: .relaxed) }
        var commit = GroupCommit()
        entry.job.run(token: entry.token, on: self, commit: &commit)
        commit.complete(on: self)
    }

    /// The urgent jobs queued together: each writes (and seals) its events, then one pass syncs
    /// every file and acknowledges every waiting session at once.
    func runUrgent(_ jobs: [(job: any WriterJob, token: UInt64)]) {
        groupCommits.add(1, ordering: .relaxed)
        var commit = GroupCommit()
        for (job, token) in jobs {
            jobsRun.add(1, ordering: .relaxed)
            job.run(token: token, on: self, commit: &commit)
        }
        commit.complete(on: self)
    }

    func runAtIdlePriority() {
        WriterThread.nameCurrentThread(name)
        WriterThread.lowerCurrentThreadPriority()
        idlePolicy.store(WriterThread.currentThreadRunsAtIdlePriority() ? 1 : 2, ordering: .releasing)
        while true {
            // Stopping: what is left is the rescuer's to drain.
            guard let next = state.withLock({ $0.stopping ? nil : $0.takeDue(late: .zero) }) else { break }
            switch next {
            case .job(let entry): run(entry, rescued: false)
            case .sleep(let until): WriterThread.sleep(on: idleWake, until: until)
            }
        }
        idleExited.signal()
    }

    func rescue() {
        WriterThread.nameCurrentThread(name + "r")
        while true {
            let (handOffs, urgent, next) = state.withLock { s -> ([@Sendable () -> Void], [(job: any WriterJob, token: UInt64)], Next?) in
                if !s.handOffs.isEmpty || !s.urgent.isEmpty {
                    defer { s.handOffs = []; s.urgent = [] }
                    return (s.handOffs, s.urgent, nil)
                }
                if s.stopping {
                    // Drain without waiting for due times; done when nothing is left.
                    return ([], [], s.due.isEmpty ? nil : .job(s.due.removeMin()))
                }
                return ([], [], rescueAfter.map { s.takeDue(late: $0) } ?? .sleep(until: nil))
            }
            for body in handOffs { body() }
            if !urgent.isEmpty { runUrgent(urgent) }
            switch next {
            case .job(let entry): run(entry, rescued: true)
            case .sleep(let until): WriterThread.sleep(on: rescuerWake, until: until)
            case nil:
                if handOffs.isEmpty, urgent.isEmpty, state.withLock({ $0.stopping }) { return finishStopping() }
            }
        }
    }

    /// On the rescuer, once it has drained: waits for the idle thread to exit, then wakes
    /// whoever waits in `stop` (from here, at normal priority, never from the idle thread).
    func finishStopping() {
        if hasIdleThread { idleExited.wait() }
        let waiting = state.withLock { s in
            s.stopped = true
            defer { s.whenStopped = [] }
            return s.whenStopped
        }
        // Anything queued between the drain and `stopped` runs here.
        let (handOffs, urgent, due) = state.withLock { s in
            defer { s.handOffs = []; s.urgent = []; s.due = Heap() }
            return (s.handOffs, s.urgent, s.due.unordered)
        }
        for body in handOffs { body() }
        if !urgent.isEmpty { runUrgent(urgent) }
        for entry in due.sorted() { run(entry, rescued: true) }
        for continuation in waiting { continuation.resume() }
    }

    /// Waits for `semaphore` or until `instant` (forever if nil). (A signal left over only costs a look.)
    static func sleep(on semaphore: DispatchSemaphore, until instant: ContinuousClock.Instant?) {
        guard let instant else { return semaphore.wait() }
        let left = instant - .now
        if left > .zero { _ = semaphore.wait(timeout: .now() + .nanoseconds(Int(left.nanoseconds))) }
    }

    /// Names the calling thread for `ps -L` and `top -H`. (Foundation's `Thread.name` set from
    /// the new thread was sometimes not applied: it raced the thread's start, and the thread kept
    /// its creator's name.)
    static func nameCurrentThread(_ name: String) {
        #if os(Linux)
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = Array(name.utf8.prefix(15)).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        #else
        Thread.current.name = name
        #endif
    }

    /// `SCHED_IDLE` for the calling thread; where it is refused, the highest nice value. (For
    /// good: an unprivileged thread cannot take its priority back.)
    static func lowerCurrentThreadPriority() {
        #if os(Linux)
        var parameters = sched_param()
        parameters.sched_priority = 0
        // pid 0: the calling thread (Linux schedules threads, not processes).
        if sched_setscheduler(0, schedIdle, &parameters) != 0 {
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
        }
        #endif
    }

    /// `SCHED_IDLE` from <linux/sched.h>: Glibc's module leaves it out (it is behind `_GNU_SOURCE`).
    static let schedIdle: Int32 = 5

    public static func currentThreadRunsAtIdlePriority() -> Bool {
        #if os(Linux)
        return sched_getscheduler(0) == schedIdle
        #else
        return false
        #endif
    }
}
