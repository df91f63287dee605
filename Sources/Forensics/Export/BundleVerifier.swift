import CaptureFormat
import Crypto
import Foundation

/// A bundle's files, from a directory or a tar archive, read without extracting anything.
struct BundleSource {
    enum Location { case disk(String), archive(Range<Int>) }
    let path: String
    let isArchive: Bool
    /// Regular files by their path in the bundle.
    var files: [String: Location] = [:]
    /// Entries that are not regular files (symbolic links, devices…) or have unsafe names, with why.
    var strange: [String: String] = [:]
    var archive = Data()

    init(path: String) throws(ExportError) {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw ExportError.unreadable("\(path): no such file or directory") }
        isArchive = !isDir.boolValue
        if isDir.boolValue {
            try readDirectory()
        } else {
            do { archive = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
                throw ExportError.unreadable("\(path): cannot read: \(error.localizedDescription)")
            }
            try readArchive()
        }
    }

    mutating func readDirectory() throws(ExportError) {
        guard let walker = FileManager.default.enumerator(atPath: path) else { throw ExportError.unreadable("\(path): cannot read directory") }
        while let rel = walker.nextObject() as? String {
            let full = (path as NSString).appendingPathComponent(rel)
            var st = stat()
            guard lstat(full, &st) == 0 else { strange[rel] = "cannot be examined"; continue }
            switch st.st_mode & S_IFMT {
            case S_IFREG: files[rel] = .disk(full)
            case S_IFDIR: continue
            case S_IFLNK: strange[rel] = "is a symbolic link, not a file"
            default: strange[rel] = "is not a regular file"
            }
        }
    }

    mutating func readArchive() throws(ExportError) {
        let entries = try Tar.entries(archive)
        // Bundles are archived under one top-level directory; accept a flat archive too.
        var prefix = ""
        if !entries.contains(where: { $0.name == BundleFormat.manifestName }),
           let m = entries.first(where: { $0.name.hasSuffix("/" + BundleFormat.manifestName) && $0.name.split(separator: "/").count == 2 }) {
            prefix = String(m.name.dropLast(BundleFormat.manifestName.count))
        }
        for e in entries {
            var name = e.name
            if e.kind == .directory { continue }
            guard prefix.isEmpty || name.hasPrefix(prefix) else { strange[name] = "lies outside the bundle's directory \(prefix)"; continue }
            name = String(name.dropFirst(prefix.count))
            guard BundleSource.isSafe(name) else { strange[e.name] = "has an unsafe path"; continue }
            switch e.kind {
            case .file:
                if files[name] != nil { strange[name] = "appears twice in the archive" }
                files[name] = .archive(e.range)
            case .directory: continue
            case .other(let t): strange[name] = "is not a regular file (tar type '\(Character(Unicode.Scalar(t)))')"
            }
        }
    }

    /// Relative, without `..`, `.` or empty components, and not absolute.
    static func isSafe(_ p: String) -> Bool {
        !p.isEmpty && !p.hasPrefix("/") && !p.split(separator: "/", omittingEmptySubsequences: false).contains { $0.isEmpty || $0 == "." || $0 == ".." }
    }

    func data(_ rel: String) throws(ExportError) -> Data {
        switch files[rel] {
        case .disk(let p):
            do { return try Data(contentsOf: URL(fileURLWithPath: p), options: .alwaysMapped) } catch {
                throw ExportError.io("\(rel): cannot read: \(error.localizedDescription)")
            }
        case .archive(let r):
            return archive.subdata(in: r)
        case nil:
            throw ExportError.io("\(rel): not in the bundle")
        }
    }
}

/// One thing `verify` found wrong: which file, which check, and the cause.
public struct BundleFailure: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// signature, key, file, unlisted, capture, integrity, session, derived
    public var check: String
    public var message: String
    public var description: String { "\(file): \(message)" }
}

/// What `sessexport verify` found: every failure, and what held.
public struct BundleReport: Sendable {
    public struct SessionResult: Sendable {
        public var session: String
        public var capture: String
        /// The integrity recomputed now, when the capture could be checked.
        public var integrity: Integrity?
        public var ok: Bool
    }
    public var bundle: String
    public var isArchive = false
    public var manifest: Manifest?
    public var exporterKeyID = ""
    public var signatureValid = false
    /// Whether the manifest's signer was checked against a key given with --key.
    public var exporterPinned = false
    public var captureKeysPinned = false
    public var filesChecked = 0
    public var sessions: [SessionResult] = []
    /// nil: not re-rendered (made by another renderer version); true: identical.
    public var derivedChecked: Bool?
    /// Sessions whose open formats could not be rendered again, because their capture failed.
    public var derivedSkipped: [String] = []
    public var notes: [String] = []
    public var failures: [BundleFailure] = []

    public var isValid: Bool { failures.isEmpty }
    /// Origin is proven only when the exporter's key was pinned and the signature holds.
    public var originProven: Bool { exporterPinned && signatureValid }
}

extension BundleVerifier {
    /// For a manifest that does not decode: whether its signature still holds for the key it names, if any can be found.
    static func signatureNote(_ manifest: Data, _ source: BundleSource) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: manifest) as? [String: Any],
              let pem = (object["exporter"] as? [String: Any])?["public_key_pem"] as? String,
              let key = try? SigningKey.publicKey(pem: pem),
              let sig = try? source.data(BundleFormat.signatureName) else { return "" }
        return SigningKey.verify(signature: [UInt8](sig), message: [UInt8](manifest), publicKey: key)
            ? "; its signature holds for the key it names (\(SigningKey.keyID(of: key))): it was made so, not changed since"
            : "; its signature does not verify: it was changed after it was signed"
    }
}

/// Checks a bundle offline: the manifest's signature, every file against the manifest (hash,
/// size, nothing missing, nothing added), every capture with CaptureFormat's verifier against
/// what the manifest declared (clean, recovered, or truncated at the declared byte), and that
/// the open formats are what the captures render to. Reports every failure, not the first.
public enum BundleVerifier {
    public static func verify(path: String, exporterKeys: [[UInt8]] = [], captureKeys: [[UInt8]] = [],
                              progress: (String) -> Void = { _ in }) throws(ExportError) -> BundleReport {
        let source = try BundleSource(path: path)
        var report = BundleReport(bundle: path)
        report.isArchive = source.isArchive
        func fail(_ file: String, _ check: String, _ message: String) {
            report.failures.append(BundleFailure(file: file, check: check, message: message))
        }

        guard source.files[BundleFormat.manifestName] != nil else {
            throw ExportError.unreadable("\(path): no \(BundleFormat.manifestName): not an evidence bundle")
        }
        let manifestData = try source.data(BundleFormat.manifestName)
        let manifest: Manifest
        do { manifest = try Manifest.decode(manifestData) } catch {
            throw ExportError.unreadable("\(path): \(BundleFormat.manifestName) cannot be read as a manifest (\(error)); nothing in the bundle can be checked without it"
                                         + BundleVerifier.signatureNote(manifestData, source))
        }
        guard manifest.format == BundleFormat.name else {
            throw ExportError.unreadable("\(path): \(BundleFormat.manifestName) is not a Tollgate evidence manifest (format \"\(manifest.format)\")")
        }
        guard manifest.formatVersion <= BundleFormat.version else {
            throw ExportError.unreadable("\(path): bundle format version \(manifest.formatVersion); this sessexport reads version \(BundleFormat.version): upgrade it")
        }
        report.manifest = manifest

        // 1. The manifest's signature, by the key it names and, when pinned, by a trusted key.
        let exporterKey: [UInt8]?
        do { exporterKey = try SigningKey.publicKey(pem: manifest.exporter.publicKeyPem) } catch {
            exporterKey = nil
            fail(BundleFormat.manifestName, "key", "exporter public key in the manifest is not an Ed25519 PEM key: \(error)")
        }
        if let exporterKey {
            report.exporterKeyID = SigningKey.keyID(of: exporterKey)
            if report.exporterKeyID != manifest.exporter.keyId {
                fail(BundleFormat.manifestName, "key", "exporter key_id \(manifest.exporter.keyId) is not the id of the exporter's public key (\(report.exporterKeyID))")
            }
        }
        if source.files[BundleFormat.signatureName] == nil {
            fail(BundleFormat.signatureName, "signature", "missing: the manifest is not signed")
        } else {
            let sig = [UInt8](try source.data(BundleFormat.signatureName))
            if sig.count != 64 {
                fail(BundleFormat.signatureName, "signature", "is \(sig.count) bytes, not a 64-byte Ed25519 signature")
            } else if let exporterKey {
                report.signatureValid = SigningKey.verify(signature: sig, message: [UInt8](manifestData), publicKey: exporterKey)
                if !report.signatureValid {
                    fail(BundleFormat.manifestName, "signature", "signature does not verify with the exporter key \(report.exporterKeyID): manifest.json was changed after it was signed (or manifest.sig was replaced)")
                }
            }
        }
        if !exporterKeys.isEmpty {
            report.exporterPinned = true
            if let exporterKey, !exporterKeys.contains(exporterKey) {
                fail(BundleFormat.manifestName, "key", "signed by exporter key \(report.exporterKeyID), not the trusted key\(exporterKeys.count == 1 ? "" : "s") \(exporterKeys.map { SigningKey.keyID(of: $0) }.joined(separator: ", "))")
            }
        }

        // 2. Files: each listed one present with its size and SHA-256; none unlisted.
        var listed = Set<String>()
        for f in manifest.files {
            guard BundleSource.isSafe(f.path), f.path != BundleFormat.manifestName, f.path != BundleFormat.signatureName else {
                fail(f.path, "file", "the manifest lists an unsafe or reserved path; it was not read")
                continue
            }
            guard listed.insert(f.path).inserted else { fail(f.path, "file", "listed twice in the manifest"); continue }
            guard source.files[f.path] != nil else {
                fail(f.path, "file", source.strange[f.path].map { "listed in the manifest, but it \($0)" } ?? "listed in the manifest but missing from the bundle")
                continue
            }
            progress("checking \(f.path)")
            let data = try source.data(f.path)
            report.filesChecked += 1
            if UInt64(data.count) != f.size {
                fail(f.path, "file", "is \(data.count) bytes, the manifest says \(f.size)")
            }
            let sha = hex(Array(SHA256.hash(data: data)))
            if sha != f.sha256 { fail(f.path, "file", "SHA-256 is \(sha), the manifest says \(f.sha256): the file was changed") }
        }
        for name in source.files.keys.sorted() where !listed.contains(name) && name != BundleFormat.manifestName && name != BundleFormat.signatureName {
            let isCapture = name.hasSuffix(".sesscap") || ((try? source.data(name))?.prefix(4) == Data(CaptureLayout.magic.prefix(4)))
            fail(name, "unlisted", isCapture ? "unlisted capture: present in the bundle but not in the manifest" : "present in the bundle but not listed in the manifest")
        }
        for (name, why) in source.strange.sorted(by: { $0.key < $1.key }) where !listed.contains(name) {
            fail(name, "unlisted", "\(why), and not listed in the manifest")
        }
        if let keyFile = manifest.files.first(where: { $0.path == BundleFormat.exporterKeyName }), source.files[keyFile.path] != nil,
           let exporterKey, let text = String(data: try source.data(keyFile.path), encoding: .utf8) {
            if (try? SigningKey.publicKey(pem: text)) != exporterKey {
                fail(keyFile.path, "key", "is not the exporter key the manifest names (\(report.exporterKeyID))")
            }
        }

        // 3. Captures: verified again, and compared with what the manifest declared.
        report.captureKeysPinned = !captureKeys.isEmpty
        let kinds = Dictionary(manifest.files.map { ($0.path, $0.kind) }, uniquingKeysWith: { a, _ in a })
        var captureSessions = Set<String>()
        var readable: [String: CaptureFile] = [:]
        for (i, s) in manifest.sessions.enumerated() {
            progress("verifying capture \(i + 1)/\(manifest.sessions.count): \(s.capture)")
            var result = BundleReport.SessionResult(session: s.session, capture: s.capture, integrity: nil, ok: false)
            defer { report.sessions.append(result) }
            let before = report.failures.count
            captureSessions.insert(s.capture)
            guard kinds[s.capture] == "capture" else {
                fail(s.capture, "session", "session \(s.session) names a capture that the manifest does not list as one")
                continue
            }
            guard source.files[s.capture] != nil, BundleSource.isSafe(s.capture) else { continue }  // already reported as missing
            let capture: CaptureFile
            do { capture = try CaptureFile(path: s.capture, data: try source.data(s.capture)) } catch let error as CaptureError where error.kind == .corrupt {
                fail(s.capture, "capture", "header at byte \(error.offset ?? 0): \(error.message)")
                continue
            } catch {
                fail(s.capture, "capture", "cannot be read as a capture: \(error)")
                continue
            }
            if capture.header.sessionID != s.session {
                fail(s.capture, "session", "holds session \(capture.header.sessionID), the manifest says \(s.session)")
            }
            switch IntegrityCheck.check(capture, trustedKeys: captureKeys) {
            case .accepted(let now):
                result.integrity = now
                for d in now.differences(fromDeclared: s.integrity) { fail(s.capture, "integrity", d) }
                readable[s.capture] = capture
            case .damaged(let problems):
                for p in problems.prefix(20) { fail(s.capture, "capture", "\(p)") }
                if problems.count > 20 { fail(s.capture, "capture", "and \(problems.count - 20) more problems") }
            }
            result.ok = report.failures.count == before
        }
        for f in manifest.files where f.kind == "capture" && !captureSessions.contains(f.path) {
            fail(f.path, "session", "a capture listed in the manifest without a session entry")
        }

        // 4. The open formats, rendered again from the captures.
        if manifest.tool.renderVersion == BundleFormat.renderVersion {
            report.derivedChecked = true
            let listedByPath = Dictionary(manifest.files.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            for s in manifest.sessions {
                guard let capture = readable[s.capture] else { report.derivedSkipped.append(s.session); continue }
                progress("rendering \(s.session)")
                guard let dir = s.files.first.map({ ($0 as NSString).deletingLastPathComponent }) else {
                    fail(s.capture, "derived", "session \(s.session) lists no rendered files")
                    continue
                }
                let rendered = try SessionRenderer.render(capture, capturePath: s.capture) { (_: String) throws(ExportError) in try DigestWriter(path: nil) }
                let expected = Set(rendered.files.map { dir + "/" + $0.name })
                for f in rendered.files {
                    let p = dir + "/" + f.name
                    guard let entry = listedByPath[p], s.files.contains(p) else {
                        fail(p, "derived", "the capture renders this file, but the bundle does not list it")
                        continue
                    }
                    if entry.sha256 != f.sha256 || entry.size != f.size {
                        fail(p, "derived", "is not what \(s.capture) renders to: the file was made from something else or edited before signing")
                    }
                }
                for p in s.files where !expected.contains(p) {
                    fail(p, "derived", "listed as rendered from \(s.capture), but the capture renders no such file")
                }
            }
            if report.failures.contains(where: { $0.check == "derived" }) { report.derivedChecked = false }
        } else {
            report.notes.append("open formats not re-rendered: the bundle was made by renderer version \(manifest.tool.renderVersion), this is \(BundleFormat.renderVersion)")
        }
        report.notes.append("report.html is checked by its hash only: it is the exporter's rendering, not re-derived")
        return report
    }
}
