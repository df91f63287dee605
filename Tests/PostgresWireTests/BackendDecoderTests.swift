import NIOCore
import NIOEmbedded
import NIOTestUtils
import PostgresWire
import Testing

@Suite("Backend decoder")
struct BackendDecoderTests {
    typealias B = PostgresBackendMessage

    static let loginBytes = concat(
        typed("R", .i32(10), .cstr("SCRAM-SHA-256-PLUS"), .cstr("SCRAM-SHA-256"), .byte(0)),
        typed("R", .i32(11), .raw(Array("r=abc,s=c2FsdA==,i=4096".utf8))),
        typed("R", .i32(12), .raw(Array("v=c2lnbmF0dXJl".utf8))),
        typed("R", .i32(0)),
        typed("S", .cstr("server_version"), .cstr("15.8 (Debian 15.8-0+deb12u1)")),
        typed("S", .cstr("client_encoding"), .cstr("UTF8")),
        typed("S", .cstr("DateStyle"), .cstr("ISO, MDY")),
        typed("K", .i32(31337), .i32(0x1234_5678)),
        typed("Z", .char("I")))

    static let loginMessages: [B] = [
        .authentication(.sasl(mechanisms: ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])),
        .authentication(.saslContinue(data: buf("r=abc,s=c2FsdA==,i=4096"))),
        .authentication(.saslFinal(data: buf("v=c2lnbmF0dXJl"))),
        .authentication(.ok),
        .parameterStatus(name: "server_version", value: "15.8 (Debian 15.8-0+deb12u1)"),
        .parameterStatus(name: "client_encoding", value: "UTF8"),
        .parameterStatus(name: "DateStyle", value: "ISO, MDY"),
        .backendKeyData(processID: 31337, secretKey: 0x1234_5678),
        .readyForQuery(.idle),
    ]

    static let idColumn = B.ColumnDescription(name: "id", tableOID: 16384, columnAttribute: 1, typeOID: 23, typeSize: 4)
    static let emailColumn = B.ColumnDescription(name: "email", tableOID: 16384, columnAttribute: 2, typeOID: 25, typeSize: -1)

    static func rowDescriptionBytes() -> ByteBuffer {
        typed("T", .i16(2),
              .cstr("id"), .i32(16384), .i16(1), .i32(23), .i16(4), .i32(-1), .i16(0),
              .cstr("email"), .i32(16384), .i16(2), .i32(25), .i16(-1), .i32(-1), .i16(0))
    }

    /// The decoder keeps the last RowDescription and command tag by their bytes: a repeat is the
    /// same message, anything else is decoded afresh (a change of one byte, a different column).
    @Test func repeatedDescriptionsAndTagsDecodeAsTheirOwnBytes() throws {
        let other = typed("T", .i16(1), .cstr("iD"), .i32(16384), .i16(1), .i32(23), .i16(4), .i32(-1), .i16(1))
        let bytes = concat(Self.rowDescriptionBytes(), typed("C", .cstr("SELECT 1")), Self.rowDescriptionBytes(), typed("C", .cstr("SELECT 1")),
                           other, typed("C", .cstr("SELECT 2")), Self.rowDescriptionBytes(), typed("C", .cstr("UPDATE 1")),
                           typed("C", .cstr("")), typed("C", .cstr("SELECT 2")))
        let otherColumn = B.ColumnDescription(name: "iD", tableOID: 16384, columnAttribute: 1, typeOID: 23, typeSize: 4, format: 1)
        let both = B.rowDescription([Self.idColumn, Self.emailColumn])
        #expect(try decodeAll(PostgresBackendDecoder(), bytes) == [
            both, .commandComplete(tag: "SELECT 1"), both, .commandComplete(tag: "SELECT 1"),
            .rowDescription([otherColumn]), .commandComplete(tag: "SELECT 2"), both, .commandComplete(tag: "UPDATE 1"),
            .commandComplete(tag: ""), .commandComplete(tag: "SELECT 2"),
        ])
    }

    @Test func realisticServerTraffic() throws {
        let error = B.Diagnostics(fields: [
            (UInt8(ascii: "S"), "ERROR"), (UInt8(ascii: "V"), "ERROR"), (UInt8(ascii: "C"), "22012"),
            (UInt8(ascii: "M"), "division by zero"), (UInt8(ascii: "F"), "int.c"), (UInt8(ascii: "L"), "841"),
            (UInt8(ascii: "R"), "int4div"),
        ])
        let notice = B.Diagnostics(fields: [
            (UInt8(ascii: "S"), "NOTICE"), (UInt8(ascii: "V"), "NOTICE"), (UInt8(ascii: "C"), "00000"),
            (UInt8(ascii: "M"), "table \"x\" does not exist, skipping"),
        ])
        let pairs: [(ByteBuffer, [B])] = [
            (Self.loginBytes, Self.loginMessages),
            (concat(typed("R", .i32(5), .raw([0x01, 0x02, 0xFE, 0xFF])), typed("R", .i32(3))),
             [.authentication(.md5Password(salt: 0x0102_FEFF)), .authentication(.cleartextPassword)]),
            (typed("R", .i32(7)), [.authentication(.other(code: 7, data: ByteBuffer()))]),
            // A result: description, rows (one with a NULL and an empty string), completion.
            (concat(Self.rowDescriptionBytes(),
                    typed("D", .i16(2), .i32(1), .raw(Array("1".utf8)), .i32(17), .raw(Array("alice@example.com".utf8))),
                    typed("D", .i16(2), .i32(1), .raw(Array("2".utf8)), .i32(-1)),
                    typed("D", .i16(2), .i32(1), .raw(Array("3".utf8)), .i32(0)),
                    typed("C", .cstr("SELECT 3")),
                    typed("Z", .char("I"))),
             [.rowDescription([Self.idColumn, Self.emailColumn]),
              .dataRow(.init(columns: [buf("1"), buf("alice@example.com")])),
              .dataRow(.init(columns: [buf("2"), nil])),
              .dataRow(.init(columns: [buf("3"), ByteBuffer()])),
              .commandComplete(tag: "SELECT 3"),
              .readyForQuery(.idle)]),
            // An error in the middle of a result, inside a transaction.
            (concat(typed("T", .i16(1), .cstr("?column?"), .i32(0), .i16(0), .i32(23), .i16(4), .i32(-1), .i16(0)),
                    typed("D", .i16(1), .i32(1), .raw(Array("1".utf8))),
                    typed("E", .char("S"), .cstr("ERROR"), .char("V"), .cstr("ERROR"), .char("C"), .cstr("22012"),
                          .char("M"), .cstr("division by zero"), .char("F"), .cstr("int.c"), .char("L"), .cstr("841"),
                          .char("R"), .cstr("int4div"), .byte(0)),
                    typed("Z", .char("E"))),
             [.rowDescription([.init(name: "?column?", typeOID: 23, typeSize: 4)]),
              .dataRow(.init(columns: [buf("1")])),
              .errorResponse(error),
              .readyForQuery(.failed)]),
            (concat(typed("N", .char("S"), .cstr("NOTICE"), .char("V"), .cstr("NOTICE"), .char("C"), .cstr("00000"),
                          .char("M"), .cstr("table \"x\" does not exist, skipping"), .byte(0)),
                    typed("C", .cstr("DROP TABLE")),
                    typed("A", .i32(4711), .cstr("orders"), .cstr("{\"id\": 7}")),
                    typed("Z", .char("T"))),
             [.noticeResponse(notice), .commandComplete(tag: "DROP TABLE"),
              .notificationResponse(processID: 4711, channel: "orders", payload: "{\"id\": 7}"),
              .readyForQuery(.inTransaction)]),
            // Extended protocol replies, with a suspended portal.
            (concat(typed("1"), typed("t", .i16(2), .i32(23), .i32(25)), typed("n"), typed("2"),
                    typed("D", .i16(0)), typed("s"), typed("3"), typed("I"), typed("Z", .char("I"))),
             [.parseComplete, .parameterDescription([23, 25]), .noData, .bindComplete,
              .dataRow(.init(columns: [])), .portalSuspended, .closeComplete, .emptyQueryResponse, .readyForQuery(.idle)]),
            // COPY TO STDOUT and COPY FROM STDIN.
            (concat(typed("H", .byte(0), .i16(2), .i16(0), .i16(0)),
                    typed("d", .raw(Array("1\talice\n".utf8))), typed("d", .raw(Array("2\tbob\n".utf8))), typed("c"),
                    typed("C", .cstr("COPY 2"))),
             [.copyOutResponse(.init(format: 0, columnFormats: [0, 0])),
              .copyData(buf("1\talice\n")), .copyData(buf("2\tbob\n")), .copyDone, .commandComplete(tag: "COPY 2")]),
            (concat(typed("G", .byte(1), .i16(1), .i16(1)), typed("W", .byte(0), .i16(0))),
             [.copyInResponse(.init(format: 1, columnFormats: [1])), .copyBothResponse(.init(format: 0, columnFormats: []))]),
            (concat(typed("v", .i32(0), .i32(1), .cstr("_pq_.compression")), typed("V", .i32(-1)), typed("V", .i32(2), .raw([7, 8])),
                    typed("x", .raw([0xFF]))),
             [.negotiateProtocolVersion(newestMinorVersion: 0, unrecognizedOptions: ["_pq_.compression"]),
              .functionCallResponse(nil), .functionCallResponse(ByteBuffer(bytes: [7, 8])),
              .unknown(type: UInt8(ascii: "x"), body: ByteBuffer(bytes: [0xFF]))]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { PostgresBackendDecoder() }
    }

    @Test func sslResponseMode() throws {
        let fatal = B.Diagnostics(fields: [(UInt8(ascii: "S"), "FATAL"), (UInt8(ascii: "M"), "unsupported frontend protocol")])
        let pairs: [(ByteBuffer, [B])] = [
            (concat(ByteBuffer(bytes: [UInt8(ascii: "N")]), Self.loginBytes), [.sslResponse(.notSupported)] + Self.loginMessages),
            // A server older than SSL support answers with an ErrorResponse.
            (typed("E", .char("S"), .cstr("FATAL"), .char("M"), .cstr("unsupported frontend protocol"), .byte(0)),
             [.errorResponse(fatal)]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { SessionBackendDecoder() }

        var decoder = PostgresBackendDecoder(expectingSSLResponse: true)
        var s = ByteBuffer(bytes: [UInt8(ascii: "S")])
        #expect(try decoder.decode(buffer: &s) == .sslResponse(.supported))
        #expect(!decoder.expectingSSLResponse)
    }

    @Test func rejectsDataInjectedAfterSSLAccept() throws {
        let input = concat(ByteBuffer(bytes: [UInt8(ascii: "S")]), typed("R", .i32(0)))
        let error = try #require(wireError(PostgresBackendDecoder(expectingSSLResponse: true), input))
        #expect(error.kind == .unexpectedDataAfterSSLResponse)

        let bad = try #require(wireError(PostgresBackendDecoder(expectingSSLResponse: true), ByteBuffer(bytes: [UInt8(ascii: "X")])))
        #expect(bad.kind == .invalidSSLResponse)
    }

    @Test func dataRowIteratesWithoutCopying() throws {
        let messages = try decodeAll(PostgresBackendDecoder(),
                                     typed("D", .i16(3), .i32(3), .raw(Array("abc".utf8)), .i32(-1), .i32(0)))
        guard case .dataRow(let row) = messages.first else { Issue.record("no row"); return }
        #expect(row.columnCount == 3)
        #expect(row.columns == [buf("abc"), nil, ByteBuffer()])
        var count = 0
        for column in row {
            count += 1
            if let column {
                // Slices share the row's storage.
                let rowRange = row.bytes.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress!)...UInt(bitPattern: $0.baseAddress! + $0.count) }
                let columnStart = column.withUnsafeReadableBytes { $0.baseAddress.map { UInt(bitPattern: $0) } }
                if let columnStart { #expect(rowRange.contains(columnStart)) }
            }
        }
        #expect(count == 3)
    }

    @Test func diagnosticsAccessors() throws {
        let body = typed("E", .char("S"), .cstr("ERREUR"), .char("V"), .cstr("ERROR"), .char("C"), .cstr("42P01"),
                         .char("M"), .cstr("relation \"nope\" does not exist"), .char("D"), .cstr("detail"),
                         .char("H"), .cstr("hint"), .char("P"), .cstr("15"), .byte(0))
        guard case .errorResponse(let d) = try decodeAll(PostgresBackendDecoder(), body).first else { Issue.record("no error"); return }
        #expect(d.severity == "ERROR")
        #expect(d[B.Diagnostics.FieldCode.severity] == "ERREUR")
        #expect(d.sqlState == "42P01")
        #expect(d.message == "relation \"nope\" does not exist")
        #expect(d.detail == "detail")
        #expect(d.hint == "hint")
        #expect(d.position == 15)

        let own = B.Diagnostics(severity: "ERROR", sqlState: "42501", message: "denied by policy", hint: "ask a DBA")
        #expect(own.severity == "ERROR" && own.sqlState == "42501" && own.message == "denied by policy" && own.hint == "ask a DBA")
        #expect(own.detail == nil && own.position == nil)
    }
}
