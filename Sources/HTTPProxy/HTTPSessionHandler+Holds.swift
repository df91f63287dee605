import Approvals
import CaptureFormat
import GateRuntime
import NIOCore
import Policy
import ProxyCore

/// Held requests: the core holds a request a rule sends to review; the handler registers it with
/// the gate's approvals service off the event loop and keeps the client waiting (the request's
/// body, if any, waits unread behind it). On the approval's final event the request is forwarded
/// (approved) or answered 403 with the core's refusal (denied, expired, withdrawn).
extension HTTPSessionHandler: HoldingHandler {
    func startHold(_ hold: Hold) {
        guard let context else { return }
        step = .held
        heldApprovalID = hold.approvalID
        submitRecorded()
        logger.notice("HTTP request held for approval", metadata: ["approval": "\(hold.approvalID)", "target": "\(target.name)"])
        gate.submitHold(hold, session: core.context, target: target.name, handler: self, on: context.eventLoop, logger: logger)
    }

    func approvalEvent(_ event: ApprovalEvent) {
        guard heldApprovalID == event.approvalID, event.isFinal, let capture = event.capture, case .held = step else { return }
        heldApprovalID = nil
        step = .forwarding
        perform(core.resolve(capture), decision: nil)
        submitRecorded()
        pump()
    }

    /// The client went away (or the session ended) while a request was held: it will never run.
    func withdrawHold(reason: String) {
        guard let approvalID = heldApprovalID else { return }
        heldApprovalID = nil
        _ = core.resolve(Approval(state: .withdrawn, approvalID: approvalID, reason: "withdrawn: \(reason)"))
        let approvals = gate.approvals
        let logger = self.logger
        Task {
            do { try await approvals.withdraw(approvalID, reason: reason) } catch {
                logger.notice("approval not withdrawn", metadata: ["approval": "\(approvalID)", "error": "\(error)"])
            }
        }
    }
}
