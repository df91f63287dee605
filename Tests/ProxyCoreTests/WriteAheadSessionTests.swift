import CaptureFormat
import ProxyCore
import Synchronization
import Testing

/// Strict recording in the session core, driven as an adapter drives it (no socket): what the
/// adapter would forward is held until the recorder acknowledges the records, the client's
/// reading pauses meanwhile, and a failed record releases nothing.
@Suite("exchange session: write-ahead recording")
struct WriteAheadSessionTests {
    /// The acknowledgements the recorder sends from its writer thread, as the adapter's event loop would receive them.
    final class Acknowledgements: Sendable {
        let stream: AsyncStream<(UInt64, CaptureError?)>
        let continuation: AsyncStream<(UInt64, CaptureError?)>.Continuation
        let made = Atomic<Int>(0)
        init() { (stream, continuation) = AsyncStream.makeStream() }
        func callback() -> @Sendable (UInt64, CaptureError?) -> Void {
            made.add(1, ordering: .relaxed)
            return { [continuation] ticket, error in continuation.yield((ticket, error)) }
        }
        func next() async -> (UInt64, CaptureError?)? {
            var iterator = stream.makeAsyncIterator()
            return await iterator.next()
        }
    }

    @Test(.timeLimit(.minutes(10))) func aForwardIsHeldUntilItsRecordIsDurable() async throws {
        let h = try Harness()
        var s = try h.opened(durability: .strict)
        #expect(s.writesAhead)
        let acks = Acknowledgements()
        guard case .forward? = s.request(line("read analytics.orders")).first else { Issue.record("expected a forward"); return }
        // The request and its decision are not on disk yet: held, and the client is not read.
        #expect(s.flushBeforeForwarding(acknowledged: acks.callback()) == [.holdUpstream(ticket: 1), .pauseReading(.client)])
        #expect(!s.pauses.reads(.client))
        guard let (ticket, error) = await acks.next() else { Issue.record("no acknowledgement"); return }
        #expect(ticket == 1 && error == nil)
        let (released, closing) = s.recordAcknowledged(ticket, error: error)
        #expect(closing == nil)
        #expect(released == [.releaseUpstream(through: 1), .resumeReading(.client)])
        // Nothing stamped since the sync: nothing to wait for, forwarded at once.
        #expect(s.flushBeforeForwarding(acknowledged: acks.callback()) == [.holdUpstream(ticket: 2), .releaseUpstream(through: 2)])
        let events = try await h.finish(&s)
        #expect(events.payloads(of: 1).count == 2)
    }

    @Test func aRecordThatCannotBeWrittenReleasesNothingAndEndsTheSession() async throws {
        let h = try Harness()
        var s = try h.opened(durability: .strict)
        let acks = Acknowledgements()
        _ = s.request(line("read analytics.orders"))
        #expect(s.flushBeforeForwarding(acknowledged: acks.callback()).first == .holdUpstream(ticket: 1))
        _ = await acks.next()
        let (released, closing) = s.recordAcknowledged(1, error: CaptureError(.io, "No space left on device"))
        #expect(released.isEmpty)
        #expect(closing?.reason == "recording-failed" && closing?.code == .unavailable)
        // What was held is gone: a later acknowledgement cannot release it.
        #expect(s.recordAcknowledged(1, error: nil).actions.allSatisfy { if case .releaseUpstream = $0 { false } else { true } })
        _ = try await h.finish(&s)
    }

    @Test func batchedRecordingForwardsAtOnceAndAsksForNoAcknowledgement() async throws {
        let h = try Harness()
        var s = try h.opened()
        let acks = Acknowledgements()
        #expect(!s.writesAhead)
        _ = s.request(line("read analytics.orders"))
        #expect(s.flushBeforeForwarding(acknowledged: acks.callback()) == [])
        #expect(acks.made.load(ordering: .relaxed) == 0)
        _ = try await h.finish(&s)
    }
}
