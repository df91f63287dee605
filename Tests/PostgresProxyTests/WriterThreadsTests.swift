import CaptureFormat
import Foundation
@testable import ProxyCore
import Synchronization
import TestSupport
import Testing

/// The recorders' writer threads: a task that prefers one runs all its jobs there, in the order
/// they were queued, below the event loops' priority; what the idle thread leaves waiting, the
/// rescuer runs; and a recorder's writing runs on its thread.
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

    @Test func tasksRunInTheOrderQueuedAndResumeOnTheirThreadAfterASleep() async throws {
        // (The idle thread alone: the rescuer, on a busy test machine, would run some jobs alongside.)
        let thread = WriterThread(name: "tg-writer-0", rescueAfter: nil)
        final class Seen: Sendable { let order = Mutex<[Int]>([]) }
        let seen = Seen()
        let tasks = (0..<50).map { n in
            Task(executorPreference: thread) {
                seen.order.withLock { $0.append(n) }
                let before = WriterThreadsTests.currentThreadName()
                try? await Task.sleep(for: .milliseconds(1 + n % 3))
                return (before, WriterThreadsTests.currentThreadName())
            }
        }
        for task in tasks {
            let (before, after) = await task.value
            #expect(before == "tg-writer-0")
            #expect(after == "tg-writer-0")
        }
        #expect(seen.order.withLock { $0 } == Array(0..<50))
        // At least each task's start. (Not start and wake-up, 100: on a loaded machine some wake-ups
        // were not counted as jobs of their own, 94 of 100 in one CI run.)
        #expect(thread.jobsRun.load(ordering: .relaxed) >= 50)
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
    /// rescuer runs at normal priority once it has waited long enough.
    @Test(.timeLimit(.minutes(1))) func jobsLeftWaitingAreRunByTheRescuer() async {
        let thread = WriterThread(name: "tg-test", rescueAfter: .milliseconds(20), idleThread: false)
        let ran = await within(seconds: 30) {
            await withTaskGroup(of: (String, Bool).self) { group in
                for n in 0..<10 {
                    group.addTask(executorPreference: thread) {
                        try? await Task.sleep(for: .milliseconds(n))
                        return (WriterThreadsTests.currentThreadName(), WriterThread.currentThreadRunsAtIdlePriority())
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        guard let results = ran else {
            Issue.record("no job ran: nothing rescued them")
            return
        }
        #expect(results.count == 10)
        #expect(results.allSatisfy { $0 == ("tg-testr", false) })
        #expect(thread.jobsRescued.load(ordering: .relaxed) == thread.jobsRun.load(ordering: .relaxed))
        #expect(thread.jobsRun.load(ordering: .relaxed) >= 10)
    }

    @Test func aRecorderWritesOnItsThread() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("writer-thread-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let thread = WriterThreads(count: 1).next()
        let header = SessionHeader(sessionID: "thread", target: "t", protocolName: "postgres", subject: "alice@example.com", groups: [],
                                   issuer: "https://idp.example.com", proxyID: "p", startMicros: 1_790_000_000_000_000, attributes: [])
        let recorder = try SessionRecorder(directory: dir, header: header, key: SigningKey(), thread: thread)
        recorder.record(.request(.postgres(PostgresRequest(text: "SELECT 1", path: .simple))), exchange: 1)
        #expect(await recorder.finish(reason: "test") == nil)
        #expect(thread.jobsRun.load(ordering: .relaxed) > 0)
        var kinds: [EventKind] = []
        try CaptureFile(path: recorder.path).forEachEvent { kinds.append(contentsOf: $0.payload.kind.map { [$0] } ?? []); return true }
        #expect(kinds == [.request, .sessionEnd])
    }
}
