import NIOCore
import NIOEmbedded
import NIOTestUtils
import PostgresWire
import Testing

@Suite("Frontend decoder")
struct FrontendDecoderTests {
    typealias F = PostgresFrontendMessage

    static let startupParameters: [(name: String, value: String)] = [
        ("user", "alice@example.com"), ("database", "analytics"),
        ("application_name", "psql"), ("client_encoding", "UTF8"),
    ]

    static let startupBytes = untyped(
        .i32(196_608),
        .cstr("user"), .cstr("alice@example.com"), .cstr("database"), .cstr("analytics"),
        .cstr("application_name"), .cstr("psql"), .cstr("client_encoding"), .cstr("UTF8"),
        .byte(0))

    @Test func startupSessionsWithEncryptionRequests() throws {
        let startup = F.startup(.init(parameters: Self.startupParameters))
        let sslRequest = untyped(.i32(80_877_103))
        let gssRequest = untyped(.i32(80_877_104))
        let terminate = typed("X")
        let protocol32 = untyped(.i32(196_610), .cstr("user"), .cstr("bob"), .cstr("_pq_.compression"), .cstr("on"), .byte(0))

        let pairs: [(ByteBuffer, [F])] = [
            // SSLRequest, answered 'N', then the startup in plaintext.
            (concat(sslRequest, Self.startupBytes, typed("Q", .cstr("SELECT 1")), terminate),
             [.sslRequest, startup, .query("SELECT 1"), .terminate]),
            // libpq with gssencmode=prefer: GSSENCRequest, then SSLRequest, then startup.
            (concat(gssRequest, sslRequest, Self.startupBytes, terminate),
             [.gssEncRequest, .sslRequest, startup, .terminate]),
            // Startup straight away, then a password answer.
            (concat(Self.startupBytes, typed("p", .cstr("eyJhbGciOi.token")), terminate),
             [startup, .password(buf("eyJhbGciOi.token\0")), .terminate]),
            // A minor version above 0 is still protocol 3; the server negotiates.
            (concat(protocol32, terminate),
             [.startup(.init(protocolVersion: 196_610, parameters: [("user", "bob"), ("_pq_.compression", "on")])), .terminate]),
            (untyped(.i32(80_877_102), .i32(4242), .i32(-559_038_737)),
             [.cancelRequest(processID: 4242, secretKey: -559_038_737)]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { SessionFrontendDecoder() }
    }

    @Test func startupAccessors() throws {
        let messages = try decodeAll(PostgresFrontendDecoder(), Self.startupBytes)
        guard case .startup(let startup) = messages.first else { Issue.record("no startup"); return }
        #expect(startup.user == "alice@example.com")
        #expect(startup.database == "analytics")
        #expect(startup.applicationName == "psql")
        #expect(startup.majorVersion == 3 && startup.minorVersion == 0)
        #expect(startup.parameters.map(\.name) == ["user", "database", "application_name", "client_encoding"])
    }

    @Test func simpleQueryAndExtendedPipelines() throws {
        let int4 = ByteBuffer(bytes: [0, 0, 0, 42])
        let pairs: [(ByteBuffer, [F])] = [
            (typed("Q", .cstr("SELECT * FROM analytics.orders WHERE id = 7;")),
             [.query("SELECT * FROM analytics.orders WHERE id = 7;")]),
            (typed("Q", .cstr("")), [.query("")]),
            // Unnamed statement and portal, binary parameter and results (what drivers send).
            (concat(
                typed("P", .cstr(""), .cstr("SELECT name FROM users WHERE id = $1"), .i16(1), .i32(23)),
                typed("B", .cstr(""), .cstr(""), .i16(1), .i16(1), .i16(1), .i32(4), .raw([0, 0, 0, 42]), .i16(1), .i16(1)),
                typed("D", .char("P"), .cstr("")),
                typed("E", .cstr(""), .i32(0)),
                typed("S")),
             [.parse(name: "", query: "SELECT name FROM users WHERE id = $1", parameterTypes: [23]),
              .bind(.init(parameterFormats: [1], parameters: [int4], resultFormats: [1])),
              .describe(.portal, name: ""),
              .execute(portal: "", maxRows: 0),
              .sync]),
            // Named statement and portal, text and NULL parameters, row limit, close both.
            (concat(
                typed("P", .cstr("stmt_1"), .cstr("UPDATE t SET a = $1 WHERE b = $2"), .i16(0)),
                typed("D", .char("S"), .cstr("stmt_1")),
                typed("B", .cstr("portal_1"), .cstr("stmt_1"), .i16(0), .i16(2), .i32(5), .raw(Array("hello".utf8)), .i32(-1), .i16(0)),
                typed("E", .cstr("portal_1"), .i32(100)),
                typed("H"),
                typed("C", .char("S"), .cstr("stmt_1")),
                typed("C", .char("P"), .cstr("portal_1")),
                typed("S")),
             [.parse(name: "stmt_1", query: "UPDATE t SET a = $1 WHERE b = $2", parameterTypes: []),
              .describe(.statement, name: "stmt_1"),
              .bind(.init(portal: "portal_1", statement: "stmt_1", parameters: [buf("hello"), nil])),
              .execute(portal: "portal_1", maxRows: 100),
              .flush,
              .close(.statement, name: "stmt_1"),
              .close(.portal, name: "portal_1"),
              .sync]),
            // COPY FROM STDIN data, done; and an aborted COPY.
            (concat(typed("d", .raw(Array("1\tfoo\n".utf8))), typed("d", .raw(Array("2\tbar\n".utf8))), typed("c")),
             [.copyData(buf("1\tfoo\n")), .copyData(buf("2\tbar\n")), .copyDone]),
            (concat(typed("d", .raw([])), typed("f", .cstr("client aborted"))),
             [.copyData(ByteBuffer()), .copyFail(message: "client aborted")]),
            // FunctionCall kept raw; an unknown type passed through.
            (typed("F", .i32(1598), .i16(0), .i16(0), .i16(0)), [.functionCall(ByteBuffer(bytes: [0, 0, 6, 62, 0, 0, 0, 0, 0, 0]))]),
            (typed("z", .raw([1, 2, 3])), [.unknown(type: UInt8(ascii: "z"), body: ByteBuffer(bytes: [1, 2, 3]))]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { PostgresFrontendDecoder(phase: .typed) }
    }

    @Test func bytesRoundTripThroughDecodeAndEncode() throws {
        // Re-framing a decoded message must give back exactly the client's bytes.
        let inputs: [ByteBuffer] = [
            Self.startupBytes,
            typed("B", .cstr("p"), .cstr("s"), .i16(2), .i16(0), .i16(1), .i16(3), .i32(-1), .i32(0), .i32(2), .raw([9, 9]), .i16(1), .i16(1)),
            typed("P", .cstr("s"), .cstr("SELECT $1, $2"), .i16(2), .i32(25), .i32(-1)),
        ]
        for (i, input) in inputs.enumerated() {
            let decoder = PostgresFrontendDecoder(phase: i == 0 ? .startup : .typed)
            let messages = try decodeAll(decoder, input)
            #expect(messages.count == 1)
            #expect(try messages[0].encoded() == input)
        }
    }

    @Test func passwordBodyHelpers() throws {
        #expect(try F.parseCleartextPassword(buf("hunter2-token\0")) == "hunter2-token")

        var body = ByteBuffer()
        body.writeString("SCRAM-SHA-256\0")
        body.writeInteger(Int32(9))
        body.writeString("n,,n=,r=x")
        let initial = try F.parseSASLInitialResponse(body)
        #expect(initial.mechanism == "SCRAM-SHA-256")
        #expect(initial.initialResponse == buf("n,,n=,r=x"))

        var none = ByteBuffer()
        none.writeString("SCRAM-SHA-256\0")
        none.writeInteger(Int32(-1))
        #expect(try F.parseSASLInitialResponse(none).initialResponse == nil)

        // The constructors produce what the parsers read.
        guard case .password(let built) = try F.saslInitialResponse(mechanism: "SCRAM-SHA-256", data: Array("n,,n=,r=x".utf8)) else {
            Issue.record("not a password message"); return
        }
        #expect(built == body)
        guard case .password(let pw) = try F.passwordMessage("md5abc") else { Issue.record("not a password message"); return }
        #expect(try F.parseCleartextPassword(pw) == "md5abc")
    }

    @Test func rejectsDataPipelinedAfterSSLRequest() throws {
        let input = concat(untyped(.i32(80_877_103)), Self.startupBytes)
        let error = try #require(wireError(PostgresFrontendDecoder(), input))
        #expect(error.kind == .unexpectedDataAfterEncryptionRequest)
        #expect(error.messageName == "SSLRequest")
        // A client that waits for the answer is fine.
        var decoder = PostgresFrontendDecoder()
        var first = untyped(.i32(80_877_103))
        #expect(try decoder.decode(buffer: &first) == .sslRequest)
        var second = Self.startupBytes
        guard case .startup = try decoder.decode(buffer: &second) else { Issue.record("no startup"); return }
        #expect(decoder.phase == .typed)
    }

    @Test func worksInAPipelineWithTheEncoder() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(PostgresFrontendDecoder(phase: .typed)),
            MessageToByteHandler(PostgresFrontendMessageEncoder()),
        ])
        try channel.writeOutbound(F.query("SELECT 1"))
        let bytes = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(bytes == typed("Q", .cstr("SELECT 1")))
        try channel.writeInbound(bytes)
        #expect(try channel.readInbound(as: F.self) == .query("SELECT 1"))
        #expect(try channel.finish().isClean)
    }
}
