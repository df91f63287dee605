import CaptureFormat
import Crypto
import Foundation

// The chain-of-custody log: one JSON line per export (who, when, what — every capture with
// its SHA-256 —, why), appended by every `sessexport` run.
//
// Entries are hash-chained and signed, because an auditor wants to know not only what a log
// says but that nobody edited it afterwards:
// - `seq` counts from 1 without gaps; `prev` is the SHA-256 (hex) of the previous line's exact
//   bytes without its newline (64 zeros for the first entry). Changing, removing or reordering
//   an entry breaks the link after it.
// - `sig` is an Ed25519 signature by the exporter's key over the 20 bytes
//   "tollgate-custody-v1\0" followed by the line's bytes before `,"sig":"` — the line is the
//   entry's JSON (sorted keys, no spaces) with `sig` appended last. A literal `,"sig":"` can
//   only appear there: inside a JSON string a quote is always escaped.
// - The bundle's manifest names its entry number and the hash of the entry before it, and the
//   entry holds the manifest's SHA-256 and signature, so log and bundle vouch for each other.
// What a chain cannot show by itself is entries cut off the end; a bundle's manifest proves
// that the log had at least its entry.

public struct CustodyEntry: Codable, Sendable, Equatable {
    public struct Who: Codable, Sendable, Equatable {
        public var name: String
        public var user: String
        public var uid: UInt32
        public var host: String
    }
    public struct Bundle: Codable, Sendable, Equatable {
        public var path: String
        /// directory or tar
        public var format: String
        /// SHA-256 of the archive, for a tar bundle.
        public var sha256: String?
        public var manifestSha256: String
        /// manifest.sig, base64.
        public var manifestSignature: String

        enum CodingKeys: String, CodingKey {
            case path, format, sha256
            case manifestSha256 = "manifest_sha256"
            case manifestSignature = "manifest_signature"
        }
    }
    public struct File: Codable, Sendable, Equatable {
        public var path: String
        public var source: String
        public var sha256: String
        public var size: UInt64
        public var session: String
    }

    public var v: Int = 1
    public var seq: Int
    public var time: String
    public var action: String = "export"
    public var who: Who
    public var exporterKeyId: String
    /// Raw Ed25519 public key, base64: what `sig` verifies against.
    public var exporterPublicKey: String
    public var `case`: CaseInfo?
    public var bundle: Bundle
    public var files: [File]
    public var sessions: [String]
    public var prev: String

    enum CodingKeys: String, CodingKey {
        case v, seq, time, action, who, `case`, bundle, files, sessions, prev
        case exporterKeyId = "exporter_key_id"
        case exporterPublicKey = "exporter_public_key"
    }
}

public enum CustodyLog {
    public static let context = Array("tollgate-custody-v1\u{0}".utf8)
    static let sigMarker = Array(",\"sig\":\"".utf8)
    public static let zeroHash = String(repeating: "0", count: 64)

    /// `$TOLLGATE_CUSTODY_LOG`, else `$XDG_STATE_HOME/tollgate/custody.jsonl`, else
    /// `~/.local/state/tollgate/custody.jsonl`: the exporter's own log, outside every bundle
    /// (a bundle is sealed when made; the log keeps growing).
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let p = environment["TOLLGATE_CUSTODY_LOG"], !p.isEmpty { return p }
        let state = environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".local/state")
        return (state as NSString).appendingPathComponent("tollgate/custody.jsonl")
    }

    /// The line for `entry`, signed by `key` (without the newline).
    public static func line(_ entry: CustodyEntry, key: SigningKey) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var body = Array(try e.encode(entry))
        guard body.last == UInt8(ascii: "}") else { throw ExportError.io("custody entry did not encode as an object") }
        body.removeLast()
        let signature = key.sign(context + body)
        return body + sigMarker + Array(Data(signature).base64EncodedString().utf8) + Array("\"}".utf8)
    }

    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        /// 1-based line number.
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// What checking a log found: its entries (as far as they parse) and every problem.
    public struct Report: Sendable {
        public var entries: [CustodyEntry] = []
        public var problems: [Problem] = []
        /// seq and line hash of the last line, for the next entry.
        public var lastSeq = 0
        public var lastHash = CustodyLog.zeroHash
        /// Whether the signatures were checked against pinned keys as well as the key each entry names.
        public var keyPinned = false
        public var isValid: Bool { problems.isEmpty }
    }

    /// Checks every line: JSON, seq without gaps, the hash link, and the signature (against the key the
    /// entry names and, when `trustedKeys` is not empty, that the key is one of them).
    public static func check(_ data: Data, trustedKeys: [[UInt8]] = []) -> Report {
        var report = Report()
        report.keyPinned = !trustedKeys.isEmpty
        let bytes = [UInt8](data)
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        if !bytes.isEmpty && bytes.last != 0x0A {
            report.problems.append(Problem(line: lines.count, message: "the last line has no newline: an append was cut off"))
        }
        var expectedSeq = 1
        var prevHash = zeroHash
        for (i, raw) in lines.enumerated() {
            let n = i + 1
            if raw.isEmpty { report.problems.append(Problem(line: n, message: "empty line")); continue }
            let line = Array(raw)
            let hash = hex(Array(SHA256.hash(data: line)))
            defer { prevHash = hash; report.lastHash = hash }
            let entry: CustodyEntry
            do {
                entry = try JSONDecoder().decode(CustodyEntry.self, from: Data(line))
            } catch {
                report.problems.append(Problem(line: n, message: "not a custody entry: \(error)"))
                expectedSeq += 1
                continue
            }
            report.entries.append(entry)
            report.lastSeq = entry.seq
            if entry.seq != expectedSeq {
                report.problems.append(Problem(line: n, message: "seq is \(entry.seq), expected \(expectedSeq): entries are missing, added or out of order"))
            }
            expectedSeq = entry.seq + 1
            if entry.prev != prevHash {
                report.problems.append(Problem(line: n, message: "prev does not match the previous line's SHA-256: the line before it was changed, removed or inserted"))
            }
            guard let at = lastIndex(of: sigMarker, in: line),
                  let sigText = String(validating: line[(at + sigMarker.count)...].dropLast(2), as: UTF8.self),
                  line.suffix(2) == Array("\"}".utf8),
                  let signature = Data(base64Encoded: sigText).map(Array.init),
                  let publicKey = Data(base64Encoded: entry.exporterPublicKey).map(Array.init) else {
                report.problems.append(Problem(line: n, message: "no signature at the end of the line"))
                continue
            }
            if !SigningKey.verify(signature: signature, message: context + Array(line[..<at]), publicKey: publicKey) {
                report.problems.append(Problem(line: n, message: "signature does not verify with the key the entry names (\(SigningKey.keyID(of: publicKey))): the entry was changed"))
            } else if SigningKey.keyID(of: publicKey) != entry.exporterKeyId {
                report.problems.append(Problem(line: n, message: "exporter_key_id \(entry.exporterKeyId) is not the id of the entry's key"))
            }
            if !trustedKeys.isEmpty && !trustedKeys.contains(publicKey) {
                report.problems.append(Problem(line: n, message: "signed by key \(SigningKey.keyID(of: publicKey)), which is not a trusted key"))
            }
        }
        return report
    }

    static func lastIndex(of needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        var i = hay.count - needle.count
        while i >= 0 {
            if hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
            i -= 1
        }
        return nil
    }
}

/// The log opened for one export: locked (flock) from before the manifest names its entry until
/// the entry is written, so two exports cannot take the same number.
public final class CustodyAppender {
    public let path: String
    let fd: Int32
    public let head: CustodyLog.Report

    /// Opens (creating it, mode 0600, and its directory, 0700) and locks the log, and checks it:
    /// a broken chain is refused, so that no export extends a log that cannot be trusted.
    public init(path: String) throws(ExportError) {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty && !FileManager.default.fileExists(atPath: dir) {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
                throw ExportError.io("\(dir): cannot create the custody log's directory: \(error.localizedDescription)")
            }
        }
        let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ExportError.io("\(path): cannot open the custody log: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX) == 0 else {
            close(fd)
            throw ExportError.io("\(path): cannot lock the custody log: \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        let data = FileManager.default.contents(atPath: path) ?? Data()
        head = CustodyLog.check(data)
        if let first = head.problems.first {
            throw ExportError.unreadable("custody log \(path) is broken at \(first) (\(head.problems.count) problem\(head.problems.count == 1 ? "" : "s"); `sessexport custody --log \(path)` lists them): not appending to it")
        }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }

    public var nextSeq: Int { head.lastSeq + 1 }

    /// Appends the entry as one line in one write, then syncs.
    public func append(_ entry: CustodyEntry, key: SigningKey) throws(ExportError) {
        var line: [UInt8]
        do { line = try CustodyLog.line(entry, key: key) } catch { throw ExportError.io("custody entry: \(error)") }
        line.append(0x0A)
        let n = line.withUnsafeBytes { write(fd, $0.baseAddress!, line.count) }
        guard n == line.count else { throw ExportError.io("\(path): custody entry not fully written (\(n) of \(line.count) bytes)") }
        guard fsync(fd) == 0 else { throw ExportError.io("\(path): fsync failed") }
    }
}
