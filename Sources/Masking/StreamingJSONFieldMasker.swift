/// Masks the values of the JSON members that `JSONFieldRule`s name, in a body of any size, as it
/// streams: bytes in, bytes out, holding nothing but the key being read and the container stack.
/// Every byte outside a masked value passes as it came (key order, spacing, escapes); a masked
/// value, whatever its type (string, number, object, array), becomes the string `"********"`.
///
/// The input is read strictly (RFC 8259): structure, string escapes, control characters, numbers
/// and literals. What is not JSON is refused at the byte where it stops being JSON, and the caller
/// must cut the body there (never pass the rest unmasked). Several top-level values separated by
/// whitespace are read one after another (JSON lines, a Kubernetes watch stream).
public struct StreamingJSONFieldMasker: Sendable {
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public var detail: String
        public var description: String { detail }
    }

    /// What a masked value becomes.
    public static let mask: [UInt8] = Array(#""********""#.utf8)
    /// What the mask summary counts these under.
    public static let detectorName: DetectorName = "json_field"
    /// The longest key, number or literal read; longer ones are refused (nothing legitimate is).
    public static let maxTokenBytes = 64 * 1024
    public static let maxDepth = 512

    enum State: Sendable {
        /// A value must come (after `:`, `,` in an array, or at the top).
        case value
        /// Right after `[`: a value or `]`.
        case valueOrClose
        /// Right after `{`: a key or `}`.
        case keyOrClose
        /// After `,` in an object: a key.
        case key
        /// After a key: `:`.
        case colon
        /// After a value: `,` or the container's close (at the top: whitespace or another value).
        case afterValue
        case string(isKey: Bool)
        case scalar
    }

    enum Container: Sendable { case object, array }

    let rules: [JSONFieldRule]
    var state = State.value
    var stack: [Container] = []
    /// For each open container, the key it is the value of (nil in an array or at the top).
    var keys: [String?] = []
    /// The key of the member whose value comes next.
    var pendingKey: String?
    /// Inside a string: 0 plain, 1 after a backslash, 2–5 hex digits of `\u` still to come.
    var escape = 0
    var token: [UInt8] = []
    /// Masking a value: the depth of the stack when it started (its bytes are not passed on).
    var skipFrom: Int?
    public private(set) var masked = 0
    var offset = 0

    public init(rules: [JSONFieldRule]) { self.rules = rules }

    /// The bytes that may be sent now (all of `bytes` but what a mask replaces), or a refusal.
    public mutating func feed(_ bytes: [UInt8]) -> Result<[UInt8], Refusal> {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        do {
            for b in bytes {
                try step(b, &out)
                offset += 1
            }
        } catch {
            return .failure(error)
        }
        return .success(out)
    }

    /// The end of the body: nothing more to send, or a refusal when it ended inside a value.
    public mutating func finish() -> Result<[UInt8], Refusal> {
        var out: [UInt8] = []
        if case .scalar = state, stack.isEmpty {
            do { try endScalar(&out) } catch { return .failure(error) }
        }
        switch state {
        case .afterValue where stack.isEmpty: return .success(out)
        case .value where stack.isEmpty: return .success(out)  // empty, or only whitespace
        default: return .failure(Refusal(detail: "the JSON body ends inside a value (at byte \(offset))"))
        }
    }

    func fail(_ what: String) -> Refusal { Refusal(detail: "the body is not JSON the gate can follow at byte \(offset): \(what)") }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }

    mutating func emit(_ b: UInt8, _ out: inout [UInt8]) { if skipFrom == nil { out.append(b) } }

    mutating func step(_ b: UInt8, _ out: inout [UInt8]) throws(Refusal) {
        switch state {
        case .string(let isKey):
            try stringByte(b, isKey: isKey, &out)
        case .scalar:
            if b == UInt8(ascii: "-") || b == UInt8(ascii: "+") || b == UInt8(ascii: ".") || (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "E") {
                guard token.count < Self.maxTokenBytes else { throw fail("a number or literal longer than \(Self.maxTokenBytes) bytes") }
                token.append(b)
                emit(b, &out)
                return
            }
            try endScalar(&out)
            try step(b, &out)
        case .value, .valueOrClose:
            if Self.isSpace(b) { emit(b, &out); return }
            if case .valueOrClose = state, b == UInt8(ascii: "]") { try close(.array, b, &out); return }
            try startValue(b, &out)
        case .keyOrClose, .key:
            if Self.isSpace(b) { emit(b, &out); return }
            if case .keyOrClose = state, b == UInt8(ascii: "}") { try close(.object, b, &out); return }
            guard b == UInt8(ascii: "\"") else { throw fail("expected a key") }
            token = []
            state = .string(isKey: true)
            emit(b, &out)
        case .colon:
            if Self.isSpace(b) { emit(b, &out); return }
            guard b == UInt8(ascii: ":") else { throw fail("expected ':'") }
            state = .value
            emit(b, &out)
        case .afterValue:
            if Self.isSpace(b) { emit(b, &out); return }
            guard let top = stack.last else {
                // Another top-level value (JSON lines).
                try startValue(b, &out)
                return
            }
            switch (top, b) {
            case (_, UInt8(ascii: ",")):
                state = top == .object ? .key : .value
                emit(b, &out)
            case (.object, UInt8(ascii: "}")): try close(.object, b, &out)
            case (.array, UInt8(ascii: "]")): try close(.array, b, &out)
            default: throw fail("expected ',' or the end of the \(top == .object ? "object" : "array")")
            }
        }
    }

    /// The first byte of a value: a member's value named by a rule starts being masked here.
    mutating func startValue(_ b: UInt8, _ out: inout [UInt8]) throws(Refusal) {
        if skipFrom == nil, let key = pendingKey {
            let path = keys.compactMap { $0 } + [key]
            if rules.contains(where: { $0.matches(path) }) { skipFrom = stack.count }
        }
        let key = pendingKey
        pendingKey = nil
        switch b {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            guard stack.count < Self.maxDepth else { throw fail("nested deeper than \(Self.maxDepth)") }
            emit(b, &out)
            stack.append(b == UInt8(ascii: "{") ? .object : .array)
            keys.append(key)
            state = b == UInt8(ascii: "{") ? .keyOrClose : .valueOrClose
        case UInt8(ascii: "\""):
            emit(b, &out)
            escape = 0
            state = .string(isKey: false)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            token = [b]
            emit(b, &out)
            state = .scalar
        default:
            throw fail("expected a value")
        }
    }

    mutating func close(_ container: Container, _ b: UInt8, _ out: inout [UInt8]) throws(Refusal) {
        emit(b, &out)
        stack.removeLast()
        keys.removeLast()
        valueEnded(&out)
    }

    /// A value ended: a masked one is replaced by the mask once it is whole.
    mutating func valueEnded(_ out: inout [UInt8]) {
        state = .afterValue
        if let from = skipFrom, stack.count == from {
            skipFrom = nil
            out.append(contentsOf: Self.mask)
            masked += 1
        }
    }

    mutating func endScalar(_ out: inout [UInt8]) throws(Refusal) {
        guard Self.isScalar(token) else { throw fail("`\(String(decoding: token.prefix(40), as: UTF8.self))` is not a number, true, false or null") }
        valueEnded(&out)
    }

    mutating func stringByte(_ b: UInt8, isKey: Bool, _ out: inout [UInt8]) throws(Refusal) {
        emit(b, &out)
        if isKey {
            guard token.count < Self.maxTokenBytes else { throw fail("a key longer than \(Self.maxTokenBytes) bytes") }
            token.append(b)
        }
        switch escape {
        case 0:
            if b == UInt8(ascii: "\\") { escape = 1; return }
            guard b >= 0x20 else { throw fail("a control character in a string") }
            guard b == UInt8(ascii: "\"") else { return }
            if isKey {
                token.removeLast()
                // The key as a client reads it (escapes decoded), by the whole-document reader.
                let decoded: JSONSpan
                do { decoded = try JSONSpanReader.read([UInt8(ascii: "\"")] + token + [UInt8(ascii: "\"")]) } catch {
                    throw fail("a key that is not a JSON string (\(error.message))")
                }
                guard case .string(let key, _) = decoded else { throw fail("a key that is not a string") }
                pendingKey = key
                state = .colon
            } else {
                valueEnded(&out)
            }
        case 1:
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                 UInt8(ascii: "r"), UInt8(ascii: "t"):
                escape = 0
            case UInt8(ascii: "u"):
                escape = 2
            default:
                throw fail("a bad escape in a string")
            }
        default:
            guard (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66) else { throw fail("a bad \\u escape") }
            escape = escape == 5 ? 0 : escape + 1
        }
    }

    /// `true`, `false`, `null`, or a number by RFC 8259's grammar.
    static func isScalar(_ t: [UInt8]) -> Bool {
        if t == Array("true".utf8) || t == Array("false".utf8) || t == Array("null".utf8) { return true }
        var i = 0
        func digits() -> Int {
            let start = i
            while i < t.count, t[i] >= 0x30, t[i] <= 0x39 { i += 1 }
            return i - start
        }
        if i < t.count, t[i] == UInt8(ascii: "-") { i += 1 }
        guard i < t.count else { return false }
        if t[i] == UInt8(ascii: "0") { i += 1 } else if digits() == 0 { return false }
        if i < t.count, t[i] == UInt8(ascii: ".") {
            i += 1
            if digits() == 0 { return false }
        }
        if i < t.count, t[i] == UInt8(ascii: "e") || t[i] == UInt8(ascii: "E") {
            i += 1
            if i < t.count, t[i] == UInt8(ascii: "+") || t[i] == UInt8(ascii: "-") { i += 1 }
            if digits() == 0 { return false }
        }
        return i == t.count
    }
}
