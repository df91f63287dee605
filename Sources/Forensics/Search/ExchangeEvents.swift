import CaptureFormat

/// One decompressed events block: its raw payload and the envelopes of its events.
/// Immutable once built, so exchanges in any task may hold on to it.
final class DecodedBlock: Sendable {
    let index: Int
    let raw: [UInt8]
    let envelopes: [EventEnvelope]
    /// False when PATTERN's required literal is absent from the block (its texts cannot match).
    let mayMatchPattern: Bool

    init(index: Int, raw: [UInt8], envelopes: [EventEnvelope], mayMatchPattern: Bool) {
        self.index = index; self.raw = raw; self.envelopes = envelopes; self.mayMatchPattern = mayMatchPattern
    }

    func event(_ e: EventEnvelope) -> Event? {
        raw.withUnsafeBytes { try? e.event(in: $0) }
    }
}

struct ExchangeEvent: Sendable {
    let envelope: EventEnvelope
    let block: DecodedBlock
}

/// Where the events of one exchange found so far lie in their decoded blocks (or one event that
/// belongs to no exchange). Not a model of the exchange: it holds references into the blocks so
/// that the search decodes only what a condition reads; `ExchangeAssembler` makes the `Exchange`.
struct ExchangeEvents: Sendable {
    /// 0 for an event outside any exchange (session start and end).
    let id: UInt64
    var events: [ExchangeEvent] = []
    /// Bit i: condition i is admitted by the index of some block holding one of these events.
    var admitted: UInt64 = 0
    /// The last block that can still hold events of this exchange (Int.max: unknown).
    var bound: Int

    var firstSequence: UInt64 { events.first?.envelope.sequence ?? 0 }
    var time: Int64 { events.first?.envelope.wallMicros ?? 0 }

    func decoded() -> [Event] { events.compactMap { $0.block.event($0.envelope) } }

    /// The events of these kinds only, decoded.
    func decoded(kinds: Set<EventKind>) -> [Event] {
        events.lazy.filter { $0.envelope.kind.map(kinds.contains) ?? false }.compactMap { $0.block.event($0.envelope) }
    }

    /// The exchange as the one model has it, from the events the search's conditions read: its
    /// responses and stream chunks (large, read from the raw bytes where needed) are left out.
    func conditionModel() -> Exchange {
        ExchangeAssembler.exchange(id: id, events: decoded(kinds: ExchangeEvents.conditionKinds), keepsRows: false)
    }

    static let conditionKinds: Set<EventKind> = [.request, .decision, .approval, .maskSummary, .annotation]
}

