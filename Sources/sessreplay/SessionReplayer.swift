import CaptureFormat
import Forensics
import Foundation
import PostgresWire
import NIOConcurrencyHelpers
import NIOCore

/// What one session's replay did, for the summary.
struct SessionOutcome: Sendable {
    var source: String
    var sessionID: String
    var capture: String?
    var replayed = 0
    var errors = 0
    /// Replayed requests that errored where the recording succeeded.
    var newErrors: [String] = []
    var skipped: [String: Int] = [:]
    /// Requests skipped because the recording withheld or masked their text or parameters, by exchange.
    var withheld: [String] = []
    var recordedMicros: [UInt64] = []
    var replayedMicros: [UInt64] = []
    /// Parses of named prepared statements sent (each parsed once per connection).
    var parses = 0
    var failure: String?
}

/// Counts done steps for the progress line: a locked integer, not an actor, so that counting
/// costs the replay no hop per statement.
final class ReplayProgress: Sendable {
    let counter = NIOLockedValueBox(0)
    var done: Int { counter.withLockedValue { $0 } }
    func step() { counter.withLockedValue { $0 += 1 } }
}

/// Replays one session on its own connection, in its recorded order, each step no earlier than
/// its scheduled offset and its turn in the global order; records the replay as a capture.
struct SessionReplayer {
    let index: Int
    let source: ReplaySource
    let entries: [ReplaySchedule.Entry]
    let connection: ReplayConnection
    /// Where and how the replay is recorded; nil for none.
    let recording: ReplayRecorder.Setup?
    let turns: ReplayTurns
    let rollback: Bool
    /// Recorded durations are divided by this for the early release (the speed; 1 otherwise).
    let scale: Double
    /// More than one session: the early release matters.
    let concurrent: Bool
    let progress: ReplayProgress
    var pacing: ReplayPacing { ReplayPacing(entries: entries, turns: turns, scale: scale, concurrent: concurrent) }
    /// Requests sent ahead of their predecessors' answers (1: none). Only under --fast without
    /// --rollback (which reacts to each answer); the target runs them in the same order either way.
    var window = 1
    /// --fast's window: enough to keep the target busy across a round trip, bounded so a long
    /// session does not queue its whole text in the socket.
    static let fastWindow = 64

    /// A request sent and not yet settled (its answer recorded and counted).
    struct InFlight {
        var step: ReplayStep
        var reply: EventLoopFuture<ReplayReply>
        var parsed: Bool
        var timer: Task<Void, Never>?
    }

    func run(start: ContinuousClock.Instant) async -> SessionOutcome {
        var outcome = SessionOutcome(source: source.path, sessionID: source.header.sessionID, capture: recording?.path)
        var nextEntry = 0
        // Made here: the writer belongs to this task alone.
        var recorder: ReplayRecorder?
        var prepared = PostgresPreparedStatements()
        var inFlight: [InFlight] = []
        var settledCount = 0
        /// Waits for the oldest request in flight, then records and counts it.
        func settleOldest() async throws {
            let f = inFlight[settledCount]
            settledCount += 1
            if settledCount > 256 { inFlight.removeFirst(settledCount); settledCount = 0 }
            var reply = try await f.reply.get()
            f.timer?.cancel()
            if rollback {
                if !reply.responses.isEmpty { reply.responses.removeFirst() }
                if reply.transaction == .failed {
                    let back = try await connection.run([.query("ROLLBACK TO SAVEPOINT sessreplay")])
                    if let e = back.responses.first?.error { throw ReplayConnectionError(description: "ROLLBACK TO SAVEPOINT failed: \(e.sqlState) \(e.message)") }
                }
            }
            try account(f.step, reply, parsed: f.parsed, outcome: &outcome, prepared: &prepared, recorder: recorder)
        }
        do {
            recorder = try recording.map { try ReplayRecorder($0, startupParameters: source.startupParameters) }
            if rollback {
                let begin = try await connection.run([.query("BEGIN")])
                if let e = begin.responses.first?.error { throw ReplayConnectionError(description: "BEGIN for --rollback failed: \(e.sqlState) \(e.message)") }
            }
            if window > 1 && !concurrent && !rollback {
                try await runBatches(outcome: &outcome, prepared: &prepared, recorder: recorder, nextEntry: &nextEntry)
            } else {
            for step in source.steps {
                guard step.replays else {
                    if case .skip(let reason) = step.disposition {
                        outcome.noteSkipped(reason, exchange: step.exchangeID)
                        // Recorded in order: after what was sent before it.
                        while settledCount < inFlight.count { try await settleOldest() }
                        try recorder?.skipped(step, reason)
                    }
                    continue
                }
                try await pacing.wait(for: nextEntry, start: start)
                let timer = pacing.releaseNextWhenLate(after: nextEntry, recordedMicros: step.recordedDurationMicros)
                nextEntry += 1
                // A COPY is not pipelined: while in COPY the target reads nothing but its data.
                let alone = window <= 1 || step.request.statementKinds.contains("copy")
                if alone { while settledCount < inFlight.count { try await settleOldest() } }
                let parsesBefore = prepared.parses
                var messages = ReplayMessages.messages(for: step.request, recordedResults: step.recordedResults, prepared: &prepared)
                if rollback { messages.insert(.query("SAVEPOINT sessreplay"), at: 0) }
                let reply = connection.send(messages, readyCount: rollback ? 2 : 1, withholdRows: step.masked, copyIn: step.copyIn)
                inFlight.append(InFlight(step: step, reply: reply, parsed: prepared.parses > parsesBefore, timer: timer))
                while inFlight.count - settledCount >= (alone ? 1 : window) { try await settleOldest() }
            }
            while settledCount < inFlight.count { try await settleOldest() }
            }
            if rollback {
                let end = try await connection.run([.query("ROLLBACK")])
                if let e = end.responses.first?.error { throw ReplayConnectionError(description: "ROLLBACK failed: \(e.sqlState) \(e.message)") }
            }
            outcome.parses = prepared.parses
            try recorder?.finish(reason: "replay-complete", detail: "", outcome: outcome)
        } catch {
            outcome.failure = "\(error)"
            for f in inFlight[settledCount...] { f.timer?.cancel() }
            // No one waits for the steps this session will not run.
            await turns.release(entries[min(nextEntry, entries.count)...].map(\.order))
            try? recorder?.finish(reason: "error", detail: "\(error)", outcome: outcome)
        }
        await connection.close()
        return outcome
    }

    /// Counts and records one replayed request's answer.
    func account(_ step: ReplayStep, _ reply: ReplayReply, parsed: Bool, outcome: inout SessionOutcome,
                 prepared: inout PostgresPreparedStatements, recorder: ReplayRecorder?) throws {
        outcome.replayed += 1
        outcome.replayedMicros.append(reply.micros)
        if !step.recordedResults.isEmpty { outcome.recordedMicros.append(step.recordedDurationMicros) }
        let replayError = reply.responses.lazy.compactMap(\.error).first
        prepared.ran(step.request, parsed: parsed, failed: replayError != nil)
        if let replayError {
            outcome.errors += 1
            if !step.recordedResults.contains(where: { $0.error != nil }) {
                outcome.newErrors.append("exchange \(step.exchangeID): \(replayError.sqlState) \(replayError.message)")
            }
        }
        try recorder?.replayed(step, reply, parsed: parsed ? step.request.statementName : nil)
        progress.step()
    }
}
