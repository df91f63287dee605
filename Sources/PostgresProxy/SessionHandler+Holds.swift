import Approvals
import CaptureFormat
import Foundation
import GateRuntime
import NIOCore
import Policy
import PostgresWire
import ProxyCore

/// Held requests (just-in-time approvals): the core holds a request a rule sends to review; the
/// handler registers it with the gate's approvals service off the event loop, tells the client
/// where it waits (a NoticeResponse), keeps the client's later messages behind it, and on the
/// approval's final event forwards the held message (approved) or answers it with the core's
/// 42501 refusal (denied, expired, withdrawn), then relays what waited.
extension PostgresSessionHandler: HoldingHandler {
    var heldApprovalID: String? { machine.heldApprovalID }

    /// The core held the message being inspected (the relay keeps it): register it and tell the client.
    func startHold(_ hold: Hold, context: ChannelHandlerContext) {
        writeBackend(context, .noticeResponse(.init(severity: "NOTICE", sqlState: "01000", message: holdNotice(hold))), flush: false)
        flushClient()
        submitRecorded()
        gate.gate.submitHold(hold, session: session, target: target.name, handler: self, on: context.eventLoop, logger: gate.logger)
    }

    /// What the client is told while it waits: the approval's id, the rule, where to approve.
    func holdNotice(_ hold: Hold) -> String {
        var where_ = "capture-proxy approvals approve \(hold.approvalID) --reason ..."
        if let page = gate.config.approvals.pageURL {
            where_ = page.appendingPathComponent("approvals").appendingPathComponent(hold.approvalID).absoluteString + " or " + where_
        }
        return "tollgate: approval \(hold.approvalID) required by policy \"\(hold.decision.policy)\" rule \"\(hold.decision.rule)\""
            + " (approvers: \(hold.approvers.joined(separator: ", "))); waiting for a decision: \(where_)"
    }

    /// An event of the approval: a final one settles the held message; others change nothing for the client.
    func approvalEvent(_ event: ApprovalEvent) {
        guard machine.heldApprovalID == event.approvalID, event.isFinal, let capture = event.capture,
              let context, state == .relaying else { return }
        var verdict = RelayStateMachine.Verdict.refused("tollgate: approval \(event.approvalID) was not approved")
        for action in core.resolve(capture) {
            switch action {
            case .forward(let a): verdict = .admitted(a)
            case .refuse(_, let message): verdict = .refused(message)
            case .hold: break
            case .pauseReading, .resumeReading, .holdUpstream, .releaseUpstream: apply([action])
            }
        }
        recorded.exchangeStarted()
        syncMasking()
        guard let released = machine.released(verdict) else { return }
        execute(released.action, message: released.message, frame: released.frame, context: context)
        // What waited behind it, in order, until another hold (or the end).
        while state == .relaying, let next = machine.nextWaiting() {
            clientMessage(next.message, frame: next.frame, context: context)
        }
        flushUpstream()
        flushClient()
        submitRecorded()
    }

    /// The client went away (or the session ended) while a request was held: it will never run.
    func withdrawHold(reason: String) {
        guard let approvalID = machine.heldApprovalID else { return }
        machine.abandonHold()
        _ = core.resolve(Approval(state: .withdrawn, approvalID: approvalID, reason: "withdrawn: \(reason)"))
        let approvals = gate.gate.approvals
        let logger = gate.logger
        Task {
            do { try await approvals.withdraw(approvalID, reason: reason) } catch {
                logger.notice("approval not withdrawn", metadata: ["approval": "\(approvalID)", "error": "\(error)"])
            }
        }
    }

    /// A CancelRequest for this session, heard on another connection: on this session's loop, a
    /// held request is withdrawn (the client gets its 42501, the capture the withdrawal); anything
    /// else is cancelled upstream as before.
    func cancelHandler(_ context: ChannelHandlerContext, upstream: CancelRegistry.Upstream) -> @Sendable () -> Void {
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let cancels = gate.cancels
        return {
            loop.execute {
                let session = handler.value
                guard let approvalID = session.machine.heldApprovalID else {
                    cancels.cancel(upstream, on: loop).whenComplete { _ in }
                    return
                }
                let reason = "cancelled by the client"
                session.approvalEvent(ApprovalEvent(kind: .withdrawn, approvalID: approvalID, reason: "withdrawn: \(reason)"))
                let approvals = session.gate.gate.approvals
                Task { try? await approvals.withdraw(approvalID, reason: reason) }
            }
        }
    }
}
