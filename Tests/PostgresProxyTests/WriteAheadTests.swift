import CaptureFormat
import Dispatch
import Foundation
@testable import ProxyCore
import Synchronization
import TestSupport
import Testing

/// Strict recording without sockets: the forward-after-acknowledgement rule (`WriteAheadQueue`),
/// the recorder's acknowledgement (`submitDurably`) and the group commit of a writer thread.
@Suite struct WriteAheadTests {
    func header(_ id: String) -> SessionHeader {
        SessionHeader(sessionID: id, target: "t", protocolName: "postgres", subject: "alice@example.com", groups: [], issuer: "https://idp.example.com",
                      proxyID: "p", startMicros: 1_790_000_000_000_000, attributes: [])
    }

    func request(_ n: Int) -> Payload { .request(.postgres(PostgresRequest(text: "INSERT \(n)", path: .simple))) }

    @Test func nothingIsForwardedBeforeItsAcknowledgementAndOrderIsKept() {
        var q = WriteAheadQueue<String>()
        let a = q.reserve(), b = q.reserve(), c = q.reserve()
        #expect(q.hold("a", ticket: a, waits: true) == [])
        // Nothing to wait for, but behind a forward that waits: it waits too.
        #expect(q.hold("b", ticket: b, waits: false) == [])
        #expect(q.hold("c", ticket: c, waits: true) == [])
        #expect(q.isHolding)
        #expect(q.acknowledged(a) == ["a", "b"])
        #expect(q.acknowledged(c) == ["c"])
        #expect(!q.isHolding)
        // With nothing ahead and nothing to wait for: at once.
        let d = q.reserve()
        #expect(q.hold("d", ticket: d, waits: false) == ["d"])
        // A later acknowledgement covers the earlier tickets (one file, synced in order).
        let e = q.reserve(), f = q.reserve()
        _ = q.hold("e", ticket: e, waits: true)
        _ = q.hold("f", ticket: f, waits: true)
        #expect(q.acknowledged(f) == ["e", "f"])
        let g = q.reserve()
        _ = q.hold("g", ticket: g, waits: true)
        q.dropAll()
        #expect(q.acknowledged(g) == [])
    }

    /// The acknowledgement comes once the events are in a complete, synced block of the file,
    /// without the gathering (an hour here) and before the session ends.
    @Test(.timeLimit(.minutes(10))) func anAcknowledgedEventIsInTheFileBeforeTheSessionEnds() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("writeahead-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let recorder = try SessionRecorder(directory: dir, header: header("ack"), key: SigningKey(), gatherDelay: .seconds(3600))
        var staged = [recorder.stamp(request(1), exchange: 1)]
        let error: CaptureError?? = await withCheckedContinuation { done in
            let waits = recorder.submitDurably(&staged) { done.resume(returning: $0) }
            if !waits { done.resume(returning: .some(CaptureError(.io, "nothing to wait for"))) }
        }
        #expect(error == .some(nil))
        var texts: [String] = []
        try CaptureFile(path: recorder.path).forEachEvent { e in
            if case .request(.postgres(let p)) = e.payload { texts.append(p.text) }
            return true
        }
        #expect(texts == ["INSERT 1"])
        // Nothing new since: nothing to wait for.
        var none: [Event] = []
        #expect(!recorder.submitDurably(&none) { _ in Issue.record("acknowledged with nothing to wait for") })
        #expect(await recorder.finish(reason: "test") == nil)
        // After the end, a submission is told at once that it cannot be recorded.
        var late = [recorder.stamp(request(2), exchange: 2)]
        let lateError = Mutex<CaptureError?>(nil)
        _ = recorder.submitDurably(&late) { e in lateError.withLock { $0 = e } }
        #expect(lateError.withLock { $0 } != nil)
    }

    /// Sessions that wait on one writer thread together share one sync pass.
    /// (Its limit is generous: under the full suite the cooperative pool can be busy with other
    /// suites' blocking process runs, and its awaits wait for a thread; a hang still fails it.)
    @Test(.timeLimit(.minutes(5))) func sessionsWaitingTogetherShareOneGroupCommit() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("writeahead-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let thread = WriterThread(name: "tg-test-gc")
        let recorders = try (0..<20).map { try SessionRecorder(directory: dir, header: header("gc-\($0)"), key: SigningKey(), thread: thread) }
        // Hold the rescuer, so that every session's wait is queued before it looks.
        let started = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        thread.handOff { started.signal(); release.wait() }
        started.wait()
        let before = thread.groupCommits.load(ordering: .relaxed)
        let acknowledged = DispatchSemaphore(value: 0)
        let failures = Atomic<Int>(0)
        for (i, recorder) in recorders.enumerated() {
            var staged = [recorder.stamp(request(i), exchange: 1)]
            #expect(recorder.submitDurably(&staged) { e in
                if e != nil { failures.add(1, ordering: .relaxed) }
                acknowledged.signal()
            })
        }
        release.signal()
        // The acknowledgements come from the writer's threads: waiting for them needs no pool thread.
        for _ in recorders { acknowledged.wait() }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(thread.groupCommits.load(ordering: .relaxed) - before == 1)
        for recorder in recorders { #expect(await recorder.finish(reason: "test") == nil) }
    }
}
