// Tagged, length-prefixed field encoding (the same wire rules as Protocol
// Buffers, so a reader can skip any field it does not know by its wire type).

/// How a field's value is laid out, so an unknown field can be skipped.
public enum WireType: UInt8, Sendable {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case fixed32 = 5
}

/// Appends fields to a byte buffer.
public struct WireWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    public mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    @inline(__always)
    mutating func key(_ tag: UInt32, _ type: WireType) {
        varint(UInt64(tag) << 3 | UInt64(type.rawValue))
    }

    public mutating func uint(_ tag: UInt32, _ value: UInt64) {
        guard value != 0 else { return }
        key(tag, .varint)
        varint(value)
    }

    public mutating func uint(_ tag: UInt32, _ value: UInt64?) {
        guard let value else { return }
        key(tag, .varint)
        varint(value)
    }

    /// Signed values use zigzag so small negatives stay short.
    public mutating func int(_ tag: UInt32, _ value: Int64) {
        guard value != 0 else { return }
        key(tag, .varint)
        varint(zigzag(value))
    }

    public mutating func bool(_ tag: UInt32, _ value: Bool) {
        if value { uint(tag, 1) }
    }

    public mutating func bytes(_ tag: UInt32, _ value: [UInt8]) {
        key(tag, .lengthDelimited)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    public mutating func bytes(_ tag: UInt32, _ value: [UInt8]?) {
        if let value { bytes(tag, value) }
    }

    public mutating func string(_ tag: UInt32, _ value: String) {
        guard !value.isEmpty else { return }
        lengthDelimitedUTF8(tag, value)
    }

    public mutating func string(_ tag: UInt32, _ value: String?) {
        guard let value else { return }
        lengthDelimitedUTF8(tag, value)
    }

    public mutating func strings(_ tag: UInt32, _ values: [String]) {
        for v in values { lengthDelimitedUTF8(tag, v) }
    }

    /// The string's UTF-8 as a length-delimited field. Read in place (no copy of the string, which
    /// would be a retain and a release per field on the recording path) unless it is not native.
    mutating func lengthDelimitedUTF8(_ tag: UInt32, _ value: String) {
        key(tag, .lengthDelimited)
        if value.utf8.withContiguousStorageIfAvailable({ appendLengthDelimited($0) }) == nil {
            var s = value
            s.withUTF8 { appendLengthDelimited($0) }
        }
    }

    mutating func appendLengthDelimited(_ value: UnsafeBufferPointer<UInt8>) {
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// A nested message: encoded in place after a one-byte length, which is right for most
    /// nested messages (under 128 bytes); a longer one gets its longer varint put in its place.
    /// (Encoding into a separate buffer and inserting the length cost an allocation and a move
    /// per nested message, on the gate's recording path.)
    public mutating func message(_ tag: UInt32, _ encode: (inout WireWriter) -> Void) {
        key(tag, .lengthDelimited)
        let lengthAt = bytes.count
        bytes.append(0)
        encode(&self)
        let length = bytes.count - lengthAt - 1
        if length < 0x80 {
            bytes[lengthAt] = UInt8(length)
        } else {
            var prefix = WireWriter(capacity: 10)
            prefix.varint(UInt64(length))
            bytes.replaceSubrange(lengthAt..<lengthAt + 1, with: prefix.bytes)
        }
    }

    public mutating func message<M: WireMessage>(_ tag: UInt32, _ value: M) {
        message(tag) { value.encode(to: &$0) }
    }

    public mutating func message<M: WireMessage>(_ tag: UInt32, _ value: M?) {
        if let value { message(tag, value) }
    }

    public mutating func messages<M: WireMessage>(_ tag: UInt32, _ values: [M]) {
        for v in values { message(tag, v) }
    }

    public mutating func append(raw: [UInt8]) {
        bytes.append(contentsOf: raw)
    }

    public mutating func append(raw: UnsafeRawBufferPointer) {
        // As typed bytes: Array copies a contiguous buffer at once, a raw one byte by byte.
        bytes.append(contentsOf: raw.assumingMemoryBound(to: UInt8.self))
    }

    /// Empties the writer, keeping its capacity for the next message.
    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
    }

    /// Drops what was written from byte `count` on.
    public mutating func truncate(to count: Int) {
        bytes.removeSubrange(count...)
    }
}

@inline(__always) func zigzag(_ v: Int64) -> UInt64 {
    UInt64(bitPattern: (v << 1) ^ (v >> 63))
}

@inline(__always) func unzigzag(_ v: UInt64) -> Int64 {
    Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)
}

/// A malformed field inside an event or footer; `offset` is relative to the
/// start of the decoded message.
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public var description: String { "\(message) at byte \(offset) of the message" }
}

/// Reads fields from a byte buffer. Every read is bounds-checked.
public struct WireReader {
    let base: UnsafeRawBufferPointer
    public internal(set) var position: Int
    let end: Int

    public init(_ buffer: UnsafeRawBufferPointer) {
        base = buffer
        position = 0
        end = buffer.count
    }

    /// A reader over `range` of `buffer` (positions stay relative to the whole buffer).
    public init(_ buffer: UnsafeRawBufferPointer, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= buffer.count, "range outside the buffer")
        self.init(base: buffer, from: range.lowerBound, to: range.upperBound)
    }

    init(base: UnsafeRawBufferPointer, from: Int, to: Int) {
        self.base = base
        position = from
        end = to
    }

    public var isAtEnd: Bool { position >= end }

    func fail(_ message: String) -> WireError {
        WireError(message: message, offset: position)
    }

    @inline(__always)
    public mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw fail("varint runs past the end") }
            let b = base[position]
            position += 1
            if shift == 63 && b > 1 { throw fail("varint overflows 64 bits") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw fail("varint longer than 10 bytes") }
        }
    }

    /// The next field's tag and wire type, or nil at the end of the message.
    public mutating func nextField() throws -> (tag: UInt32, type: WireType)? {
        guard position < end else { return nil }
        let key = try varint()
        guard let type = WireType(rawValue: UInt8(key & 7)) else {
            throw fail("unknown wire type \(key & 7)")
        }
        let tag = key >> 3
        guard tag > 0, tag <= UInt64(UInt32.max) else { throw fail("invalid field tag \(tag)") }
        return (UInt32(tag), type)
    }

    public mutating func skip(_ type: WireType) throws {
        switch type {
        case .varint: _ = try varint()
        case .fixed64: try advance(8)
        case .fixed32: try advance(4)
        case .lengthDelimited:
            let n = try length()
            try advance(n)
        }
    }

    /// Steps over `n` bytes (a packed value's contents).
    public mutating func skip(bytes n: UInt64) throws {
        guard n <= UInt64(end - position) else { throw fail("value runs past the end") }
        position += Int(n)
    }

    mutating func advance(_ n: Int) throws {
        guard n <= end - position else { throw fail("field runs past the end") }
        position += n
    }

    mutating func length() throws -> Int {
        let n = try varint()
        guard n <= UInt64(end - position) else { throw fail("length \(n) runs past the end") }
        return Int(n)
    }

    @inline(__always)
    mutating func expect(_ actual: WireType, _ expected: WireType) throws {
        if actual != expected {
            throw fail("field has wire type \(actual.rawValue), expected \(expected.rawValue)")
        }
    }

    public mutating func uint(_ type: WireType) throws -> UInt64 {
        try expect(type, .varint)
        return try varint()
    }

    public mutating func int(_ type: WireType) throws -> Int64 {
        try expect(type, .varint)
        return unzigzag(try varint())
    }

    public mutating func bool(_ type: WireType) throws -> Bool {
        try uint(type) != 0
    }

    public mutating func bytes(_ type: WireType) throws -> [UInt8] {
        try expect(type, .lengthDelimited)
        let n = try length()
        let out = [UInt8](UnsafeRawBufferPointer(rebasing: base[position..<position + n]))
        position += n
        return out
    }

    public mutating func string(_ type: WireType) throws -> String {
        try expect(type, .lengthDelimited)
        let n = try length()
        let out = String(decoding: UnsafeRawBufferPointer(rebasing: base[position..<position + n]), as: UTF8.self)
        position += n
        return out
    }

    /// A nested message, read by a sub-reader confined to its bytes.
    public mutating func message<M: WireMessage>(_ type: WireType, as: M.Type = M.self) throws -> M {
        try expect(type, .lengthDelimited)
        let n = try length()
        var sub = WireReader(base: base, from: position, to: position + n)
        position += n
        return try M(wire: &sub)
    }

    /// Where the value of a length-delimited field lies in the buffer, without copying it.
    public mutating func range(_ type: WireType) throws -> Range<Int> {
        try expect(type, .lengthDelimited)
        let n = try length()
        defer { position += n }
        return position..<(position + n)
    }

    /// Raw bytes of a nested length-delimited field, as a sub-reader.
    public mutating func subReader(_ type: WireType) throws -> WireReader {
        try expect(type, .lengthDelimited)
        let n = try length()
        let sub = WireReader(base: base, from: position, to: position + n)
        position += n
        return sub
    }
}

/// A value with a tagged-field encoding. `init(wire:)` must skip unknown tags.
public protocol WireMessage: Sendable {
    func encode(to w: inout WireWriter)
    init(wire r: inout WireReader) throws
}

extension WireMessage {
    public func encoded() -> [UInt8] {
        var w = WireWriter()
        encode(to: &w)
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { buf in
            var r = WireReader(buf)
            return try Self(wire: &r)
        }
    }
}
