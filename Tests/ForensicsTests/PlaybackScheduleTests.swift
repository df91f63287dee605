import Forensics
import Testing

/// The playback schedule, computed without a clock: gaps scaled by the speed, long pauses cut to
/// the idle limit, and a clock that goes back never makes a negative wait.
@Suite struct PlaybackScheduleTests {
    func outputs(_ nanos: [UInt64]) -> [TerminalRecording.Output] {
        nanos.enumerated().map { TerminalRecording.Output(nanos: $0.element, bytes: [UInt8(65 + $0.offset)]) }
    }

    @Test func gapsAreScaledByTheSpeed() {
        let s = PlaybackSchedule(outputs([0, 1_000_000_000, 1_500_000_000, 4_500_000_000]), speed: 2)
        #expect(s.steps.map(\.delayNanos) == [0, 500_000_000, 250_000_000, 1_500_000_000])
        #expect(s.steps.map(\.bytes) == [[65], [66], [67], [68]])
        #expect(s.durationNanos == 2_250_000_000)
        #expect(PlaybackSchedule(outputs([0, 1_000_000_000]), speed: 0.5).steps.map(\.delayNanos) == [0, 2_000_000_000])
    }

    @Test func pausesLongerThanTheIdleLimitAreCutToIt() {
        let s = PlaybackSchedule(outputs([2_000_000_000, 2_100_000_000, 62_100_000_000]), speed: 1, idleLimitNanos: 1_000_000_000)
        #expect(s.steps.map(\.delayNanos) == [1_000_000_000, 100_000_000, 1_000_000_000])
        // The limit applies after the speed: 60 s at 10x is 6 s, cut to 1 s.
        #expect(PlaybackSchedule(outputs([0, 60_000_000_000]), speed: 10, idleLimitNanos: 1_000_000_000).steps.last?.delayNanos == 1_000_000_000)
    }

    @Test func aClockThatGoesBackWaitsNothing() {
        let s = PlaybackSchedule(outputs([5_000, 3_000, 4_000]))
        #expect(s.steps.map(\.delayNanos) == [5_000, 0, 1_000])
    }
}
