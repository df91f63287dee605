import CaptureFormat

/// One exchange of a session, put together from its events (request, decisions, approvals,
/// response, mask summaries, annotations, stream chunks) by exchange id. PostgreSQL result rows
/// are not kept, only counted: the open formats list exchanges, and events.jsonl has every row.
public struct ExchangeRecord: Sendable, Equatable {
    public var id: UInt64
    public var requestSequence: UInt64?
    public var requestMicros: Int64?
    public var request: Request?
    public var decisions: [Decision] = []
    public var approvals: [Approval] = []
    public var response: Response?
    public var responseMicros: Int64?
    /// Rows recorded in the PostgreSQL response (they are dropped from `response`).
    public var recordedRows = 0
    public var masks: [MaskCount] = []
    public var annotations: [Annotation] = []
    public var streamChunks = 0

    public init(id: UInt64) { self.id = id }

    /// The decision that counted: the last one recorded.
    public var decision: Decision? { decisions.last }
    /// The last approval state: what finally happened to a review.
    public var approval: Approval? { approvals.last }

    public var kubernetes: KubernetesRequest? { if case .kubernetes(let k) = request { k } else { nil } }
    public var postgres: PostgresRequest? { if case .postgres(let p) = request { p } else { nil } }

    /// The HTTP request, for HTTP and Kubernetes exchanges.
    public var http: HTTPRequest? {
        switch request {
        case .http(let h): h
        case .kubernetes(let k): k.http
        default: nil
        }
    }

    /// Whether the gate forwarded the request: allowed, or reviewed and granted. An exchange
    /// recorded without any decision counts as forwarded when it has a response.
    public var forwarded: Bool {
        guard let d = decision else { return response != nil }
        switch d.action {
        case .allow: return true
        case .deny: return false
        case .review: return approval?.state.runs ?? false
        }
    }

    /// Exec and attach carry a terminal stream.
    public var isTerminalStream: Bool {
        guard let k = kubernetes else { return false }
        return k.subresource == "exec" || k.subresource == "attach"
    }
}

/// Collects exchanges in one pass over a session's events.
public struct ExchangeAssembler: Sendable {
    var byID: [UInt64: ExchangeRecord] = [:]
    var order: [UInt64] = []

    public init() {}

    public mutating func add(_ e: Event) {
        guard e.exchangeID != 0 else { return }
        if byID[e.exchangeID] == nil {
            byID[e.exchangeID] = ExchangeRecord(id: e.exchangeID)
            order.append(e.exchangeID)
        }
        switch e.payload {
        case .request(let r):
            byID[e.exchangeID]!.request = r
            byID[e.exchangeID]!.requestSequence = e.sequence
            byID[e.exchangeID]!.requestMicros = e.wallMicros
        case .decision(let d):
            byID[e.exchangeID]!.decisions.append(d)
        case .approval(let a):
            byID[e.exchangeID]!.approvals.append(a)
        case .response(var r):
            if case .postgres(var p) = r {
                byID[e.exchangeID]!.recordedRows += p.rows.count
                p.rows = []
                r = .postgres(p)
            }
            byID[e.exchangeID]!.response = r
            byID[e.exchangeID]!.responseMicros = e.wallMicros
        case .maskSummary(let m):
            byID[e.exchangeID]!.masks += m.entries
        case .annotation(let a):
            byID[e.exchangeID]!.annotations.append(a)
        case .streamChunk:
            byID[e.exchangeID]!.streamChunks += 1
        case .sessionStart, .sessionEnd, .divergence, .unknown:
            break
        }
    }

    /// Exchanges in the order their first event appeared (for a well-formed capture, request order).
    public var exchanges: [ExchangeRecord] { order.map { byID[$0]! } }
}
