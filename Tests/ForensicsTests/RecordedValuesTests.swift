import CaptureFormat
import Forensics
import Testing
import TestSupport

/// The exchange model gives each recorded value with its 1.4 flags, and the request's parameters
/// with their types, formats and flags, read back from a capture file.
@Suite("recorded values with flags")
struct RecordedValuesTests {
    @Test func valuesAndParametersCarryTheirFlags() throws {
        let scratch = try ScratchDirectory("format14diff21-values")
        defer { scratch.remove() }
        let path = scratch.path("s.sesscap")
        let header = SessionHeader(sessionID: "format14diff21", target: "t", protocolName: "postgres", subject: "someone", proxyID: "p", startMicros: 1)
        let writer = try CaptureWriter(path: path, header: header, key: SigningKey(), options: WriterOptions())
        let request = PostgresRequest(text: "SELECT email FROM c WHERE id = $1 OR k = $2", path: .extended,
                                      parameters: [Parameter(value: [0, 0, 0, 7], format: 1, typeOID: 23),
                                                   Parameter(value: Array("[REDACTED]".utf8), typeOID: 25, flags: .withheld)])
        let first = PostgresResponse(columns: [Column(name: "email", typeOID: 25)], rows: [[Array("a****@x".utf8)], [nil]],
                                     rowCount: 2, commandTag: "SELECT 2", valueFlags: [FlaggedValue(row: 0, column: 0, flags: .masked)])
        let second = PostgresResponse(columns: [Column(name: "email", typeOID: 25)], rows: [[Array("b".utf8)]], rowCount: 1,
                                      commandTag: "SELECT 1")
        _ = try writer.append(Event(monotonicNanos: 1, wallMicros: 1, exchangeID: 1, payload: .request(.postgres(request))))
        _ = try writer.append(Event(monotonicNanos: 2, wallMicros: 2, exchangeID: 1, payload: .response(.postgres(first))))
        _ = try writer.append(Event(monotonicNanos: 3, wallMicros: 3, exchangeID: 1, payload: .response(.postgres(second))))
        try writer.close()

        let x = try #require(try ExchangeAssembler.exchanges(of: CaptureFile(path: path)).first)
        #expect(x.recordedValues == [[RecordedValue(Array("a****@x".utf8), flags: .masked)], [RecordedValue(nil)], [RecordedValue(Array("b".utf8))]])
        #expect(x.parameters.map(\.typeOID) == [23, 25])
        #expect(x.parameters.map(\.format) == [1, 0])
        #expect(x.parameters.map(\.flags) == [[], .withheld])
        #expect(x.requestAltered)
    }
}
