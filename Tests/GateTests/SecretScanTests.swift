import CaptureFormat
import Foundation
import Testing

/// The gate tests' secret scan must find a secret wherever a capture holds it: event blocks are
/// compressed, so a scan of the file's bytes alone would pass whatever the gate recorded.
@Suite("the tests' secret scan")
struct SecretScanTests {
    @Test func findsASecretInsideACompressedBlock() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let inText = "eyJhbGciOiJSUzI1NiJ9.in-the-statement-text.c2lnbmF0dXJlLW9mLWEtdG9rZW4"
        let inParameter = "brokered-password-in-a-parameter-7f3a"
        let inRow = "a-secret-in-a-result-row-91c2"
        let path = dir.appendingPathComponent("s.sesscap").path
        let header = SessionHeader(sessionID: "s", target: "t", protocolName: "postgres", subject: "someone", proxyID: "p", startMicros: 1)
        let writer = try CaptureWriter(path: path, header: header, key: SigningKey(), options: WriterOptions())
        let start = Event(monotonicNanos: 0, wallMicros: 1, payload: .sessionStart(SessionStart(clientAddress: "127.0.0.1:1")))
        _ = try writer.append(start)
        let request = PostgresRequest(text: "SELECT '\(inText)'", path: .extended,
                                      parameters: [Parameter(value: Array(inParameter.utf8))])
        _ = try writer.append(Event(monotonicNanos: 1, wallMicros: 2, exchangeID: 1, payload: .request(.postgres(request))))
        var response = PostgresResponse(commandTag: "SELECT 1")
        response.rows = [[Array(inRow.utf8)]]
        _ = try writer.append(Event(monotonicNanos: 2, wallMicros: 3, exchangeID: 1, payload: .response(.postgres(response))))
        try writer.close()

        let capture = try CaptureFile(path: path)
        let fileBytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let scanned = try secretScanBytes(capture)
        for secret in [inText, inParameter, inRow] {
            // Compressed away in the file's bytes: a scan of those alone could not fail.
            #expect(!fileBytes.contains(bytes: secret), "\(secret) is stored uncompressed; this test no longer shows anything")
            #expect(scanned.contains(bytes: secret), "the scan misses \(secret)")
        }
        // The header is stored as it is, and scanned too.
        #expect(scanned.contains(bytes: "someone"))
    }
}
