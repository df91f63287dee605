import Approvals
import Logging
import NIOCore
import Policy
import ProxyCore

/// An adapter's session handler that can hold a request for approval. Its members are used on
/// its event loop only.
public protocol HoldingHandler: AnyObject {
    /// The approval of the request the handler holds now, if any.
    var heldApprovalID: String? { get }
    /// An event of that approval (the final one settles the held request).
    func approvalEvent(_ event: ApprovalEvent)
}

extension Gate {
    /// Registers a request the core held with the approvals service, off the event loop, for every
    /// protocol: the approval's events come back on `loop` to `handler`; if the handler no longer
    /// holds it when the service answers (the client went away), it is withdrawn; if the service
    /// cannot take it, the request never runs (an expiry, fail closed).
    public func submitHold(_ hold: Hold, session: SessionContext?, target: String, handler: any HoldingHandler,
                           on loop: any EventLoop, logger: Logger) {
        let request = HoldRequest(approvalID: hold.approvalID, session: session?.sessionID ?? "", exchange: hold.exchange,
                                  target: target, requester: Principal(subject: session?.subject ?? "", groups: session?.groups ?? []),
                                  statement: hold.statement, fingerprint: hold.fingerprint, decision: hold.decision,
                                  requirement: hold.approval)
        let bound = NIOLoopBound(handler, eventLoop: loop)
        let approvals = self.approvals
        let id = hold.approvalID
        Task {
            do {
                let event = try await approvals.request(request) { event in
                    loop.execute { bound.value.approvalEvent(event) }
                }
                loop.execute {
                    guard bound.value.heldApprovalID == id else {
                        // The client went away before the service had it: withdraw it now.
                        if !event.isFinal { Task { try? await approvals.withdraw(id, reason: "the client went away") } }
                        return
                    }
                    bound.value.approvalEvent(event)
                }
            } catch {
                loop.execute {
                    logger.error("approval request failed", metadata: ["approval": "\(id)", "error": "\(error)"])
                    bound.value.approvalEvent(ApprovalEvent(kind: .expired, approvalID: id,
                                                            reason: "the approvals service could not register it: \(error)"))
                }
            }
        }
    }
}
