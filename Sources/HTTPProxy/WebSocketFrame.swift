/// One RFC 6455 frame as the gate reads and writes it (§5.2), and its encoding.
struct WebSocketFrame: Equatable, Sendable {
    enum Opcode: UInt8, Sendable {
        case continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA
        var isControl: Bool { rawValue >= 0x8 }
        var name: String {
            switch self {
            case .continuation: "continuation"
            case .text: "text"
            case .binary: "binary"
            case .close: "close"
            case .ping: "ping"
            case .pong: "pong"
            }
        }
    }

    var fin: Bool
    var opcode: Opcode
    /// Unmasked.
    var payload: [UInt8]

    init(fin: Bool = true, _ opcode: Opcode, _ payload: [UInt8] = []) {
        self.fin = fin; self.opcode = opcode; self.payload = payload
    }

    /// A close frame with its status code and a reason cut to fit a control frame (125 bytes).
    static func close(_ code: UInt16, _ reason: String) -> WebSocketFrame {
        // Whole characters only: the reason must stay valid UTF-8 (§5.5.1).
        var kept = ""
        for c in reason {
            guard kept.utf8.count + c.utf8.count <= 123 else { break }
            kept.append(c)
        }
        let utf8 = Array(kept.utf8)
        return WebSocketFrame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)] + utf8)
    }

    /// The close code a close frame carries (1005 when none, §7.1.5).
    var closeCode: UInt16 {
        payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : 1005
    }

    /// The frame's bytes: masked with `mask` (a client's frame) or not (a server's).
    func encoded(mask: [UInt8]? = nil) -> [UInt8] {
        var out: [UInt8] = [(fin ? 0x80 : 0) | opcode.rawValue]
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        let n = payload.count
        if n < 126 {
            out.append(maskBit | UInt8(n))
        } else if n <= 0xFFFF {
            out.append(maskBit | 126)
            out += [UInt8(n >> 8), UInt8(n & 0xFF)]
        } else {
            out.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: UInt64(n) >> UInt64(shift))) }
        }
        guard let mask else { return out + payload }
        out += mask
        out.reserveCapacity(out.count + n)
        for (i, b) in payload.enumerated() { out.append(b ^ mask[i & 3]) }
        return out
    }
}
