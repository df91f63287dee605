import NIOCore
import PostgresWire

/// Held requests (just-in-time approvals), the relay's side: the message the core held stays the
/// one being inspected until the approval is decided, and the client's later messages wait
/// behind it, in order (a pipelined batch, its Sync). The handler registers the approval and
/// tells the client (SessionHandler+Holds); on the final event it calls `released(_:)`, executes
/// the answer, then relays `nextWaiting()` until it is nil (empty, or another message held).
extension RelayStateMachine {
    /// Bytes kept behind a hold at most: a client that pipelines more is ended (fail closed).
    static let maxWaitingBytes = 64 << 20

    /// The approval the held message waits for, if one is held.
    var heldApprovalID: String? { holds.approvalID }

    /// A client message that arrived while a request is held: it waits behind it.
    mutating func waitBehindHold(_ message: PostgresFrontendMessage, frame: ByteBuffer) -> ClientAction {
        holds.append(message, frame: frame)
        guard holds.waitingBytes <= Self.maxWaitingBytes else {
            return .fail(code: "54000", message: "tollgate: more than \(Self.maxWaitingBytes >> 20) MiB sent behind a request waiting for approval",
                         reason: "protocol-error")
        }
        return .wait
    }

    /// The approval is decided: the held message is forwarded (`.admitted`) or refused, as any
    /// inspected message is. Returns what to do with it, and the message with the client's bytes.
    mutating func released(_ verdict: Verdict) -> (action: ClientAction, message: PostgresFrontendMessage, frame: ByteBuffer)? {
        guard holds.approvalID != nil, let message = inspectingMessage else { return nil }
        let frame = holds.frame
        holds.approvalID = nil
        holds.frame = ByteBuffer()
        return (inspected(verdict), message, frame)
    }

    /// The next message that waited behind a released hold; nil once none waits or another is held.
    mutating func nextWaiting() -> (message: PostgresFrontendMessage, frame: ByteBuffer)? {
        guard holds.approvalID == nil else { return nil }
        return holds.popFirst()
    }

    /// The session ends while a request is held: neither it nor what waited runs.
    mutating func abandonHold() {
        guard holds.approvalID != nil else { return }
        holds.removeAll()
        _ = takeInspecting()
    }
}
