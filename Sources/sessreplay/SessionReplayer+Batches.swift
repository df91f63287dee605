import Forensics
import NIOCore

/// --fast for a session replayed alone (no other session to keep in order with) and without
/// --rollback: requests go out in batches of half the window, each batch in one write, and their
/// answers come back in one future per batch, while the next batch is already sent. The target
/// runs them in the recorded order, one after the other, as it would one by one; each answer is
/// matched to its request in order. A COPY goes alone, after everything before it is answered.
extension SessionReplayer {
    enum BatchItem {
        case replay(ReplayStep, parsed: Bool)
        /// Skipped: recorded in its place among the replayed ones.
        case skip(ReplayStep, SkipReason)
    }

    func runBatches(outcome: inout SessionOutcome, prepared: inout PostgresPreparedStatements,
                    recorder: ReplayRecorder?, nextEntry: inout Int) async throws {
        let size = max(1, window / 2)
        var items: [BatchItem] = [], requests: [ReplayRequest] = []
        var sent: [(items: [BatchItem], replies: EventLoopFuture<[ReplayReply]>)] = []
        func settleOldest() async throws {
            let batch = sent.removeFirst()
            let replies = try await batch.replies.get()
            var i = 0
            for item in batch.items {
                switch item {
                case .skip(let step, let reason):
                    try recorder?.skipped(step, reason)
                case .replay(let step, let parsed):
                    try account(step, replies[i], parsed: parsed, outcome: &outcome, prepared: &prepared, recorder: recorder)
                    i += 1
                }
            }
        }
        func send() {
            guard !items.isEmpty else { return }
            sent.append((items, connection.sendBatch(requests)))
            items = []; requests = []
        }
        for step in source.steps {
            guard step.replays else {
                if case .skip(let reason) = step.disposition {
                    outcome.noteSkipped(reason, exchange: step.exchangeID)
                    items.append(.skip(step, reason))
                }
                continue
            }
            nextEntry += 1
            let parsesBefore = prepared.parses
            if step.request.statementKinds.contains("copy") {
                // While in COPY the target reads nothing but its data: nothing may follow it unanswered.
                send()
                while !sent.isEmpty { try await settleOldest() }
                let messages = ReplayMessages.messages(for: step.request, recordedResults: step.recordedResults, prepared: &prepared)
                let reply = try await connection.run(messages, withholdRows: step.masked, copyIn: step.copyIn)
                try account(step, reply, parsed: prepared.parses > parsesBefore, outcome: &outcome, prepared: &prepared, recorder: recorder)
                continue
            }
            let messages = ReplayMessages.messages(for: step.request, recordedResults: step.recordedResults, prepared: &prepared)
            items.append(.replay(step, parsed: prepared.parses > parsesBefore))
            requests.append(ReplayRequest(messages: messages, withholdRows: step.masked))
            if requests.count >= size {
                send()
                if sent.count >= 2 { try await settleOldest() }
            }
        }
        send()
        while !sent.isEmpty { try await settleOldest() }
    }
}
