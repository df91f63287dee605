import PostgresWire

/// A simple Query (or FunctionCall) sent inside an extended-protocol batch, after Parse, Bind,
/// Describe, Execute or Close and before their Sync. Should anything in the batch fail, PostgreSQL
/// skips every message up to the Sync, the Query included, and answers it with nothing (no
/// ReadyForQuery of its own); the gate, counting it as answered by one, fell a batch behind from
/// then on and recorded and masked every later result against the wrong request (review
/// 2026-12-05: `reverse(phone)` came back in clear). The gate cannot know whether the batch will
/// fail, so the Query is refused as an error of the batch, and the rest is skipped up to the Sync,
/// as the server does after an error.
extension RelayStateMachine {
    /// Checks made before a client message is forwarded: the refusal, or nil to go on.
    mutating func refusedBeforeForwarding(_ message: PostgresFrontendMessage) -> ClientAction? {
        switch message {
        case .query, .functionCall:
            guard relay.confirmed.awaitsSync else { return nil }
            relay.lastDenial = "tollgate: a \(message.messageName) message inside an extended-protocol batch (after Parse, Bind, Describe, "
                + "Execute or Close, before their Sync) is refused: PostgreSQL skips it unanswered if the batch fails; send Sync first"
            relay.skippingUntilSync = true
            return refuse(ownReady: false, countRefusal: true)
        case .close:
            return refusedPortalClose(message)
        default:
            return nil
        }
    }
}
