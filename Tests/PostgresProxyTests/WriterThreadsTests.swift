import CaptureFormat
import Foundation
@testable import ProxyCore
import Synchronization
import TestSupport
import Testing

/// The recorders' writer threads: jobs run once due, earliest first, below the event loops'
/// priority; what the idle thread leaves waiting, the rescuer runs; what jobs hand off runs at
/// normal priority; and a recorder writes on its thread, which starts no thread of its own.
@Suite struct WriterThreadsTests {
    /// The name the kernel has for the calling thread (what `ps -L` shows).
    static func currentThreadName() -> String {
        #if os(Linux)
        let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
        return comm.trimmingCharacters(in: .whitespacesAndNewlines)
        #else
        return Thread.current.name ?? ""
        #endif
    }

    struct Ran: Equatable {
        let label: String
        let thread: String
        let idle: Bool
        let early: Bool
    }

    /// A job that notes where and when it ran, and can hand something off.
    final class NotingJob: WriterJob {
        let label: String
        let due: ContinuousClock.Instant
        let log: Log
        let handingOff: Bool

        final class Log: Sendable {
            let ran = Mutex<[Ran]>([])
            let count = AsyncStream<Int>.makeStream()
            func note(_ r: Ran) { count.continuation.yield(ran.withLock { $0.append(r); return $0.count }) }
            /// Waits until `n` have been noted (nil after 30 s).
            func until(_ n: Int) async -> [Ran]? {
                await within(seconds: 30) { [self] in
                    for await seen in count.stream where seen >= n { break }
                    return ran.withLock { $0 }
                }
            }
        }

        init(_ label: String, due: ContinuousClock.Instant, log: Log, handingOff: Bool = false) {
            self.label = label
            self.due = due
            self.log = log
            self.handingOff = handingOff
        }

        func run(token: UInt64, on thread: WriterThread) {
            log.note(Ran(label: label, thread: WriterThreadsTests.currentThreadName(), idle: WriterThread.currentThreadRunsAtIdlePriority(),
                         early: ContinuousClock.now < due))
            if handingOff {
                thread.handOff { [self] in
                    log.note(Ran(label: label + " handed off", thread: WriterThreadsTests.currentThreadName(),
                                 idle: WriterThread.currentThreadRunsAtIdlePriority(), early: false))
                }
            }
        }
    }

    @Test(.timeLimit(.minutes(10))) func jobsRunOnceDueEarliestFirstOnTheIdleThread() async {
        // (The idle thread alone: the rescuer, on a busy test machine, could run some.)
        let thread = WriterThread(name: "tg-writer-0", rescueAfter: nil)
        let idle = await thread.runsAtIdlePriority
        let log = NotingJob.Log()
        let now = ContinuousClock.now
        for (label, after) in [("a", 300), ("b", 100), ("c", 0), ("d", 100), ("e", 200)] {
            let job = NotingJob(label, due: now + .milliseconds(after), log: log)
            thread.schedule(job, token: 0, at: job.due)
        }
        guard let ran = await log.until(5) else {
            Issue.record("the jobs did not run")
            return
        }
        #expect(ran.map(\.label) == ["c", "b", "d", "e", "a"])
        #expect(ran.allSatisfy { $0.thread == "tg-writer-0" && $0.idle == idle && !$0.early })
        #expect(thread.jobsRun.load(ordering: .relaxed) == 5)
        #expect(thread.jobsRescued.load(ordering: .relaxed) == 0)
    }

    @Test func recordersAreHandedThreadsInTurn() {
        let threads = WriterThreads(count: 3)
        #expect((0..<6).map { _ in threads.next().name } == ["tg-writer-0", "tg-writer-1", "tg-writer-2", "tg-writer-0", "tg-writer-1", "tg-writer-2"])
    }

    #if os(Linux)
    @Test func writerThreadsRunAtIdlePriorityAndOtherThreadsDoNot() async {
        #expect(await WriterThreads(count: 1).next().runsAtIdlePriority)
        #expect(!WriterThread.currentThreadRunsAtIdlePriority())
    }
    #endif

    /// What no idle thread takes (here there is none, as on a core the event loops saturate) the
    /// rescuer runs at normal priority once it has waited long enough past its time.
    @Test(.timeLimit(.minutes(10))) func jobsLeftWaitingAreRunByTheRescuer() async {
        let thread = WriterThread(name: "tg-test", rescueAfter: .milliseconds(20), idleThread: false)
        let log = NotingJob.Log()
        let now = ContinuousClock.now
        for n in 0..<10 {
            let due = now + .milliseconds(n * 5)
            // Early, for the rescuer: less than 20 ms after the job's time.
            thread.schedule(NotingJob("\(n)", due: due + .milliseconds(20), log: log), token: 0, at: due)
        }
        guard let ran = await log.until(10) else {
            Issue.record("no job ran: nothing rescued them")
            return
        }
        #expect(ran.map(\.label) == (0..<10).map { "\($0)" })
        #expect(ran.allSatisfy { $0.thread == "tg-testr" && !$0.idle && !$0.early })
        #expect(thread.jobsRescued.load(ordering: .relaxed) == 10)
        #expect(thread.jobsRun.load(ordering: .relaxed) == 10)
    }

    /// A job hands off what must not run at idle priority: the rescuer runs it, at normal priority.
    @Test(.timeLimit(.minutes(10))) func handOffsRunOnTheRescuerAtNormalPriority() async {
        let thread = WriterThread(name: "tg-writer-h", rescueAfter: nil)
        let idle = await thread.runsAtIdlePriority
        let log = NotingJob.Log()
        thread.schedule(NotingJob("job", due: .now, log: log, handingOff: true), token: 0, at: .now)
        guard let ran = await log.until(2) else {
            Issue.record("the job or its hand-off did not run")
            return
        }
        #expect(ran == [Ran(label: "job", thread: "tg-writer-h", idle: idle, early: false),
                        Ran(label: "job handed off", thread: "tg-writer-hr", idle: false, early: false)])
    }

    /// Stopping runs what is scheduled (a job not yet due included, at once), then both threads
    /// of each writer exit; what is scheduled afterwards runs on the caller, so nothing is lost.
    @Test(.timeLimit(.minutes(10))) func stoppingRunsWhatIsLeftThenTheThreadsExit() async throws {
        let threads = WriterThreads(count: 2, name: "tg-stop-")
        let log = NotingJob.Log()
        let later = ContinuousClock.now + .seconds(3600)
        threads.threads[0].schedule(NotingJob("due later", due: later, log: log), token: 0, at: later)
        threads.threads[1].schedule(NotingJob("due now", due: .now, log: log), token: 0, at: .now)
        // (Each thread names itself once it runs.)
        try waitUntil("the writer threads to start", timeout: .seconds(30)) {
            (try? Self.threadNames().filter { $0.hasPrefix("tg-stop-") }.count) == 4
        }
        await threads.stop()
        let ran = await log.until(2) ?? []
        #expect(Set(ran.map(\.label)) == ["due later", "due now"])
        // A thread is gone from /proc a moment after it has woken `stop`'s caller.
        try waitUntil("the writer threads to exit", timeout: .seconds(30)) {
            (try? Self.threadNames().contains(where: { $0.hasPrefix("tg-stop-") })) == false
        }
        threads.threads[0].schedule(NotingJob("after stop", due: .now, log: log), token: 0, at: .now)
        #expect(await log.until(3)?.last?.label == "after stop")
        await threads.stop()  // a second stop returns at once
    }

    /// The names of this process's threads.
    static func threadNames() throws -> [String] {
        #if os(Linux)
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap { tid in
            (try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #else
        []
        #endif
    }

    /// The threads at idle priority in this process, by name.
    static func threadsAtIdlePriority() throws -> [String] {
        #if os(Linux)
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").compactMap { tid in
            guard let stat = try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8),
                  let comm = try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8),
                  let close = stat.range(of: ")", options: .backwards) else { return nil }  // (a thread that has just ended)
            // proc(5): after "pid (comm)", policy is the 39th field.
            let fields = stat[close.upperBound...].split(separator: " ")
            return fields.count > 38 && Int32(fields[38]) == WriterThread.schedIdle ? comm.trimmingCharacters(in: .whitespacesAndNewlines) : nil
        }
        #else
        []
        #endif
    }

    /// A session recorded through its whole life (a backlog drained, its end awaited by several
    /// callers) writes on its thread, and leaves no thread but the writers' own at idle priority:
    /// threads started while it ran (the cooperative pool's) inherit their creator's priority.
    @Test(.timeLimit(.minutes(10))) func aRecorderWritesOnItsThreadAndLeavesNoOtherThreadAtIdlePriority() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("writer-thread-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let thread = WriterThreads(count: 1).next()
        let header = SessionHeader(sessionID: "thread", target: "t", protocolName: "postgres", subject: "alice@example.com", groups: [],
                                   issuer: "https://idp.example.com", proxyID: "p", startMicros: 1_790_000_000_000_000, attributes: [])
        let recorder = try SessionRecorder(directory: dir, header: header, key: SigningKey(), thread: thread)
        recorder.record(.request(.postgres(PostgresRequest(text: "SELECT 1", path: .simple))), exchange: 1)
        #expect(await recorder.overflowTheBacklogUntilDrained())
        let failures = await withTaskGroup(of: CaptureError?.self) { group in
            for _ in 0..<8 { group.addTask { await recorder.finish(reason: "test") } }
            return await group.reduce(into: [CaptureError?]()) { $0.append($1) }
        }
        #expect(failures.count == 8 && failures.allSatisfy { $0 == nil })
        #expect(thread.jobsRun.load(ordering: .relaxed) > 0)
        var kinds: [EventKind] = []
        try CaptureFile(path: recorder.path).forEachEvent { kinds.append(contentsOf: $0.payload.kind.map { [$0] } ?? []); return true }
        #expect(kinds == [.request] + Array(repeating: .response, count: 9) + [.sessionEnd])
        // The writers' idle threads are named tg-*, without the rescuer's trailing r.
        for name in try WriterThreadsTests.threadsAtIdlePriority() {
            #expect(name.hasPrefix("tg-") && !name.hasSuffix("r"), "\(name) runs at idle priority")
        }
    }
}
