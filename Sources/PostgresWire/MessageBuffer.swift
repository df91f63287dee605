#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Reads the fields of one message body, turning every shortfall into a `PostgresWireError`
/// that names the message and the offset of the offending field.
struct MessageBodyReader {
    private(set) var buffer: ByteBuffer
    private let bodyStart: Int
    /// Bytes of the message before its body (5 for typed messages, 8 for startup packets),
    /// so offsets count from the message's first byte.
    private let headerSize: Int
    /// The message's name is only needed for an error; building it for every message was a
    /// measurable share of the gate's time, so typed messages carry their type byte instead.
    private let fixedName: String?
    private let type: UInt8
    private let nameOfType: (UInt8) -> String

    var messageName: String { fixedName ?? nameOfType(type) }

    init(body: ByteBuffer, headerSize: Int, messageName: String) {
        self.buffer = body
        self.bodyStart = body.readerIndex
        self.headerSize = headerSize
        self.fixedName = messageName
        self.type = 0
        self.nameOfType = { _ in messageName }
    }

    init(body: ByteBuffer, headerSize: Int, type: UInt8, names: @escaping (UInt8) -> String) {
        self.buffer = body
        self.bodyStart = body.readerIndex
        self.headerSize = headerSize
        self.fixedName = nil
        self.type = type
        self.nameOfType = names
    }

    var offset: Int { headerSize + buffer.readerIndex - bodyStart }
    var remaining: Int { buffer.readableBytes }
    var isAtEnd: Bool { buffer.readableBytes == 0 }

    func malformed(_ reason: String, at offset: Int? = nil) -> PostgresWireError {
        PostgresWireError(.malformedMessage, messageName: messageName, offset: offset ?? self.offset, reason: reason)
    }

    mutating func readInteger<T: FixedWidthInteger>(as: T.Type, _ field: @autoclosure () -> String) throws -> T {
        guard let value = buffer.readInteger(as: T.self) else {
            throw malformed("\(field()) needs \(MemoryLayout<T>.size) bytes but only \(remaining) remain")
        }
        return value
    }

    /// Reads a null-terminated UTF-8 string. Invalid UTF-8 is an error rather than repaired:
    /// the gate must inspect exactly the text it forwards.
    mutating func readCString(_ field: @autoclosure () -> String) throws -> String {
        // memchr and the standard library's C-string reader: every statement, portal, column
        // name and command tag passes here.
        let found: (length: Int, string: String?)? = buffer.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress, let nul = memchr(base, 0, raw.count) else { return nil }
            return (base.distance(to: UnsafeRawPointer(nul)), String(validatingCString: base.assumingMemoryBound(to: CChar.self)))
        }
        guard let found else { throw malformed("\(field()) has no null terminator") }
        guard let string = found.string else { throw malformed("\(field()) is not valid UTF-8") }
        buffer.moveReaderIndex(forwardBy: found.length + 1)
        return string
    }

    /// A zero-copy slice of `length` bytes.
    mutating func readSlice(length: Int, _ field: @autoclosure () -> String) throws -> ByteBuffer {
        guard length >= 0, let slice = buffer.readSlice(length: length) else {
            throw malformed("\(field()) of \(length) bytes runs past the end of the message (\(remaining) bytes remain)")
        }
        return slice
    }

    /// A count followed by `count` fixed-size items; checked before any array is reserved.
    mutating func readCount(itemSize: Int, _ field: @autoclosure () -> String) throws -> Int {
        let countOffset = offset
        let count = Int(try readInteger(as: UInt16.self, field()))
        guard count * itemSize <= remaining else {
            throw malformed("\(field()) \(count) runs past the end of the message", at: countOffset)
        }
        return count
    }

    mutating func readRest() -> ByteBuffer {
        buffer.readSlice(length: buffer.readableBytes)!
    }

    func expectEnd() throws {
        guard isAtEnd else { throw malformed("\(remaining) unexpected trailing bytes") }
    }
}

extension ByteBuffer {
    /// Writes one message: optional type byte, Int32 length including itself, then the body.
    /// On failure the buffer is left as it was, so a half-written message never goes out.
    mutating func writePostgresMessage(
        type: UInt8?, name: @autoclosure () -> String, _ body: (inout ByteBuffer) throws -> Void
    ) throws {
        let start = writerIndex
        if let type { writeInteger(type) }
        let lengthIndex = writerIndex
        writeInteger(Int32(0))
        do {
            try body(&self)
        } catch {
            moveWriterIndex(to: start)
            throw error
        }
        let length = writerIndex - lengthIndex
        guard length <= Int32.max else {
            moveWriterIndex(to: start)
            throw PostgresWireError(.unencodableMessage, messageName: name(), offset: nil,
                                    reason: "message of \(length) bytes exceeds the protocol's Int32 length")
        }
        setInteger(Int32(length), at: lengthIndex)
    }

    /// Writes a null-terminated string. A NUL inside it would end the field early and smuggle the
    /// rest in as further fields, so it is refused.
    mutating func writeCString(_ string: String, message: @autoclosure () -> String, field: @autoclosure () -> String) throws {
        guard !string.utf8.contains(0) else {
            throw PostgresWireError(.unencodableMessage, messageName: message(), offset: nil,
                                    reason: "\(field()) contains a NUL byte")
        }
        writeString(string)
        writeInteger(UInt8(0))
    }

    mutating func writeCount(_ count: Int, message: @autoclosure () -> String, field: @autoclosure () -> String) throws {
        guard count <= Int(UInt16.max) else {
            throw PostgresWireError(.unencodableMessage, messageName: message(), offset: nil,
                                    reason: "\(field()) \(count) exceeds 65535")
        }
        writeInteger(UInt16(count))
    }

    /// Int32 length then bytes, or -1 for NULL.
    mutating func writeNullableValue(_ value: ByteBuffer?) {
        if var value {
            writeInteger(Int32(value.readableBytes))
            writeBuffer(&value)
        } else {
            writeInteger(Int32(-1))
        }
    }
}

/// Human-readable name of a message type byte, for errors: printable bytes are shown as
/// characters, others in hex.
func typeByteLabel(_ type: UInt8) -> String {
    if type >= 0x21 && type < 0x7F {
        return "'\(Character(Unicode.Scalar(type)))'"
    }
    let hex = String(type, radix: 16, uppercase: true)
    return "0x" + (hex.count == 1 ? "0" + hex : hex)
}
