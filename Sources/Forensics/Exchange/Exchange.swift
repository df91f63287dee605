import CaptureFormat

/// One exchange of a session, put together from its events (request, decisions, approvals,
/// responses with their rows, mask summaries, annotations, stream chunks) by exchange id. The one
/// model of an exchange that search, export (and replay and diff) read; built by `ExchangeAssembler`.
public struct Exchange: Sendable, Equatable {
    public var id: UInt64
    public var requestSequence: UInt64?
    public var requestMicros: Int64?
    public var request: Request?
    public var decisions: [Decision] = []
    public var approvals: [Approval] = []
    /// Every response event of the exchange, in recorded order (most exchanges have one).
    public var responses: [ExchangeResponse] = []
    /// Rows recorded in the PostgreSQL responses. Counted also when the assembler does not keep the rows.
    public var recordedRows = 0
    public var masks: [MaskCount] = []
    public var annotations: [Annotation] = []
    public var streamChunks = 0
    /// The stream chunks' data (COPY FROM STDIN and TO STDOUT for PostgreSQL), kept when rows are.
    public var streamData: [StreamChunk] = []

    public init(id: UInt64) { self.id = id }

    /// The last response recorded (with its rows when the assembler keeps them).
    public var response: Response? { responses.last?.response }
    public var responseMicros: Int64? { responses.last?.micros }

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

    /// The PostgreSQL results, in order.
    public var postgresResults: [PostgresResponse] { responses.compactMap { if case .postgres(let p) = $0.response { p } else { nil } } }

    /// The recorded result rows, values as recorded (after masking), in order across the responses.
    /// Empty when the assembler was told not to keep rows (`recordedRows` still counts them).
    public var rows: [Row] { postgresResults.flatMap(\.rows) }

    /// The rows past the recording cap, per response that was cut: how many, their bytes and digest.
    public var cutRows: [CutRows] { postgresResults.compactMap(\.cut) }

    /// The error the database answered with, if any.
    public var postgresError: PostgresNotice? { postgresResults.lazy.compactMap(\.error).last }

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

/// One response event of an exchange, with when and where it was recorded.
public struct ExchangeResponse: Sendable, Equatable {
    public var response: Response
    public var sequence: UInt64
    public var micros: Int64

    public init(response: Response, sequence: UInt64, micros: Int64) {
        self.response = response; self.sequence = sequence; self.micros = micros
    }
}
