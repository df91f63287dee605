import CaptureFormat
import Foundation

/// An exec (or attach) stream as asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/),
/// so `asciinema play` replays what the operator saw and typed.
///
/// - The clock starts at the exchange's first stream chunk (a review may hold an exec for
///   minutes before anything flows); times come from the capture's monotonic clock and never
///   go backwards.
/// - stdout and stderr are `"o"` (asciicast has one output stream; with a TTY they are one
///   anyway), stdin is `"i"`, a resize is `"r"` with `COLSxROWS`.
/// - The header's size is the first resize's, else 80x24.
/// - Bytes are decoded as UTF-8 per stream across chunk boundaries, so a character split
///   between two chunks is not mangled; bytes that are not UTF-8 become U+FFFD.
public struct AsciicastBuilder: Sendable {
    struct Frame: Sendable { var nanos: UInt64; var code: String; var data: String }
    var frames: [Frame] = []
    var firstNanos: UInt64?
    var firstMicros: Int64 = 0
    var lastNanos: UInt64 = 0
    var size: (UInt16, UInt16)?
    var pending: [StreamChunk.Stream: [UInt8]] = [:]

    public init() {}

    public mutating func add(_ chunk: StreamChunk, event: Event) {
        if firstNanos == nil { firstNanos = event.monotonicNanos; firstMicros = event.wallMicros }
        // A writer's monotonic clock does not go back, but a hostile file may: clamp.
        lastNanos = max(lastNanos, event.monotonicNanos)
        switch chunk.stream {
        case .resize:
            if size == nil { size = (chunk.columns, chunk.rows) }
            frames.append(Frame(nanos: lastNanos, code: "r", data: "\(chunk.columns)x\(chunk.rows)"))
        case .stdin, .stdout, .stderr:
            let key: StreamChunk.Stream = chunk.stream == .stdin ? .stdin : .stdout
            let text = decode(key, chunk.data)
            if !text.isEmpty { frames.append(Frame(nanos: lastNanos, code: key == .stdin ? "i" : "o", data: text)) }
        }
    }

    /// Decodes the complete UTF-8 characters of what is pending plus `data`; keeps an incomplete tail.
    mutating func decode(_ stream: StreamChunk.Stream, _ data: [UInt8]) -> String {
        var bytes = pending[stream, default: []] + data
        let keep = AsciicastBuilder.incompleteTail(bytes)
        pending[stream] = Array(bytes.suffix(keep))
        bytes.removeLast(keep)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// How many trailing bytes start a UTF-8 sequence that is not complete yet (0 to 3).
    static func incompleteTail(_ b: [UInt8]) -> Int {
        guard !b.isEmpty else { return 0 }
        for back in 1...min(3, b.count) {
            let byte = b[b.count - back]
            if byte & 0xC0 == 0x80 { continue }  // continuation byte: look further back
            let need = byte & 0xE0 == 0xC0 ? 2 : byte & 0xF0 == 0xE0 ? 3 : byte & 0xF8 == 0xF0 ? 4 : 1
            return need > back ? back : 0
        }
        return 0
    }

    public var isEmpty: Bool { frames.isEmpty && pending.values.allSatisfy(\.isEmpty) }

    /// The .cast file: a header line, then one event line per frame.
    public func render(header h: SessionHeader, exchange: Exchange?) -> String {
        var all = frames
        for (stream, rest) in pending.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where !rest.isEmpty {
            all.append(Frame(nanos: lastNanos, code: stream == .stdin ? "i" : "o", data: String(decoding: rest, as: UTF8.self)))
        }
        let (cols, rows) = size.map { ($0.0 == 0 ? 80 : $0.0, $0.1 == 0 ? 24 : $0.1) } ?? (80, 24)
        var w = JSONWriter()
        w.object { o in
            o.number("version", 2)
            o.number("width", cols)
            o.number("height", rows)
            o.number("timestamp", firstMicros / 1_000_000)
            if let k = exchange?.kubernetes {
                if !k.command.isEmpty { o.string("command", k.command.joined(separator: " ")) }
                var where_ = k.namespace.isEmpty ? k.name : "\(k.namespace)/\(k.name)"
                if !k.container.isEmpty { where_ += " -c \(k.container)" }
                o.string("title", "\(h.subject): kubectl \(k.subresource) \(where_) (exchange \(exchange?.id ?? 0), session \(h.sessionID))")
            }
        }
        var out = w.text + "\n"
        let zero = firstNanos ?? 0
        for f in all {
            var line = JSONWriter()
            line.array { a in
                a.raw(nil, seconds(f.nanos - zero))
                a.string(nil, f.code)
                a.string(nil, f.data)
            }
            out += line.text + "\n"
        }
        return out
    }

    /// Seconds with microsecond precision.
    func seconds(_ nanos: UInt64) -> String {
        let micros = nanos / 1000
        let frac = String(micros % 1_000_000)
        return "\(micros / 1_000_000)." + String(repeating: "0", count: 6 - frac.count) + frac
    }
}
