/// When each recorded output is written during playback: the recorded gaps, divided by the speed,
/// with every gap longer than the idle limit cut to it (as `asciinema play -i` and `tsh play
/// --skip-idle-time` do). Computed ahead, so it is tested without a clock.
public struct PlaybackSchedule: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        /// How long to wait after the previous step before writing this one.
        public var delayNanos: UInt64
        public var bytes: [UInt8]
    }

    public var steps: [Step]

    public init(_ outputs: [TerminalRecording.Output], speed: Double = 1, idleLimitNanos: UInt64? = nil) {
        precondition(speed > 0, "speed must be positive")
        var previous: UInt64 = 0
        steps = outputs.map { output in
            let gap = output.nanos >= previous ? output.nanos - previous : 0
            previous = output.nanos
            var delay = UInt64((Double(gap) / speed).rounded())
            if let idleLimitNanos { delay = min(delay, idleLimitNanos) }
            return Step(delayNanos: delay, bytes: output.bytes)
        }
    }

    /// How long the whole playback takes without pauses.
    public var durationNanos: UInt64 { steps.reduce(0) { $0 + $1.delayNanos } }
}
