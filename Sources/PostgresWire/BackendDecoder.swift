#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Decodes what a PostgreSQL server sends: typed messages, and optionally the single-byte
/// answer to an SSLRequest first.
///
/// To negotiate TLS upstream, create the decoder with `expectingSSLResponse: true` and send
/// an SSLRequest; the decoder yields `.sslResponse(.supported/.notSupported)` and goes on with
/// typed messages. (An 'E' instead means a server too old for SSL: the ErrorResponse is decoded.)
public struct PostgresBackendDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = PostgresBackendMessage

    /// The next byte is the answer to an SSLRequest. Cleared once that byte is decoded.
    public var expectingSSLResponse: Bool
    /// Largest message accepted, length field included (a DataRow may be large: PostgreSQL
    /// allows 1 GiB per value).
    public var maxMessageSize: Int
    /// Refuse bytes arriving together with an 'S': they came before the TLS handshake, so a
    /// man in the middle could have injected them (CVE-2021-23222).
    public var rejectDataAfterSSLResponse: Bool

    /// The last RowDescription and command tag, by their bytes: a prepared statement is described
    /// and completed with the same bytes every time, so they are decoded once (copies, so the
    /// read buffer they came in can be reused).
    var lastRowDescription: (body: [UInt8], columns: [PostgresBackendMessage.ColumnDescription])?
    var lastCommandTag: (body: [UInt8], tag: String)?

    public init(expectingSSLResponse: Bool = false, maxMessageSize: Int = 64 << 20, rejectDataAfterSSLResponse: Bool = true) {
        precondition(maxMessageSize >= 5, "limit below the smallest message")
        self.expectingSSLResponse = expectingSSLResponse
        self.maxMessageSize = maxMessageSize
        self.rejectDataAfterSSLResponse = rejectDataAfterSSLResponse
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> PostgresBackendMessage? {
        if expectingSSLResponse {
            guard let byte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
            switch byte {
            case PostgresBackendMessage.SSLResponse.supported.rawValue:
                buffer.moveReaderIndex(forwardBy: 1)
                expectingSSLResponse = false
                if rejectDataAfterSSLResponse && buffer.readableBytes > 0 {
                    throw PostgresWireError(.unexpectedDataAfterSSLResponse, messageName: "SSL response", offset: 1,
                                            reason: "\(buffer.readableBytes) unencrypted bytes followed 'S' before the TLS handshake")
                }
                return .sslResponse(.supported)
            case PostgresBackendMessage.SSLResponse.notSupported.rawValue:
                buffer.moveReaderIndex(forwardBy: 1)
                expectingSSLResponse = false
                return .sslResponse(.notSupported)
            case UInt8(ascii: "E"):
                expectingSSLResponse = false
            default:
                throw PostgresWireError(.invalidSSLResponse, messageName: "SSL response", offset: 0,
                                        reason: "byte \(typeByteLabel(byte)) is not 'S', 'N' or an ErrorResponse")
            }
        }
        guard let (type, body) = try readTypedFrame(from: &buffer, maxMessageSize: maxMessageSize,
                                                    name: PostgresBackendMessage.messageName(type:)) else { return nil }
        switch type {
        case UInt8(ascii: "T"):
            if let last = lastRowDescription, Self.same(body, last.body) { return .rowDescription(last.columns) }
            let message = try Self.parseTyped(type: type, body: body)
            if case .rowDescription(let columns) = message { lastRowDescription = (Array(body.readableBytesView), columns) }
            return message
        case UInt8(ascii: "C"):
            if let last = lastCommandTag, Self.same(body, last.body) { return .commandComplete(tag: last.tag) }
            let message = try Self.parseTyped(type: type, body: body)
            if case .commandComplete(let tag) = message { lastCommandTag = (Array(body.readableBytesView), tag) }
            return message
        default:
            return try Self.parseTyped(type: type, body: body)
        }
    }

    static func same(_ body: ByteBuffer, _ bytes: [UInt8]) -> Bool {
        body.readableBytes == bytes.count && (bytes.isEmpty || body.withUnsafeReadableBytes { raw in
            bytes.withUnsafeBytes { memcmp(raw.baseAddress!, $0.baseAddress!, bytes.count) == 0 }
        })
    }

    /// Decodes what it can; bytes of an incomplete message left at the end are an error
    /// (`.truncatedMessage`).
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> PostgresBackendMessage? {
        if let message = try decode(buffer: &buffer) { return message }
        guard buffer.readableBytes == 0 else {
            let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self)!
            let declared = buffer.getInteger(at: buffer.readerIndex + 1, as: Int32.self).map { $0 + 1 }
            throw truncationError(name: PostgresBackendMessage.messageName(type: type), received: buffer.readableBytes,
                                  declared: declared, seenEOF: seenEOF)
        }
        return nil
    }

    static func parseTyped(type: UInt8, body: ByteBuffer) throws -> PostgresBackendMessage {
        var r = MessageBodyReader(body: body, headerSize: 5, type: type, names: PostgresBackendMessage.messageName(type:))
        let message: PostgresBackendMessage
        switch type {
        case UInt8(ascii: "R"):
            message = .authentication(try parseAuthentication(&r))
        case UInt8(ascii: "K"):
            let pid = try r.readInteger(as: Int32.self, "process ID")
            message = .backendKeyData(processID: pid, secretKey: try r.readInteger(as: Int32.self, "secret key"))
        case UInt8(ascii: "S"):
            let name = try r.readCString("parameter name")
            message = .parameterStatus(name: name, value: try r.readCString("parameter value"))
        case UInt8(ascii: "Z"):
            let offset = r.offset
            let byte = try r.readInteger(as: UInt8.self, "transaction status")
            guard let status = PostgresBackendMessage.TransactionStatus(rawValue: byte) else {
                throw r.malformed("transaction status \(typeByteLabel(byte)) is not 'I', 'T' or 'E'", at: offset)
            }
            message = .readyForQuery(status)
        case UInt8(ascii: "T"):
            // A field takes at least 19 bytes (empty name + 18 bytes of numbers).
            let count = try r.readCount(itemSize: 19, "field count")
            var columns: [PostgresBackendMessage.ColumnDescription] = []
            columns.reserveCapacity(count)
            for i in 0..<count {
                columns.append(.init(
                    name: try r.readCString("field \(i) name"),
                    tableOID: try r.readInteger(as: UInt32.self, "field \(i) table OID"),
                    columnAttribute: try r.readInteger(as: Int16.self, "field \(i) column attribute"),
                    typeOID: try r.readInteger(as: UInt32.self, "field \(i) type OID"),
                    typeSize: try r.readInteger(as: Int16.self, "field \(i) type size"),
                    typeModifier: try r.readInteger(as: Int32.self, "field \(i) type modifier"),
                    format: try r.readInteger(as: Int16.self, "field \(i) format")))
            }
            message = .rowDescription(columns)
        case UInt8(ascii: "D"):
            message = .dataRow(try .init(validating: r.readRest()))
        case UInt8(ascii: "C"):
            message = .commandComplete(tag: try r.readCString("command tag"))
        case UInt8(ascii: "I"): message = .emptyQueryResponse
        case UInt8(ascii: "E"): message = .errorResponse(try parseDiagnostics(&r))
        case UInt8(ascii: "N"): message = .noticeResponse(try parseDiagnostics(&r))
        case UInt8(ascii: "A"):
            let pid = try r.readInteger(as: Int32.self, "process ID")
            let channel = try r.readCString("channel name")
            message = .notificationResponse(processID: pid, channel: channel, payload: try r.readCString("payload"))
        case UInt8(ascii: "1"): message = .parseComplete
        case UInt8(ascii: "2"): message = .bindComplete
        case UInt8(ascii: "3"): message = .closeComplete
        case UInt8(ascii: "n"): message = .noData
        case UInt8(ascii: "s"): message = .portalSuspended
        case UInt8(ascii: "t"):
            let count = try r.readCount(itemSize: 4, "parameter count")
            var types: [UInt32] = []
            types.reserveCapacity(count)
            for i in 0..<count { types.append(try r.readInteger(as: UInt32.self, "parameter \(i) type OID")) }
            message = .parameterDescription(types)
        case UInt8(ascii: "G"): message = .copyInResponse(try parseCopyResponse(&r))
        case UInt8(ascii: "H"): message = .copyOutResponse(try parseCopyResponse(&r))
        case UInt8(ascii: "W"): message = .copyBothResponse(try parseCopyResponse(&r))
        case UInt8(ascii: "d"): message = .copyData(r.readRest())
        case UInt8(ascii: "c"): message = .copyDone
        case UInt8(ascii: "v"):
            let minor = try r.readInteger(as: Int32.self, "newest minor version")
            let countOffset = r.offset
            let count = try r.readInteger(as: Int32.self, "option count")
            // Each option takes at least its terminator.
            guard count >= 0, Int(count) <= r.remaining else {
                throw r.malformed("option count \(count) runs past the end of the message", at: countOffset)
            }
            var options: [String] = []
            for i in 0..<Int(count) { options.append(try r.readCString("option \(i)")) }
            message = .negotiateProtocolVersion(newestMinorVersion: minor, unrecognizedOptions: options)
        case UInt8(ascii: "V"):
            let offset = r.offset
            let length = try r.readInteger(as: Int32.self, "result length")
            if length == -1 {
                message = .functionCallResponse(nil)
            } else {
                guard length >= 0 else { throw r.malformed("negative result length \(length)", at: offset) }
                message = .functionCallResponse(try r.readSlice(length: Int(length), "result value"))
            }
        default:
            message = .unknown(type: type, body: r.readRest())
        }
        try r.expectEnd()
        return message
    }

    private static func parseAuthentication(_ r: inout MessageBodyReader) throws -> PostgresBackendMessage.Authentication {
        let code = try r.readInteger(as: Int32.self, "authentication code")
        switch code {
        case 0: return .ok
        case 3: return .cleartextPassword
        case 5: return .md5Password(salt: try r.readInteger(as: UInt32.self, "md5 salt"))
        case 10:
            var mechanisms: [String] = []
            while true {
                let mechanism = try r.readCString("mechanism \(mechanisms.count)")
                if mechanism.isEmpty { break }
                mechanisms.append(mechanism)
            }
            return .sasl(mechanisms: mechanisms)
        case 11: return .saslContinue(data: r.readRest())
        case 12: return .saslFinal(data: r.readRest())
        default: return .other(code: code, data: r.readRest())
        }
    }

    private static func parseDiagnostics(_ r: inout MessageBodyReader) throws -> PostgresBackendMessage.Diagnostics {
        var fields: [(code: UInt8, value: String)] = []
        while true {
            let code = try r.readInteger(as: UInt8.self, "field type")
            if code == 0 { break }
            fields.append((code, try r.readCString("field \(typeByteLabel(code)) value")))
        }
        return .init(fields: fields)
    }

    private static func parseCopyResponse(_ r: inout MessageBodyReader) throws -> PostgresBackendMessage.CopyResponse {
        let format = try r.readInteger(as: Int8.self, "overall format")
        let count = try r.readCount(itemSize: 2, "column count")
        var formats: [Int16] = []
        formats.reserveCapacity(count)
        for i in 0..<count { formats.append(try r.readInteger(as: Int16.self, "column \(i) format")) }
        return .init(format: format, columnFormats: formats)
    }
}
