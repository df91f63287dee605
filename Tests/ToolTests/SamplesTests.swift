import CaptureFormat
import Foundation
import SyntheticSessions
import Testing

/// The repository root, from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("samples and synthetic sessions")
struct SamplesTests {
    /// The committed samples must verify against the committed key (a change to the
    /// summary rule or the format without regenerating them fails here).
    @Test func committedSamplesVerify() throws {
        let samples = repositoryRoot.appendingPathComponent("samples")
        let key = try SigningKey.loadPublicKey(path: samples.appendingPathComponent("signing-public.pem").path)
        let files = try FileManager.default.contentsOfDirectory(atPath: samples.path).filter { $0.hasSuffix(".sesscap") }.sorted()
        #expect(files.count >= 4)
        for name in files {
            let report = try VerificationReport.verifying(path: samples.appendingPathComponent(name).path, trustedKey: key)
            if name == "truncated.sesscap" {
                #expect(report.firstProblem?.location == "block 3", "\(report.problems)")
                #expect(report.blocksChecked == 3)
            } else {
                #expect(report.isValid, "\(name): \(report.problems)")
            }
        }
    }

    @Test func generatorIsDeterministicAndExact() {
        for n in [2, 3, 17, 250] {
            let a = Array(SessionGenerator(seed: 42, start: 1_790_000_000_000_000, length: .events(n)))
            let b = Array(SessionGenerator(seed: 42, start: 1_790_000_000_000_000, length: .events(n)))
            #expect(a.count == n)
            #expect(a == b)
            #expect(a.first?.payload.kind == .sessionStart)
            #expect(a.last?.payload.kind == .sessionEnd)
        }
        let c = Array(SessionGenerator(seed: 43, start: 1_790_000_000_000_000, length: .events(50)))
        #expect(c != Array(SessionGenerator(seed: 42, start: 1_790_000_000_000_000, length: .events(50))))
    }

    @Test func generatedSessionsRoundTripThroughCaptures() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = SigningKey()
        for profile in SessionProfile.allCases {
            var g = SessionGenerator(seed: 7, start: 1_790_000_000_000_000, profile: profile, length: .exchanges(30))
            let path = dir.appendingPathComponent("\(profile.rawValue).sesscap").path
            var options = WriterOptions()
            options.blockTargetBytes = 4096
            options.durability = .none
            let w = try CaptureWriter(path: path, header: g.header, key: key, options: options)
            var written: [Event] = []
            while let e = g.next() {
                var n = e
                n.sequence = try w.append(e)
                written.append(n)
            }
            try w.close()
            let capture = try CaptureFile(path: path)
            var read: [Event] = []
            try capture.forEachEvent { read.append($0); return true }
            #expect(read == written, "\(profile)")
            #expect(capture.verify(trustedKey: key.publicKey).isValid)
        }
    }

    /// `capgen bench --from`: the corpus is the events of real captures, each copy in its own file,
    /// written, read back and verified like a generated one.
    @Test func benchmarkOverRecordedCaptures() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = SigningKey()
        var g = SessionGenerator(seed: 9, start: 1_790_000_000_000_000, profile: .ordersOncall, length: .exchanges(40))
        let source = dir.appendingPathComponent("source.sesscap").path
        let w = try CaptureWriter(path: source, header: g.header, key: key)
        var count = 0
        while let e = g.next() { try w.append(e); count += 1 }
        try w.close()
        let configs = [BenchConfig(blockBytes: 4096, level: 1, durability: .none), BenchConfig(blockBytes: 4096, level: 0, durability: .none)]
        let options = BenchOptions(events: 0, sessions: 0, seed: 0, start: 0, directory: dir.appendingPathComponent("work").path, jsonlPath: nil,
                                   configs: configs, sources: [source, source])
        let result = try CaptureBenchmark.run(options, key: key) { _ in }
        #expect(result.sessions == 2)
        #expect(result.fromCaptures)
        #expect(CaptureBenchmark.table(result).contains("read from captures:"))
        #expect(result.events == 2 * count)
        #expect(result.rows.count == 2)
        #expect(result.rows.allSatisfy { $0.verifyProblems == 0 && $0.verifySeconds != nil && $0.blocks > 2 })
    }
}
