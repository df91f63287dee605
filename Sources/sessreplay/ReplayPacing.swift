import Forensics

/// A session's place in the recorded global order and pacing, the same for every kind of replayer.
struct ReplayPacing: Sendable {
    let entries: [ReplaySchedule.Entry]
    let turns: ReplayTurns
    let scale: Double
    let concurrent: Bool

    /// Waits until `entries[index]` is due and its turn has come.
    func wait(for index: Int, start: ContinuousClock.Instant) async throws {
        let entry = entries[index]
        let due = start + .microseconds(entry.offsetMicros)
        if due > .now { try await Task.sleep(until: due, clock: .continuous) }
        // One session alone has no one to keep in order with.
        if concurrent {
            await turns.waitTurn(entry.order)
            await turns.release(entry.order)
        }
    }

    /// Others stop waiting for this session's request after `index` once the one at `index` runs
    /// longer than it did when recorded (`recordedMicros`, scaled).
    func releaseNextWhenLate(after index: Int, recordedMicros: UInt64) -> Task<Void, Never>? {
        guard concurrent, index + 1 < entries.count else { return nil }
        let next = entries[index + 1].order, turns = self.turns
        let grace = Int64(Double(recordedMicros) / scale) + 1000
        return Task {
            try? await Task.sleep(for: .microseconds(grace))
            if !Task.isCancelled { await turns.release(next) }
        }
    }
}

extension SessionOutcome {
    /// Counts a request the plan skips, and names it when the recording withheld what it needs.
    mutating func noteSkipped(_ reason: SkipReason, exchange: UInt64) {
        skipped[reason.kind, default: 0] += 1
        if case .withheld(let why) = reason { withheld.append("exchange \(exchange): \(why)") }
    }
}
