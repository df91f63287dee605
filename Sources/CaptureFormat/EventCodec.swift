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
        case .unknown(_, let bytes): w.bytes(6, bytes)
        }
    }

    public init(wire r: inout WireReader) throws {
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
        var b = body ?? WireReader(base: r.base, from: r.position, to: r.position)
        let payload: Payload
        switch EventKind(rawValue: UInt8(kind)) {
        case .sessionStart: payload = .sessionStart(try SessionStart(wire: &b))
        case .sessionEnd: payload = .sessionEnd(try SessionEnd(wire: &b))
        case .request: payload = .request(try Request(wire: &b))
        case .decision: payload = .decision(try Decision(wire: &b))
        case .approval: payload = .approval(try Approval(wire: &b))
        case .response: payload = .response(try Response(wire: &b))
        case .streamChunk: payload = .streamChunk(try StreamChunk(wire: &b))
        case .maskSummary: payload = .maskSummary(try MaskSummary(wire: &b))
        case .annotation: payload = .annotation(try Annotation(wire: &b))
        case nil:
            payload = .unknown(kind: UInt8(kind), bytes: [UInt8](UnsafeRawBufferPointer(rebasing: b.base[b.position..<b.end])))
        }
        self.init(sequence: sequence, monotonicNanos: mono, wallMicros: wall, exchangeID: exchange, payload: payload)
    }
}

/// Block payloads are a run of events, each prefixed by its varint length.
enum EventStream {
    static func decode(_ buffer: UnsafeRawBufferPointer, expectedCount: Int) throws -> [Event] {
        var r = WireReader(buffer)
        var events: [Event] = []
        // The count comes from the block header: every event takes at least one byte, so never reserve more.
        events.reserveCapacity(min(expectedCount, buffer.count))
        while !r.isAtEnd {
            let start = r.position
            let n = try r.length()
            var sub = WireReader(base: buffer, from: r.position, to: r.position + n)
            r.position += n
            do {
                events.append(try Event(wire: &sub))
            } catch let e as WireError {
                throw WireError(message: "event \(events.count) (at payload byte \(start)): \(e.message)", offset: e.offset)
            }
        }
        return events
    }
}
