import CaptureFormat
import Logging
import NIOCore
import PostgresWire

/// The session handler's side of `ConfirmedSessionState` (kept by `RelayStateMachine`): on a
/// divergence, or a lexing setting the gate cannot follow, the session ends once what was
/// forwarded is answered.
extension PostgresSessionHandler {
    /// The server ran something other than what the gate decided on: on the record, in the log,
    /// counted, and the session ends (fail closed: the gate no longer knows what the session is).
    func diverged(_ d: ConfirmedSessionState.Divergence) {
        guard let context else { return }
        gate.logger.error("divergence: the server's answer does not match the gate's reading; ending the session",
                          metadata: ["session": "\(session?.sessionID ?? "")", "target": "\(target.name)", "exchange": "\(d.exchange)",
                                     "statement": "\(d.statement + 1)", "expected": "\(d.expected)", "actual": "\(d.actual)"])
        record(.divergence(CaptureFormat.Divergence(statement: UInt64(d.statement), expected: d.expected, actual: d.actual)),
               exchange: d.exchange)
        DivergenceMetrics.count(target: target.name)
        endAfterAnswers(context, .init(code: "42501", message: "tollgate: the database ran something other than what the gate decided on (statement \(d.statement + 1): "
                                       + "expected \(d.expected), the database answered \(d.actual)); the session was ended", reason: "divergence"))
    }

    /// The server reports a lexing setting the gate cannot read with, mid-session: from here on
    /// the gate would misread statements, so the session ends, after the requests already
    /// forwarded are answered and their tags checked.
    func lexingChanged(_ refusal: String, context: ChannelHandlerContext) {
        gate.logger.error("session ending: the database reads statements differently from the gate",
                          metadata: ["target": "\(target.name)", "session": "\(session?.sessionID ?? "")", "reason": "\(refusal)"])
        endAfterAnswers(context, .init(code: "0A000", message: "tollgate: \(refusal); the session is ended", reason: "lexing-settings-changed"))
    }

    /// Ends the session once the server has answered every request already forwarded (each
    /// answer recorded, each tag checked: a write hidden in a pipelined request is caught by its
    /// tag even though the session was already ending). Meanwhile nothing new is forwarded and
    /// nothing more reaches the client (the gate's reading of those requests may be wrong). A
    /// server that does not answer within the target's idle timeout does not hold the end back.
    func endAfterAnswers(_ context: ChannelHandlerContext, _ ending: ConfirmedSessionState.Ending) {
        guard state == .relaying, case .awaitAnswers(let sendSync) = machine.end(ending) else { return }
        if sendSync {
            // An extended batch is answered only at its Sync, which the client may never send.
            do { try PostgresFrontendMessage.sync.encode(into: &upstreamOut) } catch {
                return fail(context, code: ending.code, ending.message, reason: ending.reason)
            }
            flushUpstream()
        }
        if endIfAnswered() { return }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .nanoseconds(target.idleTimeout.nanoseconds)) {
            let session = handler.value
            guard session.state == .relaying, let ending = session.machine.relay.confirmed.ending, let context = session.context else { return }
            session.gate.logger.error("the database did not answer the requests already forwarded; ending the session without their answers",
                                      metadata: ["target": "\(session.target.name)", "session": "\(session.session?.sessionID ?? "")"])
            session.fail(context, code: ending.code, ending.message, reason: ending.reason)
        }
    }

    /// An ending session whose requests are all answered ends now. True when it ended.
    @discardableResult
    func endIfAnswered() -> Bool {
        guard state == .relaying, let ending = machine.endingNow, let context else { return false }
        fail(context, code: ending.code, ending.message, reason: ending.reason)
        return true
    }
}
