/// When each replayed request may start: a pure value computed from the recorded times and the
/// timing options, so it is tested as computed, not on a clock. The runner waits for a step's
/// offset and for its turn in the global order (`order`), and never for another session's
/// statement to finish (see `ReplayTurns`).
public struct ReplaySchedule: Sendable, Equatable {
    public enum Timing: Sendable, Equatable {
        /// The recorded pacing, scaled: `speed` 2 runs twice as fast as recorded.
        case speed(Double)
        /// `rate` requests per second across all sessions, in recorded order.
        case rate(Double)
        /// As fast as possible, keeping the order.
        case fast
    }

    public struct Entry: Sendable, Equatable {
        /// Which session (index into the sessions given) and which of its replayed steps.
        public var session: Int
        public var step: Int
        /// Position in the global start order.
        public var order: Int
        /// Earliest start, in microseconds after the replay starts.
        public var offsetMicros: Int64
    }

    /// In global start order.
    public var entries: [Entry]

    /// `starts[s]` lists session `s`'s replayed steps' recorded start times (µs since the epoch),
    /// in session order. Ties across sessions keep the sessions' order.
    public init(starts: [[Int64]], timing: Timing) {
        var all: [(micros: Int64, session: Int, step: Int)] = []
        for (s, times) in starts.enumerated() {
            // A session's steps run in its order, even if the recording's clock stepped back.
            var last = Int64.min
            for (i, t) in times.enumerated() {
                last = max(last, t)
                all.append((last, s, i))
            }
        }
        all.sort { ($0.micros, $0.session, $0.step) < ($1.micros, $1.session, $1.step) }
        let t0 = all.first?.micros ?? 0
        var entries: [Entry] = []
        entries.reserveCapacity(all.count)
        var lastPerSession = [Int: Int64]()
        for (order, a) in all.enumerated() {
            var offset: Int64
            switch timing {
            case .fast: offset = 0
            case .rate(let n): offset = Int64((Double(order) * 1_000_000 / n).rounded())
            case .speed(let x): offset = Int64((Double(a.micros - t0) / x).rounded())
            }
            // Never before the session's previous step (it cannot anyway: a session runs in order).
            if let last = lastPerSession[a.session], offset < last { offset = last }
            lastPerSession[a.session] = offset
            entries.append(Entry(session: a.session, step: a.step, order: order, offsetMicros: offset))
        }
        self.entries = entries
    }

    /// Session `s`'s entries, in its own order.
    public func entries(ofSession s: Int) -> [Entry] { entries.filter { $0.session == s }.sorted { $0.step < $1.step } }
}
