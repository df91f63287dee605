// The envelope of one event (docs/capture-format.md, "Events").

extension Event: WireMessage {
    public func encode(to w: inout WireWriter) {
        w.uint(1, sequence)
        w.uint(2, monotonicNanos)
        w.int(3, wallMicros)
        w.uint(4, exchangeID)
        // The kind is always written: 0 is not a kind, and absence must not mean one.
        w.key(5, .varint)
        w.varint(UInt64(kindCode))
        switch payload {
        case .sessionStart(let p): w.message(6, p)
        case .sessionEnd(let p): w.message(6, p)
        case .request(let p): w.message(6, p)
        case .decision(let p): w.message(6, p)
        case .approval(let p): w.message(6, p)
        case .response(let p): w.message(6, p)
        case .streamChunk(let p): w.message(6, p)
        case .maskSummary(let p): w.message(6, p)
        case .annotation(let p): w.message(6, p)
        case .divergence(let p): w.message(6, p)
        case .unknown(_, let bytes): w.bytes(6, bytes)
        }
    }

    public init(wire r: inout WireReader) throws {
        let (envelope, body) = try EventEnvelope.parse(&r)
        let payload = try Payload(kind: envelope.kindCode, wire: body)
        self.init(sequence: envelope.sequence, monotonicNanos: envelope.monotonicNanos, wallMicros: envelope.wallMicros,
                  exchangeID: envelope.exchangeID, payload: payload)
    }
}

extension Payload {
    /// Decodes the payload message of an event of kind `kind` (an unknown kind is kept as raw bytes).
    public init(kind: UInt8, wire body: WireReader) throws {
        var b = body
        switch EventKind(rawValue: kind) {
        case .sessionStart: self = .sessionStart(try SessionStart(wire: &b))
        case .sessionEnd: self = .sessionEnd(try SessionEnd(wire: &b))
        case .request: self = .request(try Request(wire: &b))
        case .decision: self = .decision(try Decision(wire: &b))
        case .approval: self = .approval(try Approval(wire: &b))
        case .response: self = .response(try Response(wire: &b))
        case .streamChunk: self = .streamChunk(try StreamChunk(wire: &b))
        case .maskSummary: self = .maskSummary(try MaskSummary(wire: &b))
        case .annotation: self = .annotation(try Annotation(wire: &b))
        case .divergence: self = .divergence(try Divergence(wire: &b))
        case nil:
            self = .unknown(kind: kind, bytes: [UInt8](UnsafeRawBufferPointer(rebasing: b.base[b.position..<b.end])))
        }
    }
}

/// An event's envelope with its payload still encoded, so a search can look at sequence,
/// time, exchange and kind of every event and decode only the payloads it needs.
public struct EventEnvelope: Sendable, Equatable {
    public var sequence: UInt64
    public var monotonicNanos: UInt64
    public var wallMicros: Int64
    public var exchangeID: UInt64
    public var kindCode: UInt8
    /// Where the payload message lies in the block's raw payload.
    public var payload: Range<Int>

    public var kind: EventKind? { EventKind(rawValue: kindCode) }

    /// Reads the envelope fields of one event message; returns a reader over its payload.
    static func parse(_ r: inout WireReader) throws -> (EventEnvelope, WireReader) {
        var sequence: UInt64 = 0, mono: UInt64 = 0, wall: Int64 = 0, exchange: UInt64 = 0
        var kind: UInt64?
        var body: WireReader?
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: sequence = try r.uint(t)
            case 2: mono = try r.uint(t)
            case 3: wall = try r.int(t)
            case 4: exchange = try r.uint(t)
            case 5: kind = try r.uint(t)
            case 6: body = try r.subReader(t)
            default: try r.skip(t)
            }
        }
        guard let kind, kind > 0, kind <= 255 else { throw r.fail("event has no valid kind") }
        let b = body ?? WireReader(base: r.base, from: r.position, to: r.position)
        return (EventEnvelope(sequence: sequence, monotonicNanos: mono, wallMicros: wall, exchangeID: exchange,
                              kindCode: UInt8(kind), payload: b.position..<b.end), b)
    }

    /// The envelopes of a block's raw payload (as `CaptureFile.rawPayload(of:)` returns it), in order.
    public static func all(in buffer: UnsafeRawBufferPointer, expectedCount: Int = 0) throws -> [EventEnvelope] {
        try EventStream.messages(buffer, expectedCount: expectedCount) { try parse(&$0).0 }
    }

    /// The whole event, with its payload decoded from `buffer` (the same raw payload).
    public func event(in buffer: UnsafeRawBufferPointer) throws -> Event {
        let payload = try Payload(kind: kindCode, wire: WireReader(buffer, range: self.payload))
        return Event(sequence: sequence, monotonicNanos: monotonicNanos, wallMicros: wallMicros, exchangeID: exchangeID, payload: payload)
    }
}

/// Block payloads are a run of events, each prefixed by its varint length.
enum EventStream {
    static func decode(_ buffer: UnsafeRawBufferPointer, expectedCount: Int) throws -> [Event] {
        try messages(buffer, expectedCount: expectedCount) { try Event(wire: &$0) }
    }

    /// Reads each length-prefixed event message with `read`; an error names the event and where it starts.
    static func messages<T>(_ buffer: UnsafeRawBufferPointer, expectedCount: Int, _ read: (inout WireReader) throws -> T) throws -> [T] {
        var r = WireReader(buffer)
        var out: [T] = []
        // The count comes from the block header: every event takes at least one byte, so never reserve more.
        out.reserveCapacity(min(expectedCount, buffer.count))
        while !r.isAtEnd {
            let start = r.position
            let n = try r.length()
            var sub = WireReader(base: buffer, from: r.position, to: r.position + n)
            r.position += n
            do {
                out.append(try read(&sub))
            } catch let e as WireError {
                throw WireError(message: "event \(out.count) (at payload byte \(start)): \(e.message)", offset: e.offset)
            }
        }
        return out
    }
}
