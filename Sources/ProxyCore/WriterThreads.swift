import CaptureFormat
import Dispatch
import Foundation
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

    public init(count: Int) {
        threads = (0..<max(1, count)).map { WriterThread(name: "tg-writer-\($0)") }
    }

    /// A thread for the next recorder, in turn.
    public func next() -> WriterThread {
        threads[nextThread.add(1, ordering: .relaxed).oldValue % threads.count]
    }
}

/// An executor for the tasks that prefer it: a thread at idle priority runs their jobs, started
/// in the order queued, whenever its core has nothing else to do; a second thread, at normal priority,
/// runs any job that has waited longer than `rescueAfter`. On a core with idle time the rescuer
/// only looks; on a saturated one, where an idle-priority thread would get nearly nothing
/// (sessions paused by the backlog limit, then everything written at once, from cold caches),
/// the writing takes its fair share instead.
public final class WriterThread: TaskExecutor {
    struct Queued: Sendable {
        let job: UnownedJob
        let at: ContinuousClock.Instant
    }

    let jobs = Mutex<[Queued]>([])
    /// How many jobs have started (a task runs as one job per stretch between suspensions).
    public let jobsRun = Atomic<Int>(0)
    /// How many of them the rescuer ran.
    public let jobsRescued = Atomic<Int>(0)
    /// Set by the idle thread once it has lowered its priority: whether `SCHED_IDLE` was granted.
    let idlePolicy = Atomic<Int>(0)  // 0 not yet, 1 granted, 2 refused
    /// Counts the queued jobs; the idle thread sleeps on it when there are none.
    let queued = DispatchSemaphore(value: 0)
    /// Signalled when a job is queued behind none: the rescuer sleeps on it while nothing waits
    /// (so an idle gate's writer threads do not wake at all).
    let queuedAfterEmpty = DispatchSemaphore(value: 0)

    /// The idle thread's name, as `ps -L` and `top -H` show it (at most 15 bytes on Linux); the
    /// rescuer's is the same with an `r`.
    public let name: String

    /// (Tests take either thread away: `idleThread: false` leaves every job to the rescuer,
    /// `rescueAfter: nil` every job to the idle thread.)
    init(name: String, rescueAfter: Duration? = .milliseconds(20), idleThread: Bool = true) {
        self.name = name
        if idleThread { Thread { [self] in runAtIdlePriority() }.start() } else { idlePolicy.store(2, ordering: .releasing) }
        if let rescueAfter { Thread { [self] in rescue(after: rescueAfter) }.start() }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let now = ContinuousClock.now
        let wasEmpty = jobs.withLock { q in
            defer { q.append(Queued(job: job, at: now)) }
            return q.isEmpty
        }
        queued.signal()
        if wasEmpty { queuedAfterEmpty.signal() }
    }

    /// Whether the idle thread's scheduling policy is `SCHED_IDLE` (false where that is not available).
    public var runsAtIdlePriority: Bool {
        get async {
            while idlePolicy.load(ordering: .acquiring) == 0 { try? await Task.sleep(for: .milliseconds(1)) }
            return idlePolicy.load(ordering: .acquiring) == 1
        }
    }

    /// The oldest queued job, if it has waited at least `age`.
    func take(waited age: Duration = .zero) -> UnownedJob? {
        let now = ContinuousClock.now
        return jobs.withLock { q in
            guard let first = q.first, now - first.at >= age else { return nil }
            return q.removeFirst().job
        }
    }

    func run(_ job: UnownedJob) {
        jobsRun.add(1, ordering: .relaxed)
        job.runSynchronously(on: asUnownedTaskExecutor())
    }

    func runAtIdlePriority() {
        Thread.current.name = name  // (set from the thread itself: set before `start` it is not applied)
        WriterThread.lowerCurrentThreadPriority()
        idlePolicy.store(WriterThread.currentThreadRunsAtIdlePriority() ? 1 : 2, ordering: .releasing)
        while true {
            queued.wait()
            // (The rescuer may have run it: the count can be ahead of the queue.)
            if let job = take() { run(job) }
        }
    }

    func rescue(after age: Duration) {
        Thread.current.name = name + "r"
        while true {
            // (A signal left from an earlier job only costs a look that finds nothing old.)
            if jobs.withLock({ $0.isEmpty }) { queuedAfterEmpty.wait() }
            Thread.sleep(forTimeInterval: Double(age.nanoseconds) / 1e9)
            while let job = take(waited: age) {
                jobsRescued.add(1, ordering: .relaxed)
                run(job)
            }
        }
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
