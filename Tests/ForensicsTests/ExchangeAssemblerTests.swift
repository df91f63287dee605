import CaptureFormat
import Forensics
import Testing
import TestSupport

/// The one exchange model read back from a real capture file: rows as recorded, and the rows past
/// the cap as the writer counted and hashed them.
@Suite("the exchange assembler")
struct ExchangeAssemblerTests {
    /// Values as a result row carries them: text, binary bytes, NULL, empty.
    static func row(_ i: Int) -> Row {
        [Array("row-\(i)".utf8), [0x00, 0xFF, UInt8(i)], nil, []]
    }

    @Test func rowsUnderAndOverTheCapReadBackExactly() throws {
        let scratch = try ScratchDirectory("captures21-rows")
        defer { scratch.remove() }
        let path = scratch.path("s.sesscap")
        let header = SessionHeader(sessionID: "captures21", target: "t", protocolName: "postgres", subject: "someone", proxyID: "p", startMicros: 1)
        let writer = try CaptureWriter(path: path, header: header, key: SigningKey(), options: WriterOptions())
        let columns = [Column(name: "a", typeOID: 25), Column(name: "b", typeOID: 17, format: 1), Column(name: "c", typeOID: 23), Column(name: "d", typeOID: 25)]
        func result(rows n: Int, cap: Int) -> (PostgresResponse, RowRecorder) {
            var recorder = RowRecorder(maxRows: cap)
            for i in 0..<n { recorder.add(ExchangeAssemblerTests.row(i)) }
            var response = PostgresResponse(columns: columns, rowCount: UInt64(n), commandTag: "SELECT \(n)", durationMicros: 42, cut: recorder.cut)
            response.packedRows = recorder.packedRows
            return (response, recorder)
        }
        let (under, underRecorder) = result(rows: 2, cap: 3)
        let (over, overRecorder) = result(rows: 7, cap: 3)
        #expect(underRecorder.cut == nil)
        let overCut = try #require(overRecorder.cut)
        var t: Int64 = 10
        func append(_ x: UInt64, _ p: Payload) throws {
            t += 1
            _ = try writer.append(Event(monotonicNanos: UInt64(t), wallMicros: t, exchangeID: x, payload: p))
        }
        _ = try writer.append(Event(monotonicNanos: 0, wallMicros: 1, payload: .sessionStart(SessionStart(clientAddress: "127.0.0.1:1"))))
        try append(1, .request(.postgres(PostgresRequest(text: "SELECT 2 rows"))))
        try append(1, .decision(Decision(action: .allow, policy: "p", rule: "r")))
        try append(1, .response(.postgres(under)))
        try append(2, .request(.postgres(PostgresRequest(text: "SELECT 7 rows"))))
        try append(2, .decision(Decision(action: .allow, policy: "p", rule: "r")))
        try append(2, .response(.postgres(over)))
        try append(3, .request(.postgres(PostgresRequest(text: "DELETE FROM t"))))
        try append(3, .decision(Decision(action: .deny, policy: "p", rule: "no")))
        try writer.close()

        let exchanges = try ExchangeAssembler.exchanges(of: try CaptureFile(path: path))
        try #require(exchanges.map(\.id) == [1, 2, 3])
        let (a, b, c) = (exchanges[0], exchanges[1], exchanges[2])

        #expect(a.rows == [Self.row(0), Self.row(1)])
        #expect(a.cutRows.isEmpty)
        #expect(a.recordedRows == 2)
        #expect(a.postgresResults.first?.columns == columns)
        #expect(a.response == .postgres(under))

        #expect(b.rows == [Self.row(0), Self.row(1), Self.row(2)], "the rows under the cap, in order, values as recorded")
        #expect(b.cutRows == [overCut], "the count, bytes and digest of the rows past the cap, as the writer made them")
        #expect(overCut.rows == 4 && overCut.sha256.count == 32)
        #expect(b.postgresResults.first?.rowCount == 7)
        #expect(b.recordedRows == 3)
        #expect(b.responses.count == 1 && b.responseMicros == b.responses[0].micros)

        #expect(c.responses.isEmpty && c.rows.isEmpty && !c.forwarded)

        // An export counts rows without holding them.
        let counted = try ExchangeAssembler.exchanges(of: try CaptureFile(path: path), keepsRows: false)
        #expect(counted.map(\.recordedRows) == [2, 3, 0])
        #expect(counted.allSatisfy { $0.rows.isEmpty })
        #expect(counted[1].cutRows == [overCut])
    }
}
