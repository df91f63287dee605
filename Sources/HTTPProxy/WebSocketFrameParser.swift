/// Reads RFC 6455 frames from one direction of a WebSocket connection, incrementally and strictly:
/// whatever the gate could not follow exactly is an error (the connection is then closed with its
/// code), never passed on. Checked per frame: no reserved bit (no extension is ever negotiated
/// through the gate), a known opcode, control frames unfragmented and at most 125 bytes, masking
/// as the side must (a client's frames masked, a server's not, §5.1), a payload within the limit.
struct WebSocketFrameParser: Sendable {
    struct ProtocolError: Error, Equatable, Sendable {
        /// 1002 (protocol error) or 1009 (too big).
        var code: UInt16
        var detail: String
    }

    /// A frame with where it began: its number on this side (from 1) and its first byte's offset.
    struct Located: Equatable, Sendable {
        var frame: WebSocketFrame
        var number: Int
        var offset: Int
    }

    /// True for frames from a client (they must be masked), false for a server's (they must not be).
    let masked: Bool
    let maxFrameBytes: Int
    var buffer: [UInt8] = []
    /// Bytes taken before `buffer` (where an error is, for the record).
    private(set) var offset = 0
    private(set) var frames = 0
    var failed: ProtocolError?

    init(masked: Bool, maxFrameBytes: Int) {
        self.masked = masked
        self.maxFrameBytes = maxFrameBytes
    }

    /// The whole frames `bytes` completes; an error ends the stream (later bytes are not read).
    mutating func feed(_ bytes: [UInt8]) -> Result<[Located], ProtocolError> {
        if let failed { return .failure(failed) }
        buffer += bytes
        var out: [Located] = []
        while true {
            switch next() {
            case .success(nil): return .success(out)
            case .success(let frame?): out.append(frame)
            case .failure(let error):
                failed = error
                return .failure(error)
            }
        }
    }

    private func fail(_ what: String, code: UInt16 = 1002) -> Result<Located?, ProtocolError> {
        .failure(ProtocolError(code: code, detail: "\(masked ? "client" : "upstream") frame \(frames + 1) at byte \(offset): \(what)"))
    }

    private mutating func next() -> Result<Located?, ProtocolError> {
        guard buffer.count >= 2 else { return .success(nil) }
        let b0 = buffer[0], b1 = buffer[1]
        if b0 & 0x70 != 0 { return fail("reserved bits set (\(String((b0 & 0x70) >> 4, radix: 2))) with no extension negotiated") }
        guard let opcode = WebSocketFrame.Opcode(rawValue: b0 & 0x0F) else { return fail("unknown opcode \(b0 & 0x0F)") }
        let fin = b0 & 0x80 != 0
        let isMasked = b1 & 0x80 != 0
        if isMasked != masked {
            return fail(masked ? "a client frame must be masked (RFC 6455 §5.1)" : "a server frame must not be masked (RFC 6455 §5.1)")
        }
        var header = 2
        var length = UInt64(b1 & 0x7F)
        if length == 126 {
            guard buffer.count >= 4 else { return .success(nil) }
            length = UInt64(buffer[2]) << 8 | UInt64(buffer[3])
            header = 4
        } else if length == 127 {
            guard buffer.count >= 10 else { return .success(nil) }
            length = buffer[2..<10].reduce(0) { $0 << 8 | UInt64($1) }
            header = 10
            if length >> 63 != 0 { return fail("a 64-bit length with its top bit set") }
        }
        if opcode.isControl {
            if !fin { return fail("a fragmented \(opcode.name) frame (control frames cannot be fragmented)") }
            if length > 125 { return fail("a \(opcode.name) frame of \(length) bytes (control frames hold at most 125)") }
        }
        if length > UInt64(maxFrameBytes) { return fail("a frame of \(length) bytes, over the gate's limit of \(maxFrameBytes)", code: 1009) }
        let maskBytes = masked ? 4 : 0
        let total = header + maskBytes + Int(length)
        guard buffer.count >= total else { return .success(nil) }
        var payload = Array(buffer[(header + maskBytes)..<total])
        if masked {
            let key = Array(buffer[header..<(header + 4)])
            for i in payload.indices { payload[i] ^= key[i & 3] }
        }
        buffer.removeFirst(total)
        let located = Located(frame: WebSocketFrame(fin: fin, opcode, payload), number: frames + 1, offset: offset)
        offset += total
        frames += 1
        return .success(located)
    }
}
