/// Strict recording's one rule, "forward only after the record is durable", kept in one place
/// for any protocol: what a session would forward waits here, in order, until the recorder has
/// acknowledged the records handed to it before (see `SessionRecorder.submitDurably`).
///
/// A protocol handler reserves a ticket, hands its events to the recorder with that ticket in the
/// acknowledgement, then `hold`s what it would forward; it forwards what `hold` and
/// `acknowledged` return, in that order. An acknowledgement covers every ticket before it (one
/// file, appended and synced in order), and what needed no wait still waits behind what did.
public struct WriteAheadQueue<Payload> {
    struct Held {
        let ticket: UInt64
        let payload: Payload
        var ready: Bool
    }

    var held: [Held] = []
    var issued: UInt64 = 0
    var acknowledgedUpTo: UInt64 = 0

    public init() {}

    /// Whether something waits for the recorder (the session should stop reading meanwhile).
    public var isHolding: Bool { !held.isEmpty }

    /// A ticket for the next `hold`.
    public mutating func reserve() -> UInt64 {
        issued += 1
        return issued
    }

    /// `payload` for `ticket`: returned at once (with nothing to wait for, `waits` false, and nothing
    /// ahead of it), or held until `acknowledged`.
    public mutating func hold(_ payload: Payload, ticket: UInt64, waits: Bool) -> [Payload] {
        held.append(Held(ticket: ticket, payload: payload, ready: !waits || ticket <= acknowledgedUpTo))
        return release()
    }

    /// The recorder made everything up to `ticket` durable: what may be forwarded now, in order.
    public mutating func acknowledged(_ ticket: UInt64) -> [Payload] {
        acknowledgedUpTo = max(acknowledgedUpTo, ticket)
        return release()
    }

    /// Everything held, dropped (the recording failed: none of it may be forwarded).
    public mutating func dropAll() {
        held.removeAll()
    }

    mutating func release() -> [Payload] {
        var out: [Payload] = []
        while let first = held.first, first.ready || first.ticket <= acknowledgedUpTo {
            out.append(held.removeFirst().payload)
        }
        return out
    }
}
