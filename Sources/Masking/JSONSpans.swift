/// A strict JSON (RFC 8259) reader that keeps where each value lies in the input, so that a
/// masker can replace a few values and leave every other byte as it was (key order, number
/// spelling, escapes, whitespace). Pure; memory is a small multiple of the document's size, and
/// nesting is limited so that a hostile document cannot exhaust the stack.
public indirect enum JSONSpan: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        /// The key, unescaped: `"d\u0061ta"` is `data`.
        public var key: String
        public var value: JSONSpan
    }
    case object([Member], Range<Int>)
    case array([JSONSpan], Range<Int>)
    case string(String, Range<Int>)
    /// A number, `true`, `false` or `null`, as its bytes.
    case scalar(Range<Int>)

    public var range: Range<Int> {
        switch self {
        case .object(_, let r), .array(_, let r), .string(_, let r), .scalar(let r): r
        }
    }

    /// The string value, if this is a string.
    public var stringValue: String? { if case .string(let s, _) = self { s } else { nil } }
    /// The members' values named `key` (JSON allows repeats; a reader must see all of them).
    public func members(_ key: String) -> [JSONSpan] {
        guard case .object(let m, _) = self else { return [] }
        return m.filter { $0.key == key }.map(\.value)
    }
}

/// Why a document was not read: what and at which byte offset.
public struct JSONSpanError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public var description: String { "malformed JSON at byte \(offset): \(message)" }
}

public struct JSONSpanReader {
    public static let maxDepth = 256
    let b: [UInt8]
    var i = 0

    /// The one JSON value `bytes` hold (whitespace around it allowed), or an error.
    public static func read(_ bytes: [UInt8]) throws(JSONSpanError) -> JSONSpan {
        var r = JSONSpanReader(b: bytes)
        r.skipSpace()
        let v = try r.value(depth: 0)
        r.skipSpace()
        if r.i != bytes.count { throw r.fail("text after the value") }
        return v
    }

    func fail(_ m: String) -> JSONSpanError { JSONSpanError(message: m, offset: i) }

    mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    mutating func value(depth: Int) throws(JSONSpanError) -> JSONSpan {
        guard depth < Self.maxDepth else { throw fail("nested deeper than \(Self.maxDepth)") }
        guard i < b.count else { throw fail("unexpected end") }
        let start = i
        switch b[i] {
        case UInt8(ascii: "{"):
            i += 1
            var members: [JSONSpan.Member] = []
            skipSpace()
            if i < b.count && b[i] == UInt8(ascii: "}") { i += 1; return .object(members, start..<i) }
            while true {
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                let key = try string()
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                skipSpace()
                members.append(.init(key: key, value: try value(depth: depth + 1)))
                skipSpace()
                guard i < b.count else { throw fail("unexpected end in an object") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(members, start..<i) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [JSONSpan] = []
            skipSpace()
            if i < b.count && b[i] == UInt8(ascii: "]") { i += 1; return .array(items, start..<i) }
            while true {
                skipSpace()
                items.append(try value(depth: depth + 1))
                skipSpace()
                guard i < b.count else { throw fail("unexpected end in an array") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(items, start..<i) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            let s = try string()
            return .string(s, start..<i)
        case UInt8(ascii: "t"): try literal("true"); return .scalar(start..<i)
        case UInt8(ascii: "f"): try literal("false"); return .scalar(start..<i)
        case UInt8(ascii: "n"): try literal("null"); return .scalar(start..<i)
        default:
            try number()
            return .scalar(start..<i)
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONSpanError) {
        let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard i + w.count <= b.count, b[i..<(i + w.count)].elementsEqual(w) else { throw fail("unknown literal") }
        i += w.count
    }

    mutating func number() throws(JSONSpanError) {
        func digits() -> Int { let s = i; while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }; return i - s }
        if i < b.count && b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < b.count, b[i] >= 0x30 && b[i] <= 0x39 else { throw fail("expected a value") }
        if b[i] == UInt8(ascii: "0") { i += 1 } else { _ = digits() }
        if i < b.count && b[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { throw fail("a fraction without digits") }
        }
        if i < b.count && (b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E")) {
            i += 1
            if i < b.count && (b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-")) { i += 1 }
            guard digits() > 0 else { throw fail("an exponent without digits") }
        }
    }

    /// A string at `i` (on its quote), unescaped; UTF-8 checked, control characters and lone
    /// surrogates refused.
    mutating func string() throws(JSONSpanError) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < b.count else { throw fail("an unterminated string") }
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("a control character in a string") }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            i += 1
            guard i < b.count else { throw fail("an unterminated escape") }
            switch b[i] {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard i + 2 < b.count, b[i + 1] == UInt8(ascii: "\\"), b[i + 2] == UInt8(ascii: "u") else { throw fail("a lone surrogate") }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("a lone surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw fail("a lone surrogate")
                }
                // Every value here is a valid scalar: surrogates were paired or refused above.
                out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
            default: throw fail("an unknown escape")
            }
            i += 1
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw fail("a string that is not UTF-8") }
        return s
    }

    /// Four hex digits after `\u`; leaves `i` on the last one.
    mutating func hex4() throws(JSONSpanError) -> UInt32 {
        guard i + 4 < b.count else { throw fail("a short \\u escape") }
        var v: UInt32 = 0
        for k in 1...4 {
            let c = b[i + k]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            default: throw fail("a bad \\u escape")
            }
            v = v << 4 | d
        }
        i += 4
        return v
    }
}
