import CaptureFormat
@testable import Forensics
import Foundation
import TestSupport
import Testing

@Suite("custody log")
struct CustodyTests {
    func entry(_ seq: Int, prev: String, key: SigningKey, note: String = "why") -> CustodyEntry {
        CustodyEntry(seq: seq, time: "2026-11-25T10:00:0\(seq).000000Z", who: .init(name: "ivy@example.com", user: "ivy", uid: 1000, host: "forensics-1"),
                     exporterKeyId: key.keyID, exporterPublicKey: Data(key.publicKey).base64EncodedString(), case: CaseInfo(id: "INC-\(seq)", note: note),
                     bundle: .init(path: "/evidence/b\(seq)", format: "directory", sha256: nil, manifestSha256: String(repeating: "a", count: 64),
                                   manifestSignature: "c2ln"),
                     files: [.init(path: "captures/x.sesscap", source: "/captures/x.sesscap", sha256: String(repeating: "b", count: 64), size: 10, session: "s")],
                     sessions: ["s"], prev: prev)
    }

    /// Three entries appended through the appender, as exports do.
    func log(_ s: Scratch, key: SigningKey, notes: [String] = ["a", "b", "c"]) throws -> String {
        let path = s.path("state/custody.jsonl")
        for note in notes {
            let appender = try CustodyAppender(path: path)
            try appender.append(entry(appender.nextSeq, prev: appender.head.lastHash, key: key, note: note), key: key)
        }
        return path
    }

    func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    func write(_ lines: [String], to path: String) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func appendedEntriesChainAndVerify() throws {
        let s = try Scratch()
        defer { s.remove() }
        let key = SigningKey()
        let path = try log(s, key: key)
        let report = CustodyLog.check(try Data(contentsOf: URL(fileURLWithPath: path)), trustedKeys: [key.publicKey])
        #expect(report.isValid, "\(report.problems)")
        #expect(report.entries.map(\.seq) == [1, 2, 3])
        #expect(report.entries.first?.prev == CustodyLog.zeroHash)
        #expect(report.keyPinned)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        // Every line ends with the signature, after the entry's fields.
        for line in try lines(path) { #expect(line.hasSuffix("\"}") && line.contains(",\"sig\":\"")) }

        let other = CustodyLog.check(try Data(contentsOf: URL(fileURLWithPath: path)), trustedKeys: [SigningKey().publicKey])
        #expect(other.problems.count == 3)
        #expect(other.problems.allSatisfy { $0.message.contains("not a trusted key") })
    }

    @Test func anEditedEntryBreaksItsSignatureAndTheNextLink() throws {
        let s = try Scratch()
        defer { s.remove() }
        let path = try log(s, key: SigningKey(), notes: ["first", "second", "third"])
        var l = try lines(path)
        l[1] = l[1].replacingOccurrences(of: "\"second\"", with: "\"edited\"")
        try write(l, to: path)
        let report = CustodyLog.check(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(report.problems.map(\.line) == [2, 3], "\(report.problems)")
        #expect(report.problems[0].message.contains("signature does not verify"))
        #expect(report.problems[1].message.contains("prev does not match"))
        // The appender refuses to extend a broken log.
        #expect(throws: ExportError.self) { _ = try CustodyAppender(path: path) }
    }

    @Test func removedReorderedAndCutEntriesAreFound() throws {
        let s = try Scratch()
        defer { s.remove() }
        let path = try log(s, key: SigningKey())
        let l = try lines(path)

        try write([l[0], l[2]], to: path)
        var r = CustodyLog.check(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(r.problems.map(\.line) == [2, 2])
        #expect(r.problems.contains { $0.message.contains("seq is 3, expected 2") })

        try write([l[1], l[0], l[2]], to: path)
        r = CustodyLog.check(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(r.problems.contains { $0.line == 1 && $0.message.contains("seq is 2, expected 1") })

        try (l[0] + "\n" + l[1].prefix(40)).write(toFile: path, atomically: true, encoding: .utf8)
        r = CustodyLog.check(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(r.problems.contains { $0.message.contains("no newline") })
        #expect(r.problems.contains { $0.line == 2 && $0.message.contains("not a custody entry") })

        // A signature moved from another line does not verify.
        let moved = l[0][..<l[0].range(of: ",\"sig\":\"")!.lowerBound] + l[1][l[1].range(of: ",\"sig\":\"")!.lowerBound...]
        try write([String(moved)], to: path)
        r = CustodyLog.check(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(r.problems.map(\.message).contains { $0.contains("signature does not verify") })
    }

    @Test func defaultPathFollowsTheEnvironment() {
        #expect(CustodyLog.defaultPath(environment: ["TOLLGATE_CUSTODY_LOG": "/x/log.jsonl", "HOME": "/home/i"]) == "/x/log.jsonl")
        #expect(CustodyLog.defaultPath(environment: ["XDG_STATE_HOME": "/state", "HOME": "/home/i"]) == "/state/tollgate/custody.jsonl")
        #expect(CustodyLog.defaultPath(environment: ["HOME": "/home/i"]) == "/home/i/.local/state/tollgate/custody.jsonl")
    }
}
