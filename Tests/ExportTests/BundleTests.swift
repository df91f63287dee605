import CaptureFormat
import Crypto
@testable import Forensics
import Foundation
import TestSupport
import Testing

@Suite("selection")
struct SelectionTests {
    @Test func filesDirectoriesAndSessionIDs() async throws {
        let s = try Scratch()
        defer { s.remove() }
        let key = SigningKey()
        try FileManager.default.createDirectory(atPath: s.path("captures/2026/11/20"), withIntermediateDirectories: true)
        let ids = ["0bd67723-d5ef-42d8-8a36-b78f84260bfd", "0bd67723-aaaa-4000-8000-000000000002", "c0ffee00-0000-4000-8000-000000000003"]
        for (i, id) in ids.enumerated() {
            try writeCapture(s.path("captures/2026/11/20/\(id).sesscap"), key: key, sessionID: id, postgresExchanges(2 + i))
        }
        try "not a capture".write(toFile: s.path("captures/notes.txt"), atomically: true, encoding: .utf8)

        let all = try await CaptureSelection(arguments: [s.path("captures")], captureRoot: nil).resolve()
        #expect(all.count == 3, "every *.sesscap under the directory, and nothing else")

        let byID = try await CaptureSelection(arguments: [ids[2]], captureRoot: s.path("captures")).resolve()
        #expect(byID == [s.path("captures/2026/11/20/\(ids[2]).sesscap")])
        let byPrefix = try await CaptureSelection(arguments: ["c0ffee00"], captureRoot: s.path("captures")).resolve()
        #expect(byPrefix == byID)
        // With ids, a directory says where to look rather than selecting all of it.
        let inDir = try await CaptureSelection(arguments: [s.path("captures"), ids[0]], captureRoot: nil).resolve()
        #expect(inDir == [s.path("captures/2026/11/20/\(ids[0]).sesscap")])

        await #expect(throws: ExportError.self) { try await CaptureSelection(arguments: ["0bd6"], captureRoot: s.path("captures")).resolve() }  // too short for an id
        #expect(try await CaptureSelection(arguments: ["0bd67723-d5"], captureRoot: s.path("captures")).resolve() == [s.path("captures/2026/11/20/\(ids[0]).sesscap")])
        let ambiguous = await #expect(throws: ExportError.self) { try await CaptureSelection(arguments: ["0bd67723"], captureRoot: s.path("captures")).resolve() }
        #expect(ambiguous?.message.contains("ambiguous") == true)
        await #expect(throws: ExportError.self) { try await CaptureSelection(arguments: ["ffffffff-ffff"], captureRoot: s.path("captures")).resolve() }
        await #expect(throws: ExportError.self) { try await CaptureSelection(arguments: [ids[0]], captureRoot: nil).resolve() }
        await #expect(throws: ExportError.self) { try await CaptureSelection(arguments: [s.path("captures/notes.txt")], captureRoot: nil).resolve() }
    }

    @Test func aFilterSelectsThroughTheSeam() async throws {
        let s = try Scratch()
        defer { s.remove() }
        let key = SigningKey()
        try writeCapture(s.path("a.sesscap"), key: key, subject: "alice@example.com", postgresExchanges(3))
        try writeCapture(s.path("b.sesscap"), key: key, subject: "bob@example.com", postgresExchanges(3))
        let filter = ClosureFilter("subject bob@example.com") { $0.header.subject == "bob@example.com" }
        let selection = CaptureSelection(arguments: [s.dir.path], filter: filter, captureRoot: nil)
        #expect(try await selection.resolve() == [s.path("b.sesscap")])
        #expect(selection.description == [s.dir.path, "filter: subject bob@example.com"])
        // A filter alone searches the capture root.
        #expect(try await CaptureSelection(arguments: [], filter: filter, captureRoot: s.dir.path).resolve() == [s.path("b.sesscap")])
    }
}

@Suite("sessgrep filters")
struct QueryFilterTests {
    @Test func queriesSelectSessionsThroughSessgrepsEngine() async throws {
        let s = try Scratch()
        defer { s.remove() }
        let key = SigningKey()
        // Every tenth exchange of postgresExchanges is denied: 12 exchanges have one denial, 5 have none.
        try writeCapture(s.path("alice.sesscap"), key: key, subject: "alice@example.com", postgresExchanges(12))
        try writeCapture(s.path("bob.sesscap"), key: key, subject: "bob@contractors.example.com", postgresExchanges(5))
        func selected(_ q: CaptureQuery) async throws -> [String] {
            try await CaptureSelection(arguments: [s.dir.path], filter: QueryFilter(q, parallelism: 1), captureRoot: nil).resolve()
                .map { ($0 as NSString).lastPathComponent }
        }
        var bySubject = CaptureQuery()
        bySubject.subjects = [Glob("*@contractors.example.com")]
        #expect(try await selected(bySubject) == ["bob.sesscap"])
        var denied = CaptureQuery()
        denied.decisions = [.deny]
        #expect(try await selected(denied) == ["alice.sesscap"])
        var table = CaptureQuery()
        table.request.tables = [Glob("analytics.users")]
        #expect(Set(try await selected(table)) == ["alice.sesscap", "bob.sesscap"])
        table.request.tables = [Glob("pii.*")]
        #expect(try await selected(table).isEmpty)

        var described = CaptureQuery()
        described.subjects = [Glob("a*")]
        described.decisions = [.deny, .expired]
        described.since = 1_790_000_000_000_000
        #expect(QueryFilter.describe(described) == "--subject a* --since 2026-09-21T14:13:20.000000Z --decision deny --decision expired")
    }
}

@Suite("bundles in process")
struct BundleTests {
    @Test func manifestRoundTripsAndKeepsDetectorNames() throws {
        let integrity = Integrity(state: .truncated, blocks: 3, events: 93, lastSequence: 93, signerKeyId: "dd98", sealerKeyId: nil,
                                  keyPinned: true, fileLength: 10870, completeLength: 9314, cut: "block cut off", recovery: nil)
        let session = SessionEntry(session: "s", capture: "captures/s.sesscap", sourcePath: "/c/s.sesscap", captureFormat: "1.0", subject: "a",
                                   groups: ["g"], issuer: "", target: "t", protocol: "postgres", proxy: "p", writer: "w", start: "x",
                                   firstEvent: nil, lastEvent: nil, events: 93, exchanges: 30, errors: 1, kinds: ["mask-summary": 4],
                                   decisions: ["allow": 1], approvals: [:], masked: ["credit_card": 2, "column:*.phone": 1, "EMP_ID": 3],
                                   resources: [], requestBytes: 1, responseBytes: 2, endReason: "", integrity: integrity, files: [])
        let m = Manifest(tool: .current, created: "2026-11-25T10:00:00.000000Z",
                         exporter: ExporterInfo(name: "n", user: "u", uid: 1, host: "h", keyId: "k", publicKeyPem: "pem"),
                         case: CaseInfo(id: "INC-1", note: nil), selection: ["a"], custody: nil, signingKeys: [],
                         files: [FileEntry(path: "captures/s.sesscap", sha256: "00", size: 1, kind: "capture", session: "s")], sessions: [session])
        let bytes = try m.encoded()
        #expect(try Manifest.decode(Data(bytes)) == m)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("\"credit_card\" : 2") && text.contains("\"EMP_ID\" : 3"), "dictionary keys are not case-converted")
        #expect(text.contains("\"complete_length\" : 9314"))
        #expect(try m.encoded() == bytes, "the same manifest gives the same bytes")
        #expect(bytes.last == 0x0A)
    }

    /// Export, verify, and verify again after each kind of damage, all in process.
    @Test func exportThenVerifyFindsEveryDamage() async throws {
        let s = try Scratch()
        defer { s.remove() }
        let proxy = SigningKey(), exporter = SigningKey()
        try FileManager.default.createDirectory(atPath: s.path("in"), withIntermediateDirectories: true)
        try writeCapture(s.path("in/a.sesscap"), key: proxy, postgresExchanges(15))
        try writeCapture(s.path("in/b.sesscap"), key: proxy, blockBytes: 300, close: false, postgresExchanges(15))
        var request = ExportRequest(output: s.path("bundle"), caseInfo: CaseInfo(id: "INC-9", note: "audit"), exporterName: "ivy@example.com",
                                    selection: CaptureSelection(arguments: [s.path("in")], captureRoot: nil), captureKeys: [proxy.publicKey],
                                    custodyLog: s.path("custody.jsonl"), now: 1_790_000_000_000_000)
        let result = try await Exporter.export(request, key: exporter)
        #expect(result.manifest.sessions.map(\.integrity.state) == [.clean, .truncated])
        #expect(result.custodyEntry == 1)
        #expect(result.manifest.custody?.entry == 1)

        let ok = try BundleVerifier.verify(path: s.path("bundle"), exporterKeys: [exporter.publicKey], captureKeys: [proxy.publicKey])
        #expect(ok.isValid, "\(ok.failures)")
        #expect(ok.originProven)
        #expect(ok.derivedChecked == true)
        #expect(ok.sessions.allSatisfy { $0.ok })

        // The same request again: the output exists, nothing is overwritten.
        await #expect(throws: ExportError.self) { _ = try await Exporter.export(request, key: exporter) }

        // An open-format file rewritten and re-hashed into a re-signed manifest: only re-rendering can tell.
        let csvPath = try #require(result.manifest.files.first { $0.kind == "exchanges-csv" }).path
        try "session,exchange\r\nforged,1\r\n".write(toFile: s.path("bundle/" + csvPath), atomically: false, encoding: .utf8)
        var forged = result.manifest
        let forgedData = try Data(contentsOf: URL(fileURLWithPath: s.path("bundle/" + csvPath)))
        let i = forged.files.firstIndex { $0.path == csvPath }!
        forged.files[i].sha256 = hex(Array(SHA256.hash(data: forgedData)))
        forged.files[i].size = UInt64(forgedData.count)
        try Data(try forged.encoded()).write(to: URL(fileURLWithPath: s.path("bundle/manifest.json")))
        try Data(exporter.sign(try forged.encoded())).write(to: URL(fileURLWithPath: s.path("bundle/manifest.sig")))
        let rerendered = try BundleVerifier.verify(path: s.path("bundle"), exporterKeys: [exporter.publicKey])
        #expect(rerendered.failures.map(\.check) == ["derived"], "\(rerendered.failures)")
        #expect(rerendered.failures.first?.file == csvPath)

        // A tar of the same selection verifies too.
        request.output = s.path("bundle.tar")
        request.tar = true
        let tar = try await Exporter.export(request, key: exporter)
        #expect(tar.custodyEntry == 2)
        #expect(tar.manifest.custody?.previousEntrySha256 != CustodyLog.zeroHash)
        let tarReport = try BundleVerifier.verify(path: s.path("bundle.tar"), exporterKeys: [exporter.publicKey], captureKeys: [proxy.publicKey])
        #expect(tarReport.isValid, "\(tarReport.failures)")
        #expect(tarReport.isArchive)
        let custody = CustodyLog.check(try Data(contentsOf: URL(fileURLWithPath: s.path("custody.jsonl"))), trustedKeys: [exporter.publicKey])
        #expect(custody.isValid)
        #expect(custody.entries.last?.bundle.sha256 == tar.archiveSHA256)
        #expect(custody.entries.last?.bundle.manifestSha256 == tar.manifestSHA256)
    }

    @Test func aDamagedCaptureIsRefusedAndNothingIsWritten() async throws {
        let s = try Scratch()
        defer { s.remove() }
        let proxy = SigningKey()
        try FileManager.default.createDirectory(atPath: s.path("in"), withIntermediateDirectories: true)
        try writeCapture(s.path("in/a.sesscap"), key: proxy, blockBytes: 300, postgresExchanges(15))
        var bytes = try Data(contentsOf: URL(fileURLWithPath: s.path("in/a.sesscap")))
        let block = try CaptureFile(path: s.path("in/a.sesscap")).blocks[1]
        bytes[block.payloadOffset + 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: s.path("in/a.sesscap")))
        let request = ExportRequest(output: s.path("bundle"), selection: CaptureSelection(arguments: [s.path("in")], captureRoot: nil),
                                    custodyLog: s.path("custody.jsonl"))
        let error = await #expect(throws: ExportError.self) { _ = try await Exporter.export(request, key: SigningKey()) }
        #expect(error?.kind == .check)
        #expect(error?.message.contains("block 1") == true)
        #expect(!FileManager.default.fileExists(atPath: s.path("bundle")))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: s.dir.path).filter { $0.hasPrefix("bundle") }
        #expect(leftovers.isEmpty, "\(leftovers)")
        #expect((try? Data(contentsOf: URL(fileURLWithPath: s.path("custody.jsonl"))))?.isEmpty ?? true, "no custody entry for an export that did not happen")
    }
}
