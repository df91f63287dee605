import CaptureFormat

/// Strict recording (`recording.durability: strict`) in the session core: what the adapter
/// would forward upstream is held until the recorder acknowledges that its records, and
/// everything recorded before them, are written and synced. The order and the release are
/// `WriteAheadQueue`'s; the adapter only keeps the bytes under the ticket it is given.
extension ExchangeSession {
    /// Whether this session forwards only what is durably recorded.
    public var writesAhead: Bool { writeAhead != nil }

    /// Hands what was stamped to the recorder, before the adapter forwards this read's output.
    /// Batched: as `flush`, and the adapter forwards at once. Strict: `.holdUpstream(ticket)`
    /// (the adapter keeps its output unsent), then `.releaseUpstream` once nothing needs to be
    /// waited for, and the client's reading paused (`.awaitingRecord`) while something waits.
    /// `acknowledged` (evaluated only when strict) is called from the writer thread with the
    /// ticket; the adapter brings it back to its event loop and calls `recordAcknowledged`.
    public mutating func flushBeforeForwarding(
        acknowledged: @autoclosure () -> @Sendable (_ ticket: UInt64, _ error: CaptureError?) -> Void
    ) -> [ExchangeAction] {
        guard var queue = writeAhead else { return flush() }
        let ticket = queue.reserve()
        var actions: [ExchangeAction] = [.holdUpstream(ticket: ticket)]
        // No recorder (the session is not open or has ended): held, never released (fail closed).
        guard let recorder else {
            writeAhead = queue
            return actions + pause(.client, .awaitingRecord)
        }
        let acknowledge = acknowledged()
        let waits = recorder.submitDurably(&staged) { error in acknowledge(ticket, error) }
        let released = queue.hold(ticket, ticket: ticket, waits: waits)
        writeAhead = queue
        if let last = released.last { actions.append(.releaseUpstream(through: last)) }
        return actions + awaitingRecord()
    }

    /// The recorder's acknowledgement of `ticket`: what may be forwarded now, or, when the records
    /// could not be written, the session's end; nothing held is forwarded then (the adapter drops it).
    public mutating func recordAcknowledged(_ ticket: UInt64, error: CaptureError?) -> (actions: [ExchangeAction], closing: SessionClosing?) {
        guard var queue = writeAhead else { return ([], nil) }
        if error != nil {
            queue.dropAll()
            writeAhead = queue
            return ([], SessionClosing(code: .unavailable,
                                       message: "tollgate: the gate cannot record this request, so it was not forwarded; the session is ended",
                                       reason: "recording-failed"))
        }
        let released = queue.acknowledged(ticket)
        writeAhead = queue
        var actions: [ExchangeAction] = []
        if let last = released.last { actions.append(.releaseUpstream(through: last)) }
        return (actions + awaitingRecord(), nil)
    }

    /// The client is not read while a forward waits for its record: a session has at most a read
    /// or two in flight, however fast the client sends.
    mutating func awaitingRecord() -> [ExchangeAction] {
        writeAhead?.isHolding == true ? pause(.client, .awaitingRecord) : resume(.client, .awaitingRecord)
    }
}
