import CaptureFormat

/// Collects exchanges in one pass over a session's events (from `CaptureFile.forEachEvent`, or
/// any events in recorded order): the one place that turns events into `Exchange`s.
public struct ExchangeAssembler: Sendable {
    var byID: [UInt64: Exchange] = [:]
    var order: [UInt64] = []
    /// False: result rows are counted, not kept (an export of many sessions need not hold them).
    public let keepsRows: Bool

    public init(keepsRows: Bool = true) { self.keepsRows = keepsRows }

    /// Adds one event; an event outside any exchange (session start and end) is ignored.
    public mutating func add(_ e: Event) {
        guard e.exchangeID != 0 else { return }
        if byID[e.exchangeID] == nil {
            byID[e.exchangeID] = Exchange(id: e.exchangeID)
            order.append(e.exchangeID)
        }
        ExchangeAssembler.add(e, to: &byID[e.exchangeID]!, keepsRows: keepsRows)
    }

    static func add(_ e: Event, to x: inout Exchange, keepsRows: Bool) {
        switch e.payload {
        case .request(let r):
            x.request = r
            x.requestSequence = e.sequence
            x.requestMicros = e.wallMicros
        case .decision(let d):
            x.decisions.append(d)
        case .approval(let a):
            x.approvals.append(a)
        case .response(var r):
            if case .postgres(var p) = r {
                x.recordedRows += p.packedRows.count
                if !keepsRows {
                    p.packedRows = PackedRows()
                    r = .postgres(p)
                }
            }
            x.responses.append(ExchangeResponse(response: r, sequence: e.sequence, micros: e.wallMicros))
        case .maskSummary(let m):
            x.masks += m.entries
        case .annotation(let a):
            x.annotations.append(a)
        case .streamChunk(let c):
            x.streamChunks += 1
            if keepsRows { x.streamData.append(c) }
        case .sessionStart, .sessionEnd, .divergence, .unknown:
            break
        }
    }

    /// Exchanges in the order their first event appeared (for a well-formed capture, request order).
    public var exchanges: [Exchange] { order.map { byID[$0]! } }

    /// One exchange from its events alone (a search holds each exchange's events together).
    public static func exchange(id: UInt64, events: [Event], keepsRows: Bool = true) -> Exchange {
        var x = Exchange(id: id)
        for e in events { add(e, to: &x, keepsRows: keepsRows) }
        return x
    }
}

extension ExchangeAssembler {
    /// Every exchange of a capture, read with the capture reader, in order of their first event.
    public static func exchanges(of capture: CaptureFile, keepsRows: Bool = true) throws -> [Exchange] {
        var assembler = ExchangeAssembler(keepsRows: keepsRows)
        try capture.forEachEvent { e in
            assembler.add(e)
            return true
        }
        return assembler.exchanges
    }
}
