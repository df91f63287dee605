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
}
