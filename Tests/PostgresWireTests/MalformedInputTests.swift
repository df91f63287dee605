import NIOCore
import NIOEmbedded
import PostgresWire
import Testing

@Suite("Malformed input")
struct MalformedInputTests {
    typealias F = PostgresFrontendMessage
    static let typedDecoder = PostgresFrontendDecoder(phase: .typed)

    @Test func typedLengthBelowFour() throws {
        var input = ByteBuffer(bytes: [UInt8(ascii: "Q")])
        input.writeInteger(Int32(3))
        let error = try #require(wireError(Self.typedDecoder, input))
        #expect(error.kind == .invalidLength)
        #expect(error.messageName == "Query ('Q')")
        #expect(error.offset == 1)
        #expect(error.description.contains("3"))

        let backend = try #require(wireError(PostgresBackendDecoder(), input))
        #expect(backend.kind == .invalidLength)
    }

    @Test func oversizedLengthIsRefusedFromTheHeaderAlone() throws {
        // Only the 5-byte header is present: the error must come before any body is buffered.
        var decoder = Self.typedDecoder
        var header = ByteBuffer(bytes: [UInt8(ascii: "d")])
        header.writeInteger(Int32(100 << 20))
        #expect(throws: PostgresWireError.self) { _ = try decoder.decode(buffer: &header) }

        var small = PostgresBackendDecoder(maxMessageSize: 1024)
        var rowHeader = ByteBuffer(bytes: [UInt8(ascii: "D")])
        rowHeader.writeInteger(Int32(1025))
        do {
            _ = try small.decode(buffer: &rowHeader)
            Issue.record("no error")
        } catch let error as PostgresWireError {
            #expect(error.kind == .messageTooLarge)
            #expect(error.messageName == "DataRow ('D')")
        }
        // Exactly at the limit is fine (it just waits for the body).
        var atLimit = ByteBuffer(bytes: [UInt8(ascii: "D")])
        atLimit.writeInteger(Int32(1024))
        #expect(try small.decode(buffer: &atLimit) == nil)
    }

    @Test func perTypeLimitsMatchPostgreSQL() throws {
        // A Sync may not be 64 MiB even though the general limit allows it; a password message
        // is capped at 65535 bytes.
        var sync = ByteBuffer(bytes: [UInt8(ascii: "S")])
        sync.writeInteger(Int32(10_001))
        #expect(wireError(Self.typedDecoder, sync)?.kind == .messageTooLarge)
        var password = ByteBuffer(bytes: [UInt8(ascii: "p")])
        password.writeInteger(Int32(65_536))
        #expect(wireError(Self.typedDecoder, password)?.kind == .messageTooLarge)
        var query = ByteBuffer(bytes: [UInt8(ascii: "Q")])
        query.writeInteger(Int32(65_536))
        var decoder = Self.typedDecoder
        #expect(try decoder.decode(buffer: &query) == nil)  // allowed: waits for the body
    }

    @Test func startupLengths() throws {
        var tooShort = ByteBuffer()
        tooShort.writeInteger(Int32(7))
        #expect(wireError(PostgresFrontendDecoder(), tooShort)?.kind == .invalidLength)

        var tooLong = ByteBuffer()
        tooLong.writeInteger(Int32(10_001))
        #expect(wireError(PostgresFrontendDecoder(), tooLong)?.kind == .messageTooLarge)

        // An SSLRequest must be exactly 8 bytes.
        let longSSL = untyped(.i32(80_877_103), .i32(0))
        #expect(wireError(PostgresFrontendDecoder(), longSSL)?.kind == .invalidLength)
    }

    @Test func unknownStartupCodes() throws {
        // An HTTP request sent to the PostgreSQL port; then protocol 2.0.
        let http = ByteBuffer(string: "GET / HTTP/1.1\r\n")
        let httpError = try #require(wireError(PostgresFrontendDecoder(maxStartupMessageSize: Int(Int32.max)), http))
        #expect(httpError.kind == .unsupportedStartupCode)
        #expect(httpError.offset == 4)

        let v2 = untyped(.i32(131_072), .cstr("user"), .cstr("x"), .byte(0))
        let v2Error = try #require(wireError(PostgresFrontendDecoder(), v2))
        #expect(v2Error.kind == .unsupportedStartupCode)
        #expect(v2Error.description.contains("2.0"))

        let random = untyped(.i32(1234), .byte(0))
        #expect(wireError(PostgresFrontendDecoder(), random)?.kind == .unsupportedStartupCode)
    }

    @Test func missingNullTerminators() throws {
        let query = typed("Q", .raw(Array("SELECT 1".utf8)))
        let error = try #require(wireError(Self.typedDecoder, query))
        #expect(error.kind == .malformedMessage)
        #expect(error.offset == 5)
        #expect(error.reason.contains("query text"))

        // Startup: a value without terminator, and a list without its final zero byte.
        let value = untyped(.i32(196_608), .cstr("user"), .raw(Array("bob".utf8)))
        #expect(wireError(PostgresFrontendDecoder(), value)?.reason.contains("parameter 0 value") == true)
        let list = untyped(.i32(196_608), .cstr("user"), .cstr("bob"))
        #expect(wireError(PostgresFrontendDecoder(), list)?.kind == .malformedMessage)

        let status = typed("S", .cstr("name"), .raw(Array("value".utf8)))
        #expect(wireError(PostgresBackendDecoder(), status)?.kind == .malformedMessage)
        let diag = typed("E", .char("S"), .cstr("ERROR"))  // no final zero byte
        #expect(wireError(PostgresBackendDecoder(), diag)?.kind == .malformedMessage)
    }

    @Test func countsThatRunPastTheBody() throws {
        // Bind claims 3 parameters but carries one.
        let bind = typed("B", .cstr(""), .cstr(""), .i16(0), .i16(3), .i32(1), .raw([0x31]))
        let error = try #require(wireError(Self.typedDecoder, bind))
        #expect(error.kind == .malformedMessage)
        #expect(error.messageName == "Bind ('B')")
        #expect(error.offset == 9)  // type 1 + length 4 + two empty names 2 + format count 2
        #expect(error.reason.contains("parameter count"))

        // A parameter length beyond the end.
        let value = typed("B", .cstr(""), .cstr(""), .i16(0), .i16(1), .i32(1000), .raw([0x31]), .i16(0))
        let valueError = try #require(wireError(Self.typedDecoder, value))
        #expect(valueError.reason.contains("parameter 0 value"))
        #expect(valueError.offset == 15)

        let negative = typed("B", .cstr(""), .cstr(""), .i16(0), .i16(1), .i32(-2), .i16(0))
        #expect(wireError(Self.typedDecoder, negative)?.kind == .malformedMessage)

        let row = typed("D", .i16(2), .i32(4), .raw([1, 2, 3, 4]), .i32(10), .raw([1]))
        #expect(wireError(PostgresBackendDecoder(), row)?.kind == .malformedMessage)
        let description = typed("T", .i16(5), .cstr("a"))
        #expect(wireError(PostgresBackendDecoder(), description)?.kind == .malformedMessage)
    }

    @Test func otherLayoutErrors() throws {
        #expect(wireError(Self.typedDecoder, typed("D", .char("X"), .cstr("")))?.kind == .malformedMessage)
        // Trailing bytes a client could hide behind a well-formed message.
        #expect(wireError(Self.typedDecoder, typed("S", .byte(0)))?.kind == .malformedMessage)
        #expect(wireError(Self.typedDecoder, typed("Q", .cstr("SELECT 1"), .raw(Array("; DROP TABLE t".utf8))))?.kind == .malformedMessage)
        // Invalid UTF-8 is refused, never repaired.
        #expect(wireError(Self.typedDecoder, typed("Q", .raw([0x53, 0xC3, 0x28, 0])))?.reason.contains("UTF-8") == true)
        #expect(wireError(PostgresBackendDecoder(), typed("Z", .char("X")))?.kind == .malformedMessage)
        #expect(wireError(PostgresBackendDecoder(), typed("R", .i32(5), .raw([1, 2])))?.kind == .malformedMessage)
    }

    @Test func truncatedAtEndOfStream() throws {
        // Direct decoder use: decodeLast reports the incomplete message.
        var partial = typed("Q", .cstr("SELECT * FROM big"))
        partial.moveWriterIndex(to: partial.writerIndex - 4)
        let error = try #require(wireError(Self.typedDecoder, partial))
        #expect(error.kind == .truncatedMessage)
        #expect(error.messageName == "Query ('Q')")
        #expect(error.reason.contains("connection closed"))
        #expect(error.reason.contains("19 of 23"))

        // A lone type byte, and a partial startup packet.
        #expect(wireError(Self.typedDecoder, ByteBuffer(bytes: [UInt8(ascii: "P")]))?.kind == .truncatedMessage)
        #expect(wireError(PostgresFrontendDecoder(), ByteBuffer(bytes: [0, 0, 0]))?.kind == .truncatedMessage)
        #expect(wireError(PostgresBackendDecoder(), ByteBuffer(bytes: [UInt8(ascii: "D"), 0, 0]))?.kind == .truncatedMessage)

        // In a pipeline, ByteToMessageHandler calls decodeLast on close; the error reaches the pipeline.
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(PostgresFrontendDecoder(phase: .typed)))
        try channel.writeInbound(partial)
        #expect(try channel.readInbound(as: F.self) == nil)
        #expect {
            _ = try channel.finish()
        } throws: { error in
            (error as? PostgresWireError)?.kind == .truncatedMessage
        }
    }

    @Test func errorsNeverContainPasswords() throws {
        let secret = "Sup3r-Secret-Token-42"
        var failures: [String] = []

        // Password bodies that do not parse.
        failures.append(errorText { _ = try F.parseCleartextPassword(buf(secret)) })
        failures.append(errorText { _ = try F.parseCleartextPassword(buf(secret + "\0" + secret)) })
        failures.append(errorText { _ = try F.parseSASLInitialResponse(buf(secret)) })
        failures.append(errorText { _ = try F.parseSASLInitialResponse(buf("SCRAM-SHA-256\0\0\0\0\u{7F}" + secret)) })
        failures.append(errorText { _ = try F.passwordMessage(secret + "\0") })
        // Whole messages carrying the secret that fail to frame or decode.
        let truncated = typed("p", .cstr(secret)).getSlice(at: 0, length: 12)!
        failures.append(errorText { _ = try decodeAll(Self.typedDecoder, truncated) })
        failures.append(errorText { _ = try decodeAll(PostgresFrontendDecoder(), untyped(.i32(196_608), .cstr("password"), .raw(Array(secret.utf8)))) })
        failures.append(errorText { _ = try decodeAll(Self.typedDecoder, typed("Q", .raw(Array(("ALTER ROLE x PASSWORD '\(secret)'").utf8)))) })
        failures.append(errorText { _ = try F.query("SELECT '\(secret)'\0").encoded() })

        #expect(failures.count == 9)
        for text in failures {
            #expect(!text.isEmpty)
            #expect(!text.contains(secret), "error text leaks the secret: \(text)")
            #expect(!text.contains("Secret"))
        }

        // Nor do the descriptions of the messages and of the SCRAM client.
        let message = F.password(buf(secret + "\0"))
        for text in [message.description, String(reflecting: message), "\(message)", dumped(message),
                     "\(SCRAMSHA256Client(password: secret))", dumped(SCRAMSHA256Client(password: secret))] {
            #expect(!text.contains(secret), "description leaks the secret: \(text)")
        }
    }

    private func errorText(_ body: () throws -> Void) -> String {
        do {
            try body()
            return ""
        } catch {
            return "\(error) | \(String(reflecting: error))"
        }
    }

    private func dumped<T>(_ value: T) -> String {
        var out = ""
        dump(value, to: &out)
        return out
    }
}
