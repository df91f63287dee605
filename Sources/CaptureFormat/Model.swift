// The event model: a protocol-neutral envelope around typed payloads.
// Field tags are part of the file format (docs/capture-format.md): never reuse one.

/// What an event is. Raw values are stored on disk and in block kind bitmaps (bit = raw value).
public enum EventKind: UInt8, Sendable, CaseIterable, Codable {
    case sessionStart = 1
    case sessionEnd = 2
    case request = 3
    case decision = 4
    case approval = 5
    case response = 6
    case streamChunk = 7
    case maskSummary = 8
    case annotation = 9
    /// Since format 1.2: the server's answer did not match what the gate decided on.
    case divergence = 10

    public var name: String {
        switch self {
        case .sessionStart: "session-start"
        case .sessionEnd: "session-end"
        case .request: "request"
        case .decision: "decision"
        case .approval: "approval"
        case .response: "response"
        case .streamChunk: "stream"
        case .maskSummary: "mask-summary"
        case .annotation: "annotation"
        case .divergence: "divergence"
        }
    }

    public init?(name: String) {
        guard let k = EventKind.allCases.first(where: { $0.name == name }) else { return nil }
        self = k
    }

    /// The name the footer's session summary counts the kind under. Kinds added after 1.1 are
    /// counted as `kind-N`, the name a 1.1 reader gives a kind it does not know: `verify`
    /// recomputes the summary from the events, so any other name would fail it on a 1.1 reader.
    public var summaryName: String { rawValue <= EventKind.annotation.rawValue ? name : "kind-\(rawValue)" }

    /// A summary's kind name as shown: `kind-10` is `divergence` to a reader that knows it.
    public static func displayName(summaryName: String) -> String {
        guard summaryName.hasPrefix("kind-"), let code = UInt8(summaryName.dropFirst(5)), let k = EventKind(rawValue: code) else { return summaryName }
        return k.name
    }
}

/// One recorded event. The writer assigns `sequence`; it starts at 1 and has no gaps.
public struct Event: Sendable, Equatable {
    public var sequence: UInt64
    /// Nanoseconds since the session started, from a monotonic clock.
    public var monotonicNanos: UInt64
    /// Microseconds since the Unix epoch (UTC).
    public var wallMicros: Int64
    /// Ties a request to its decision, approvals and response; 0 when not part of an exchange.
    public var exchangeID: UInt64
    public var payload: Payload

    public init(sequence: UInt64 = 0, monotonicNanos: UInt64, wallMicros: Int64, exchangeID: UInt64 = 0, payload: Payload) {
        self.sequence = sequence
        self.monotonicNanos = monotonicNanos
        self.wallMicros = wallMicros
        self.exchangeID = exchangeID
        self.payload = payload
    }

    /// Moves `event` out, leaving an empty one (no allocation) in its place. For handing events
    /// on from an array: a copy retains every string and array an event holds, and the standard
    /// library's ways to empty an array in order (`reverse`, `append(contentsOf:)`) copy.
    public static func take(_ event: inout Event) -> Event {
        var taken = Event(monotonicNanos: 0, wallMicros: 0, payload: .unknown(kind: 0, bytes: []))
        swap(&taken, &event)
        return taken
    }

    /// The kind's raw value; for an event of a kind this reader does not know, the stored value.
    public var kindCode: UInt8 {
        if case .unknown(let code, _) = payload { return code }
        return payload.kind!.rawValue
    }
}

public enum Payload: Sendable, Equatable {
    case sessionStart(SessionStart)
    case sessionEnd(SessionEnd)
    case request(Request)
    case decision(Decision)
    case approval(Approval)
    case response(Response)
    case streamChunk(StreamChunk)
    case maskSummary(MaskSummary)
    case annotation(Annotation)
    case divergence(Divergence)
    /// An event kind written by a newer writer: kept as raw bytes.
    case unknown(kind: UInt8, bytes: [UInt8])

    public var kind: EventKind? {
        switch self {
        case .sessionStart: .sessionStart
        case .sessionEnd: .sessionEnd
        case .request: .request
        case .decision: .decision
        case .approval: .approval
        case .response: .response
        case .streamChunk: .streamChunk
        case .maskSummary: .maskSummary
        case .annotation: .annotation
        case .divergence: .divergence
        case .unknown: nil
        }
    }
}

public struct KeyValue: Sendable, Equatable, Hashable, WireMessage {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) { self.key = key; self.value = value }

    public func encode(to w: inout WireWriter) {
        w.string(1, key)
        w.string(2, value)
    }

    public init(wire r: inout WireReader) throws {
        key = ""; value = ""
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: key = try r.string(t)
            case 2: value = try r.string(t)
            default: try r.skip(t)
            }
        }
    }
}

/// Bytes recorded up to a cap: what was kept, the true size, and a SHA-256
/// of the part that was cut, so the rest can be proven later without storing it.
public struct CappedBytes: Sendable, Equatable, WireMessage {
    public var data: [UInt8]
    public var totalSize: UInt64
    public var cutSHA256: [UInt8]?

    public init(data: [UInt8], totalSize: UInt64? = nil, cutSHA256: [UInt8]? = nil) {
        self.data = data
        self.totalSize = totalSize ?? UInt64(data.count)
        self.cutSHA256 = cutSHA256
    }

    public var isTruncated: Bool { totalSize > UInt64(data.count) }

    public func encode(to w: inout WireWriter) {
        w.bytes(1, data)
        w.uint(2, totalSize)
        w.bytes(3, cutSHA256)
    }

    public init(wire r: inout WireReader) throws {
        data = []; totalSize = 0; cutSHA256 = nil
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: data = try r.bytes(t)
            case 2: totalSize = try r.uint(t)
            case 3: cutSHA256 = try r.bytes(t)
            default: try r.skip(t)
            }
        }
    }
}
