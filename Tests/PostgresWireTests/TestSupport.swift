import NIOCore
import PostgresWire

/// Builds wire bytes by hand, field by field, independently of the library's encoders, so a
/// bug shared by encoder and decoder cannot hide.
enum W {
    case byte(UInt8)
    case char(Character)
    case i16(Int16)
    case i32(Int32)
    case cstr(String)
    case raw([UInt8])

    func write(to buffer: inout ByteBuffer) {
        switch self {
        case .byte(let b): buffer.writeInteger(b)
        case .char(let c): buffer.writeInteger(c.asciiValue!)
        case .i16(let v): buffer.writeInteger(v)
        case .i32(let v): buffer.writeInteger(v)
        case .cstr(let s): buffer.writeString(s); buffer.writeInteger(UInt8(0))
        case .raw(let bytes): buffer.writeBytes(bytes)
        }
    }
}

/// A typed message: type byte, Int32 length including itself, fields.
func typed(_ type: Character, _ fields: W...) -> ByteBuffer {
    var body = ByteBuffer()
    for field in fields { field.write(to: &body) }
    var out = ByteBuffer()
    out.writeInteger(type.asciiValue!)
    out.writeInteger(Int32(4 + body.readableBytes))
    out.writeBuffer(&body)
    return out
}

/// An untyped startup-phase packet: Int32 length including itself, fields.
func untyped(_ fields: W...) -> ByteBuffer {
    var body = ByteBuffer()
    for field in fields { field.write(to: &body) }
    var out = ByteBuffer()
    out.writeInteger(Int32(4 + body.readableBytes))
    out.writeBuffer(&body)
    return out
}

func concat(_ buffers: ByteBuffer...) -> ByteBuffer {
    var out = ByteBuffer()
    for var buffer in buffers { out.writeBuffer(&buffer) }
    return out
}

func concat(_ buffers: [ByteBuffer]) -> ByteBuffer {
    var out = ByteBuffer()
    for var buffer in buffers { out.writeBuffer(&buffer) }
    return out
}

func buf(_ string: String) -> ByteBuffer { ByteBuffer(string: string) }

extension PostgresFrontendMessage {
    func encoded() throws -> ByteBuffer {
        var out = ByteBuffer()
        try encode(into: &out)
        return out
    }
}

extension PostgresBackendMessage {
    func encoded() throws -> ByteBuffer {
        var out = ByteBuffer()
        try encode(into: &out)
        return out
    }
}

/// Feeds `buffer` to a fresh decoder and returns every message it yields, ending with
/// `decodeLast` as at EOF.
func decodeAll<D: NIOSingleStepByteToMessageDecoder>(_ decoder: D, _ buffer: ByteBuffer) throws -> [D.InboundOut] {
    var decoder = decoder
    var buffer = buffer
    var out: [D.InboundOut] = []
    while let message = try decoder.decode(buffer: &buffer) { out.append(message) }
    while let message = try decoder.decodeLast(buffer: &buffer, seenEOF: true) { out.append(message) }
    return out
}

/// Decodes `buffer` with `decoder`, expecting a `PostgresWireError`, and returns it.
func wireError<D: NIOSingleStepByteToMessageDecoder>(_ decoder: D, _ buffer: ByteBuffer) -> PostgresWireError? {
    do {
        _ = try decodeAll(decoder, buffer)
        return nil
    } catch let error as PostgresWireError {
        return error
    } catch {
        return nil
    }
}

/// ByteToMessageDecoderVerifier feeds all inputs to one decoder, shuffled and repeated. A
/// client session changes the decoder's phase, so this wrapper puts it back to the startup
/// phase after Terminate: each input is then one whole connection.
struct SessionFrontendDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = PostgresFrontendMessage
    // Encryption requests are followed by more bytes in the same buffer when the verifier
    // concatenates inputs; that check has its own test.
    var inner = PostgresFrontendDecoder(rejectDataAfterEncryptionRequest: false)

    mutating func decode(buffer: inout ByteBuffer) throws -> PostgresFrontendMessage? {
        let message = try inner.decode(buffer: &buffer)
        if message == .terminate { inner.phase = .startup }
        return message
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> PostgresFrontendMessage? {
        let message = try inner.decodeLast(buffer: &buffer, seenEOF: seenEOF)
        if message == .terminate { inner.phase = .startup }
        return message
    }
}

/// Same idea upstream: each input is a connection that opens with an SSLRequest answer and
/// ends with ReadyForQuery or a FATAL error.
struct SessionBackendDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = PostgresBackendMessage
    var inner = PostgresBackendDecoder(expectingSSLResponse: true)

    private mutating func reset(after message: PostgresBackendMessage?) {
        switch message {
        case .readyForQuery: inner.expectingSSLResponse = true
        case .errorResponse(let d) where d.severity == "FATAL": inner.expectingSSLResponse = true
        default: break
        }
    }

    mutating func decode(buffer: inout ByteBuffer) throws -> PostgresBackendMessage? {
        let message = try inner.decode(buffer: &buffer)
        reset(after: message)
        return message
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> PostgresBackendMessage? {
        let message = try inner.decodeLast(buffer: &buffer, seenEOF: seenEOF)
        reset(after: message)
        return message
    }
}
