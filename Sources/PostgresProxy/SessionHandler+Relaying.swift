import CaptureFormat
import Masking
import NIOCore
import PostgresWire
import ProxyCore

/// Relaying: each decoded message goes to the relay's state machine (`RelayStateMachine`), and
/// the handler executes what it answers: ask the core, write, record, refuse, end.
extension PostgresSessionHandler {
    func clientMessage(_ message: PostgresFrontendMessage, frame: ByteBuffer, context: ChannelHandlerContext) {
        guard upstream != nil else { return }
        // Consumed: the request moves into `admit` instead of being copied out of a live action.
        let asked = machine.clientMessage(message, frame: frame)
        let action: RelayStateMachine.ClientAction
        switch consume asked {
        case .inspect(let request):
            action = machine.inspected(admit(request, context: context))
        case .preview(let name, let text):
            action = machine.inspected(preview(name: name, text: text, context: context))
        case let other:
            action = other
        }
        execute(action, message: message, frame: frame, context: context)
    }

    /// Carries out the relay's answer for one client message.
    func execute(_ action: RelayStateMachine.ClientAction, message: PostgresFrontendMessage, frame: ByteBuffer, context: ChannelHandlerContext) {
        switch action {
        case .forward:
            // Requests go upstream exactly as the client sent them.
            upstreamOut.writeImmutableBuffer(frame)
        case .forwardCopyData(let exchange):
            if let exchange, case .copyData(let data) = message { recordCopy(.stdin, data, exchange: exchange) }
            upstreamOut.writeImmutableBuffer(frame)
        case .forwardAndDescribePortal(let portal):
            do {
                try PostgresFrontendMessage.describe(.portal, name: portal).encode(into: &upstreamOut)
            } catch {
                return fail(context, code: "08P01", "cannot describe portal: \(error)", reason: "protocol-error")
            }
            upstreamOut.writeImmutableBuffer(frame)
        case .refuse(let countRefusal):
            if countRefusal { core.countRefusal() }
            emitReadyRefusals(context)
            flushClient()
        case .drop:
            break
        case .terminate:
            endReason = "client-terminate"
            upstreamOut.writeImmutableBuffer(frame)
            flushUpstream()
            endAfterTerminate(context)
        case .fail(let code, let text, let reason):
            fail(context, code: code, text, reason: reason)
        case .wait:
            break
        case .inspect, .preview:
            preconditionFailure("the relay asked to inspect a message twice")
        }
    }

    /// Inspects, decides and records one request (the core's steps): admitted, with what masking
    /// needs to place the columns of its results, or refused, with the message for the client.
    /// Held: registered with the approvals service (`startHold`); the relay keeps the message.
    func admit(_ request: consuming Request, context: ChannelHandlerContext) -> RelayStateMachine.Verdict {
        let actions = core.request(request)
        recorded.exchangeStarted()
        syncMasking()
        var verdict = RelayStateMachine.Verdict.refused(machine.relay.lastDenial)
        for action in actions {
            switch action {
            case .forward(let a): verdict = .admitted(a)
            case .refuse(_, let message): verdict = .refused(message)
            case .hold(let hold):
                startHold(hold, context: context)
                verdict = .held(approvalID: hold.approvalID)
            case .pauseReading, .resumeReading, .holdUpstream, .releaseUpstream: apply([action])
            }
        }
        return verdict
    }

    /// A Parse is decided where the policy enforces, so a refused statement is never even prepared
    /// upstream (and the refusal is recorded); an allowed one is decided and recorded at Execute.
    func preview(name: String, text: String, context: ChannelHandlerContext) -> RelayStateMachine.Verdict {
        guard core.currentPolicy().enforcing else { return .allowed }
        let request = Request.postgres(PostgresRequest(text: text, path: .extended, statementName: name))
        let action = core.preview(request).action
        // A statement to be reviewed is held at its Execute, where it would run.
        guard action != .allow, !(action == .review && core.settings.holds) else { return .allowed }
        switch admit(request, context: context) {
        case .admitted, .allowed: return .refused(machine.relay.lastDenial)
        case let verdict: return verdict
        }
    }

    /// The gate's refusals whose turn has come (the server answered what was sent before them).
    func emitReadyRefusals(_ context: ChannelHandlerContext) {
        while let refusal = machine.nextDueRefusal() {
            core.countError()
            writeBackend(context, .errorResponse(.init(severity: "ERROR", sqlState: "42501", message: refusal.message)), flush: false)
            if let status = refusal.ready { writeBackend(context, .readyForQuery(status), flush: false) }
        }
    }

    /// A message from upstream while relaying: mask it, record it against its exchange and pass it on.
    func upstreamMessage(_ message: PostgresBackendMessage, frame: ByteBuffer) {
        guard let context, state == .relaying else { return }
        /// Set when masking rewrote the message; otherwise its frame is forwarded as it came.
        var replacement: PostgresBackendMessage?
        switch machine.upstreamMessage(message) {
        case .forward:
            switch passing(message, context: context) {
            case .pass(let masked): replacement = masked
            case .ended: return
            }
        case .startResult(let fields):
            startResult(fields)
        case .row(let opening):
            if let opening { startResult(opening) }
            if case .dataRow(let row) = message { replacement = recordRow(row) }
        case .finishResult(let pending):
            replacement = finishResult(message, pending: pending)
        case .keepBack:
            return finishUpstreamMessage(message)
        case .startCopyOut(let layout, let projections):
            masking?.beginCopy(layout, projections: projections, catalog: catalogLookup())
        case .copyData(let exchange):
            guard case .copyData(var data) = message else { break }
            if masking != nil, let masked = masking!.maskCopyData(data) { data = masked; replacement = .copyData(masked) }
            if let exchange { recordCopy(.stdout, data, exchange: exchange) }
        case .copyDone:
            masking?.copy = nil
        case .ready(let discardResult):
            if discardResult { _ = recorded.takeResult() }
            masking?.columns = PostgresResultMasker.ResultColumns()
        case .drop:
            return
        case .fail(let code, let text, let reason):
            return fail(context, code: code, text, reason: reason)
        }
        // What masking left alone goes to the client as the database sent it; nothing once the session is ending.
        if machine.relay.confirmed.ending == nil {
            if let replacement { writeBackend(context, replacement, flush: false) } else { clientOut.writeImmutableBuffer(frame) }
        }
        finishUpstreamMessage(message)
    }

    /// After a message is handled (forwarded or kept back): what it answered, and the refusals now due.
    func finishUpstreamMessage(_ message: PostgresBackendMessage) {
        guard state == .relaying else { return }
        if case .diverged(let divergence) = machine.answered(message) { diverged(divergence) }
        if endIfAnswered() { return }
        if let context, state == .relaying { emitReadyRefusals(context) }
    }

    enum Passing {
        /// Pass it on: as it came (nil) or as masking rewrote it.
        case pass(PostgresBackendMessage?)
        /// The session ended on it.
        case ended
    }

    /// A server message that opens or closes no result: masked where it carries values, and
    /// what it reports about the session noted.
    func passing(_ message: PostgresBackendMessage, context: ChannelHandlerContext) -> Passing {
        switch message {
        case .noticeResponse(var fields):
            var replacement: PostgresBackendMessage?
            if masking != nil, let masked = masking!.mask(fields, at: .notice, withhold: withholdsDiagnostics(machine.relay.pending.first)) {
                fields = masked; replacement = .noticeResponse(masked)
            }
            recorded.notices.append(fields.notice)
            return .pass(replacement)
        case .notificationResponse(let pid, let channel, let payload):
            guard masking != nil, let masked = masking!.mask(text: payload, at: .notice) else { return .pass(nil) }
            return .pass(.notificationResponse(processID: pid, channel: channel, payload: masked))
        case .functionCallResponse(let value):
            // The result's format is the client's choice: a flagged value is replaced by NULL, never passed clear.
            guard masking != nil, let value, let r = masking!.masker.mask(Array(value.readableBytesView)) else { return .pass(nil) }
            masking!.tally.record(r, at: MaskLocation("function result"))
            return .pass(.functionCallResponse(nil))
        case .parameterStatus(let name, let value) where LexingSettings.reported.contains(name):
            if let refusal = lexing.report(name, value) {
                lexingChanged(refusal, context: context)
                return .ended
            }
            return .pass(nil)
        case .parameterStatus(let name, let value) where name == "application_name" && value != core.applicationName:
            // `SET application_name` mid-session (an assistant naming the prompt it works on): on the
            // record from here on, as an annotation of its own.
            core.applicationNameChanged(to: value)
            return .pass(nil)
        default:
            return .pass(nil)
        }
    }
}
