import GateRuntime
import NIOEmbedded
import Testing

/// Shutdown waits on the live sessions: until none is open, then until none is still sealing its
/// capture, or until the deadline; nothing polls.
@Suite struct LiveSessionsTests {
    @Test func aWaitEndsWhenTheLastSessionEnds() async {
        let live = LiveSessions()
        live.started("a", channel: EmbeddedChannel())
        live.started("b", channel: EmbeddedChannel())
        async let waited: Void = live.wait(untilNone: true, deadline: .now + .seconds(600))
        live.ending("a")
        #expect(live.count == 2, "a is sealing, b is open")
        live.ending("b")
        await waited
        #expect(live.openChannels.isEmpty)
        async let sealed: Void = live.wait(untilNone: false, deadline: .now + .seconds(600))
        live.ended("a")
        live.ended("b")
        await sealed
        #expect(live.count == 0)
    }

    @Test func aWaitEndsAtItsDeadlineWhileSessionsStayOpen() async {
        let live = LiveSessions()
        live.started("a", channel: EmbeddedChannel())
        await live.wait(untilNone: true, deadline: .now + .milliseconds(50))
        #expect(live.openChannels.count == 1)
    }

    @Test func aWaitWithNothingLiveReturnsAtOnce() async {
        await LiveSessions().wait(untilNone: false, deadline: .now + .seconds(600))
    }
}
