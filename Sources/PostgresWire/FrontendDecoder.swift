import NIOCore

/// Decodes what a PostgreSQL client sends.
///
/// A connection starts in the `.startup` phase, where messages are untyped (Int32 length, Int32
/// code). SSLRequest and GSSENCRequest leave the decoder in that phase, because the real
/// StartupMessage follows the proxy's answer ('N', or a TLS handshake with the decrypted bytes
/// coming through the same decoder). The StartupMessage switches it to `.typed`.
///
/// Works with `ByteToMessageHandler` and `NIOSingleStepByteToMessageProcessor`; it never assumes
/// anything about how the bytes were split.
public struct PostgresFrontendDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = PostgresFrontendMessage

    public enum Phase: Sendable, Hashable {
        /// Untyped messages: SSLRequest, GSSENCRequest, CancelRequest, StartupMessage.
        case startup
        /// Typed messages: one type byte, then Int32 length including itself.
        case typed
    }

    static let sslRequestCode: Int32 = 80_877_103
    static let gssEncRequestCode: Int32 = 80_877_104
    static let cancelRequestCode: Int32 = 80_877_102

    public var phase: Phase
    /// Largest typed message accepted, length field included. PostgreSQL's own limit is 1 GiB;
    /// the gate buffers whole messages, so it defaults lower.
    public var maxMessageSize: Int
    /// Largest startup packet accepted; PostgreSQL's MAX_STARTUP_PACKET_LENGTH is 10000.
    public var maxStartupMessageSize: Int
    /// Refuse bytes that arrive together with an SSLRequest/GSSENCRequest, before the answer:
    /// a conforming client waits for the answer, and such bytes would be read as if they had
    /// come through TLS (CVE-2021-23214).
    public var rejectDataAfterEncryptionRequest: Bool

    public init(
        phase: Phase = .startup,
        maxMessageSize: Int = 64 << 20,
        maxStartupMessageSize: Int = 10_000,
        rejectDataAfterEncryptionRequest: Bool = true
    ) {
        precondition(maxMessageSize >= 5 && maxStartupMessageSize >= 8, "limits below the smallest message")
        self.phase = phase
        self.maxMessageSize = maxMessageSize
        self.maxStartupMessageSize = maxStartupMessageSize
        self.rejectDataAfterEncryptionRequest = rejectDataAfterEncryptionRequest
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> PostgresFrontendMessage? {
        switch phase {
        case .startup: return try decodeStartupPhase(buffer: &buffer)
        case .typed: return try decodeTyped(buffer: &buffer)
        }
    }

    /// Decodes what it can; bytes of an incomplete message left at the end are an error
    /// (`.truncatedMessage`), so the proxy can report a client that went away mid-message.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> PostgresFrontendMessage? {
        if let message = try decode(buffer: &buffer) { return message }
        guard buffer.readableBytes == 0 else { throw incompleteMessageError(buffer, seenEOF: seenEOF) }
        return nil
    }

    // MARK: Startup phase

    private mutating func decodeStartupPhase(buffer: inout ByteBuffer) throws -> PostgresFrontendMessage? {
        let start = buffer.readerIndex
        guard let length = buffer.getInteger(at: start, as: Int32.self) else { return nil }
        guard length >= 8 else {
            throw PostgresWireError(.invalidLength, messageName: "startup packet", offset: 0,
                                    reason: "declared length \(length) is below the minimum of 8")
        }
        guard length <= maxStartupMessageSize else {
            throw PostgresWireError(.messageTooLarge, messageName: "startup packet", offset: 0,
                                    reason: "declared length \(length) exceeds the limit of \(maxStartupMessageSize) bytes")
        }
        // Check the code as soon as it is here, not after buffering the whole packet.
        guard let code = buffer.getInteger(at: start + 4, as: Int32.self) else { return nil }
        let name = try Self.startupPacketName(code: code, length: length)
        guard buffer.readableBytes >= Int(length) else { return nil }

        buffer.moveReaderIndex(forwardBy: 8)
        let body = buffer.readSlice(length: Int(length) - 8)!
        var reader = MessageBodyReader(body: body, headerSize: 8, messageName: name)

        switch code {
        case Self.sslRequestCode, Self.gssEncRequestCode:
            if rejectDataAfterEncryptionRequest && buffer.readableBytes > 0 {
                throw PostgresWireError(.unexpectedDataAfterEncryptionRequest, messageName: name, offset: Int(length),
                                        reason: "\(buffer.readableBytes) bytes arrived before the request was answered")
            }
            return code == Self.sslRequestCode ? .sslRequest : .gssEncRequest
        case Self.cancelRequestCode:
            let pid = try reader.readInteger(as: Int32.self, "process ID")
            let key = try reader.readInteger(as: Int32.self, "secret key")
            return .cancelRequest(processID: pid, secretKey: key)
        default:
            var parameters: [(name: String, value: String)] = []
            while true {
                guard let first = reader.buffer.getInteger(at: reader.buffer.readerIndex, as: UInt8.self) else {
                    throw reader.malformed("parameter list has no terminating zero byte")
                }
                if first == 0 {
                    _ = try reader.readInteger(as: UInt8.self, "terminator")
                    break
                }
                let index = parameters.count
                let parameterName = try reader.readCString("parameter \(index) name")
                let value = try reader.readCString("parameter \(index) value")
                parameters.append((parameterName, value))
            }
            try reader.expectEnd()
            phase = .typed
            return .startup(.init(protocolVersion: code, parameters: parameters))
        }
    }

    /// Names the packet for `code`, or throws if it is not one this decoder accepts.
    private static func startupPacketName(code: Int32, length: Int32) throws -> String {
        func requireLength(_ expected: Int32, _ name: String) throws -> String {
            guard length == expected else {
                throw PostgresWireError(.invalidLength, messageName: name, offset: 0,
                                        reason: "declared length \(length), expected \(expected)")
            }
            return name
        }
        switch code {
        case sslRequestCode: return try requireLength(8, "SSLRequest")
        case gssEncRequestCode: return try requireLength(8, "GSSENCRequest")
        case cancelRequestCode: return try requireLength(16, "CancelRequest")
        case _ where code >> 16 == 3:
            // The body must hold at least the terminating zero byte.
            guard length >= 9 else {
                throw PostgresWireError(.invalidLength, messageName: "StartupMessage", offset: 0,
                                        reason: "declared length \(length) leaves no room for the parameter list terminator")
            }
            return "StartupMessage"
        default:
            let reason = (1...2).contains(code >> 16)
                ? "protocol version \(code >> 16).\(code & 0xFFFF) is not supported (3.x required)"
                : "unknown request code \(code) (protocol version \(code >> 16).\(code & 0xFFFF))"
            throw PostgresWireError(.unsupportedStartupCode, messageName: "startup packet", offset: 4, reason: reason)
        }
    }

    // MARK: Typed phase

    private func decodeTyped(buffer: inout ByteBuffer) throws -> PostgresFrontendMessage? {
        guard let (type, body) = try readTypedFrame(from: &buffer, maxMessageSize: maxMessageSize,
                                                    sizeLimit: Self.sizeLimit(type:maxMessageSize:),
                                                    name: PostgresFrontendMessage.messageName(type:)) else { return nil }
        return try Self.parseTyped(type: type, body: body)
    }

    /// PostgreSQL's own per-type limits, so a client cannot make the gate buffer more than the
    /// server would accept: PQ_SMALL_MESSAGE_LIMIT for messages that carry only names, and
    /// PG_MAX_AUTH_TOKEN_LENGTH for the password message.
    static func sizeLimit(type: UInt8, maxMessageSize: Int) -> Int {
        switch type {
        case UInt8(ascii: "C"), UInt8(ascii: "D"), UInt8(ascii: "E"), UInt8(ascii: "H"),
             UInt8(ascii: "S"), UInt8(ascii: "X"), UInt8(ascii: "c"), UInt8(ascii: "f"):
            min(maxMessageSize, 10_000)
        case UInt8(ascii: "p"):
            min(maxMessageSize, 65_535)
        default:
            maxMessageSize
        }
    }

    static func parseTyped(type: UInt8, body: ByteBuffer) throws -> PostgresFrontendMessage {
        var r = MessageBodyReader(body: body, headerSize: 5, type: type, names: PostgresFrontendMessage.messageName(type:))
        let message: PostgresFrontendMessage
        switch type {
        case UInt8(ascii: "Q"):
            message = .query(try r.readCString("query text"))
        case UInt8(ascii: "P"):
            let name = try r.readCString("statement name")
            let query = try r.readCString("query text")
            let count = try r.readCount(itemSize: 4, "parameter type count")
            var types: [UInt32] = []
            types.reserveCapacity(count)
            for i in 0..<count { types.append(try r.readInteger(as: UInt32.self, "parameter type \(i)")) }
            message = .parse(name: name, query: query, parameterTypes: types)
        case UInt8(ascii: "B"):
            message = .bind(try parseBind(&r))
        case UInt8(ascii: "D"):
            message = .describe(try readObjectKind(&r), name: try r.readCString("name"))
        case UInt8(ascii: "C"):
            message = .close(try readObjectKind(&r), name: try r.readCString("name"))
        case UInt8(ascii: "E"):
            let portal = try r.readCString("portal name")
            message = .execute(portal: portal, maxRows: try r.readInteger(as: Int32.self, "row limit"))
        case UInt8(ascii: "S"): message = .sync
        case UInt8(ascii: "H"): message = .flush
        case UInt8(ascii: "X"): message = .terminate
        case UInt8(ascii: "c"): message = .copyDone
        case UInt8(ascii: "d"): message = .copyData(r.readRest())
        case UInt8(ascii: "f"): message = .copyFail(message: try r.readCString("error message"))
        case UInt8(ascii: "F"): message = .functionCall(r.readRest())
        case UInt8(ascii: "p"): message = .password(r.readRest())
        default: message = .unknown(type: type, body: r.readRest())
        }
        // PostgreSQL refuses trailing bytes too ("invalid message format"); accepting them would
        // let a client hide bytes the gate never looked at.
        try r.expectEnd()
        return message
    }

    private static func readObjectKind(_ r: inout MessageBodyReader) throws -> PostgresFrontendMessage.ObjectKind {
        let offset = r.offset
        let byte = try r.readInteger(as: UInt8.self, "object kind")
        guard let kind = PostgresFrontendMessage.ObjectKind(rawValue: byte) else {
            throw r.malformed("object kind \(typeByteLabel(byte)) is neither 'S' nor 'P'", at: offset)
        }
        return kind
    }

    private static func parseBind(_ r: inout MessageBodyReader) throws -> PostgresFrontendMessage.Bind {
        let portal = try r.readCString("portal name")
        let statement = try r.readCString("statement name")
        let formatCount = try r.readCount(itemSize: 2, "parameter format count")
        var formats: [Int16] = []
        formats.reserveCapacity(formatCount)
        for i in 0..<formatCount { formats.append(try r.readInteger(as: Int16.self, "parameter format \(i)")) }
        let parameterCount = try r.readCount(itemSize: 4, "parameter count")
        var parameters: [ByteBuffer?] = []
        parameters.reserveCapacity(parameterCount)
        for i in 0..<parameterCount {
            let lengthOffset = r.offset
            let length = try r.readInteger(as: Int32.self, "parameter \(i) length")
            if length == -1 {
                parameters.append(nil)
            } else {
                guard length >= 0 else { throw r.malformed("parameter \(i) has negative length \(length)", at: lengthOffset) }
                parameters.append(try r.readSlice(length: Int(length), "parameter \(i) value"))
            }
        }
        let resultCount = try r.readCount(itemSize: 2, "result format count")
        var resultFormats: [Int16] = []
        resultFormats.reserveCapacity(resultCount)
        for i in 0..<resultCount { resultFormats.append(try r.readInteger(as: Int16.self, "result format \(i)")) }
        return .init(portal: portal, statement: statement, parameterFormats: formats,
                     parameters: parameters, resultFormats: resultFormats)
    }

    private func incompleteMessageError(_ buffer: ByteBuffer, seenEOF: Bool) -> PostgresWireError {
        let name: String
        let declared: Int32?
        switch phase {
        case .typed:
            name = PostgresFrontendMessage.messageName(type: buffer.getInteger(at: buffer.readerIndex, as: UInt8.self)!)
            declared = buffer.getInteger(at: buffer.readerIndex + 1, as: Int32.self).map { $0 + 1 }
        case .startup:
            name = "startup packet"
            declared = buffer.getInteger(at: buffer.readerIndex, as: Int32.self)
        }
        return truncationError(name: name, received: buffer.readableBytes, declared: declared, seenEOF: seenEOF)
    }
}

/// Reads one typed frame (type byte, Int32 length including itself, body) if it is complete.
/// Length checks happen as soon as the 5-byte header is in, before the body is buffered.
func readTypedFrame(
    from buffer: inout ByteBuffer, maxMessageSize: Int, sizeLimit: (UInt8, Int) -> Int = { _, max in max },
    name: (UInt8) -> String
) throws -> (UInt8, ByteBuffer)? {
    let start = buffer.readerIndex
    guard let type = buffer.getInteger(at: start, as: UInt8.self),
          let length = buffer.getInteger(at: start + 1, as: Int32.self) else { return nil }
    guard length >= 4 else {
        throw PostgresWireError(.invalidLength, messageName: name(type), offset: 1,
                                reason: "declared length \(length) is below the minimum of 4")
    }
    let limit = sizeLimit(type, maxMessageSize)
    guard Int(length) <= limit else {
        throw PostgresWireError(.messageTooLarge, messageName: name(type), offset: 1,
                                reason: "declared length \(length) exceeds the limit of \(limit) bytes")
    }
    guard buffer.readableBytes >= 1 + Int(length) else { return nil }
    buffer.moveReaderIndex(forwardBy: 5)
    return (type, buffer.readSlice(length: Int(length) - 4)!)
}

func truncationError(name: String, received: Int, declared: Int32?, seenEOF: Bool) -> PostgresWireError {
    let how = seenEOF ? "the connection closed" : "the decoder was removed"
    let size = declared.map { "\(received) of \($0) bytes received" } ?? "only \(received) bytes of its header received"
    return PostgresWireError(.truncatedMessage, messageName: name, offset: received,
                             reason: "\(how) in the middle of the message (\(size))")
}
