import NIOCore
import NIOEmbedded
import PostgresWire
import Testing

@Suite("Round trip: decode(encode(m)) == m")
struct RoundTripTests {
    typealias F = PostgresFrontendMessage
    typealias B = PostgresBackendMessage

    static let startupMessages: [F] = [
        .sslRequest, .gssEncRequest,
        .cancelRequest(processID: 1, secretKey: Int32.min),
        .startup(.init(parameters: [("user", "u"), ("database", ""), ("options", "-c search_path=public")])),
        .startup(.init(protocolVersion: 196_609, parameters: [])),
    ]

    static let typedFrontendMessages: [F] = [
        .query("SELECT 'é', '🐘'"), .query(""),
        .parse(name: "", query: "SELECT $1", parameterTypes: []),
        .parse(name: "s", query: "SELECT $1, $2", parameterTypes: [23, UInt32.max]),
        .bind(.init()),
        .bind(.init(portal: "p", statement: "s", parameterFormats: [0, 1], parameters: [nil, ByteBuffer(), buf("x")], resultFormats: [1])),
        .describe(.statement, name: "s"), .describe(.portal, name: ""),
        .execute(portal: "", maxRows: 0), .execute(portal: "p", maxRows: Int32.max),
        .sync, .flush, .terminate, .copyDone,
        .close(.statement, name: "s"), .close(.portal, name: "p"),
        .copyData(ByteBuffer()), .copyData(ByteBuffer(bytes: Array(0...255))),
        .copyFail(message: "aborted"),
        .functionCall(ByteBuffer(bytes: [0, 0, 4, 0])),
        .password(buf("token\0")), .password(ByteBuffer()),
        .unknown(type: UInt8(ascii: "~"), body: ByteBuffer(bytes: [1])),
    ]

    static let backendMessages: [B] = [
        .authentication(.ok), .authentication(.cleartextPassword), .authentication(.md5Password(salt: 0xDEAD_BEEF)),
        .authentication(.sasl(mechanisms: ["SCRAM-SHA-256"])), .authentication(.sasl(mechanisms: [])),
        .authentication(.saslContinue(data: buf("r=a,s=b,i=1"))), .authentication(.saslFinal(data: buf("v=x"))),
        .authentication(.other(code: 8, data: ByteBuffer(bytes: [1, 2]))),
        .backendKeyData(processID: 7, secretKey: -7),
        .parameterStatus(name: "TimeZone", value: "UTC"),
        .readyForQuery(.idle), .readyForQuery(.inTransaction), .readyForQuery(.failed),
        .rowDescription([]), .rowDescription([.init(name: "a", tableOID: 1, columnAttribute: 2, typeOID: 3, typeSize: -1, typeModifier: 4, format: 1)]),
        .dataRow(.init(columns: [])), .dataRow(.init(columns: [nil, ByteBuffer(), buf("v")])),
        .commandComplete(tag: "INSERT 0 1"), .emptyQueryResponse,
        .errorResponse(.init(severity: "FATAL", sqlState: "28000", message: "token expired", detail: "d", hint: "h")),
        .noticeResponse(.init(fields: [])),
        .notificationResponse(processID: 1, channel: "c", payload: ""),
        .parseComplete, .bindComplete, .closeComplete, .noData, .portalSuspended,
        .parameterDescription([]), .parameterDescription([23, 25]),
        .copyInResponse(.init(format: 0, columnFormats: [0])), .copyOutResponse(.init(format: 1, columnFormats: [1, 1])),
        .copyBothResponse(.init(format: 0, columnFormats: [])),
        .copyData(buf("row\n")), .copyDone,
        .negotiateProtocolVersion(newestMinorVersion: 0, unrecognizedOptions: ["_pq_.a", "_pq_.b"]),
        .functionCallResponse(nil), .functionCallResponse(ByteBuffer()), .functionCallResponse(buf("42")),
        .unknown(type: UInt8(ascii: "~"), body: ByteBuffer()),
    ]

    @Test func frontend() throws {
        for message in Self.startupMessages {
            let decoded = try decodeAll(PostgresFrontendDecoder(rejectDataAfterEncryptionRequest: false), try message.encoded())
            #expect(decoded == [message])
        }
        for message in Self.typedFrontendMessages {
            #expect(try decodeAll(PostgresFrontendDecoder(phase: .typed), try message.encoded()) == [message])
        }
        // All at once through one decoder, as a connection would carry them.
        let startup = Self.startupMessages[3]
        let stream = concat(try ([startup] + Self.typedFrontendMessages).map { try $0.encoded() })
        #expect(try decodeAll(PostgresFrontendDecoder(), stream) == [startup] + Self.typedFrontendMessages)
    }

    @Test func backend() throws {
        for message in Self.backendMessages {
            #expect(try decodeAll(PostgresBackendDecoder(), try message.encoded()) == [message])
        }
        for response in [B.sslResponse(.supported), .sslResponse(.notSupported)] {
            #expect(try decodeAll(PostgresBackendDecoder(expectingSSLResponse: true), try response.encoded()) == [response])
        }
        let stream = concat(try Self.backendMessages.map { try $0.encoded() })
        #expect(try decodeAll(PostgresBackendDecoder(), stream) == Self.backendMessages)
    }

    @Test func reframedDataRowAfterMasking() throws {
        // The proxy's use: decode a row, replace a value, re-encode with the right lengths.
        let original = B.dataRow(.init(columns: [buf("1"), buf("4111 1111 1111 1111")]))
        guard case .dataRow(let row) = try decodeAll(PostgresBackendDecoder(), try original.encoded()).first else {
            Issue.record("no row"); return
        }
        var columns = row.columns
        columns[1] = buf("****")
        let masked = B.dataRow(.init(columns: columns))
        let bytes = try masked.encoded()
        #expect(bytes == typed("D", .i16(2), .i32(1), .raw(Array("1".utf8)), .i32(4), .raw(Array("****".utf8))))
        #expect(try decodeAll(PostgresBackendDecoder(), bytes) == [masked])
    }

    @Test func unencodableMessagesLeaveTheBufferUntouched() throws {
        var out = ByteBuffer(string: "prefix")
        #expect(throws: PostgresWireError.self) { try F.query("SELECT 1\0; DROP TABLE t").encode(into: &out) }
        #expect(throws: PostgresWireError.self) {
            try F.parse(name: "", query: "q", parameterTypes: Array(repeating: 0, count: 70_000)).encode(into: &out)
        }
        #expect(throws: PostgresWireError.self) { try F.startup(.init(parameters: [("", "x")])).encode(into: &out) }
        #expect(throws: PostgresWireError.self) { try B.errorResponse(.init(fields: [(0, "x")])).encode(into: &out) }
        #expect(throws: PostgresWireError.self) { try B.authentication(.sasl(mechanisms: [""])).encode(into: &out) }
        #expect(out == ByteBuffer(string: "prefix"))
    }

    @Test func backendEncoderInAPipeline() throws {
        let channel = EmbeddedChannel(handler: MessageToByteHandler(PostgresBackendMessageEncoder()))
        try channel.writeOutbound(B.readyForQuery(.idle))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == typed("Z", .char("I")))
        #expect(try channel.finish().isClean)
    }
}
