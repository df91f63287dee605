import Approvals
import CaptureFormat
import NIOCore
import Policy
import ProxyCore

/// Held requests: the core holds a request a rule sends to review; the handler registers it with
/// the gate's approvals service off the event loop and keeps the client waiting (the request's
/// body, if any, waits unread behind it). On the approval's final event the request is forwarded
/// (approved) or answered 403 with the core's refusal (denied, expired, withdrawn).
extension HTTPSessionHandler {
    func startHold(_ hold: Hold) {
        guard let context else { return }
        step = .held
        heldApprovalID = hold.approvalID
        submitRecorded()
        logger.notice("HTTP request held for approval", metadata: ["approval": "\(hold.approvalID)", "target": "\(target.name)"])
        let session = core.context
        let request = HoldRequest(approvalID: hold.approvalID, session: session?.sessionID ?? "", exchange: hold.exchange,
                                  target: target.name, requester: Principal(subject: session?.subject ?? "", groups: session?.groups ?? []),
                                  statement: hold.statement, fingerprint: hold.fingerprint, decision: hold.decision,
                                  requirement: hold.approval)
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let approvals = gate.approvals
        let id = hold.approvalID
        Task {
            do {
                let event = try await approvals.request(request) { event in
                    loop.execute { handler.value.approvalEvent(event) }
                }
                loop.execute {
                    guard handler.value.heldApprovalID == id else {
                        if !event.isFinal { Task { try? await approvals.withdraw(id, reason: "the client went away") } }
                        return
                    }
                    handler.value.approvalEvent(event)
                }
            } catch {
                // The service could not take it: the request never runs (fail closed).
                loop.execute {
                    handler.value.logger.error("approval request failed", metadata: ["approval": "\(id)", "error": "\(error)"])
                    handler.value.approvalEvent(ApprovalEvent(kind: .expired, approvalID: id,
                                                              reason: "the approvals service could not register it: \(error)"))
                }
            }
        }
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
