import CaptureFormat
import Crypto
import Foundation

/// What to export, where, and on whose authority.
public struct ExportRequest: Sendable {
    /// The bundle directory to create, or with `tar` the archive file.
    public var output: String
    public var tar: Bool
    public var caseInfo: CaseInfo?
    /// The exporter's name as they give it (an e-mail); defaults to the account name.
    public var exporterName: String?
    public var selection: CaptureSelection
    /// Proxy keys the captures must be signed by; empty: checked against the key each file names.
    public var captureKeys: [[UInt8]]
    public var custodyLog: String
    /// The export time (µs since the epoch): the manifest's time and every mtime in a tar.
    public var now: Int64

    public init(output: String, tar: Bool = false, caseInfo: CaseInfo? = nil, exporterName: String? = nil, selection: CaptureSelection,
                captureKeys: [[UInt8]] = [], custodyLog: String = CustodyLog.defaultPath(), now: Int64 = nowMicros()) {
        self.output = output; self.tar = tar; self.caseInfo = caseInfo; self.exporterName = exporterName; self.selection = selection
        self.captureKeys = captureKeys; self.custodyLog = custodyLog; self.now = now
    }
}

public struct ExportResult: Sendable {
    public var output: String
    public var manifest: Manifest
    public var manifestSHA256: String
    public var custodyEntry: Int
    public var custodyLog: String
    /// SHA-256 of the archive, with --tar.
    public var archiveSHA256: String?
}

/// Writes evidence bundles. The bundle is built under a temporary name next to the output and
/// renamed into place at the end, so a half-written bundle never appears under the final name;
/// nothing existing is overwritten.
///
/// Layout:
///
///     manifest.json            what is in the bundle, signed by manifest.sig
///     manifest.sig             Ed25519 signature of manifest.json's bytes (64 bytes, raw)
///     exporter-public.pem      the exporter's public key (also in the manifest)
///     report.html              the human report
///     captures/NAME.sesscap    the captures, byte for byte
///     sessions/ID/events.jsonl, exchanges.csv, statements.sql, http.har, exec-xN.cast
public enum Exporter {
    /// `warn` hears what the selection's filter reports about captures it could not fully read.
    public static func export(_ request: ExportRequest, key: SigningKey, progress: (String) -> Void = { _ in },
                              warn: (String) -> Void = { _ in }) async throws(ExportError) -> ExportResult {
        let fm = FileManager.default
        guard !fm.fileExists(atPath: request.output) else {
            throw ExportError.usage("\(request.output) exists: an evidence bundle is never overwritten; choose a new --out")
        }
        let parent = (request.output as NSString).deletingLastPathComponent
        if !parent.isEmpty && !fm.fileExists(atPath: parent) { throw ExportError.usage("\(parent): no such directory") }
        let paths = try await request.selection.resolve(warn: warn)
        guard !paths.isEmpty else { throw ExportError.check("no capture matched the selection: nothing exported") }

        let custody = try CustodyAppender(path: request.custodyLog)
        let staging = request.output + ".partial-\(getpid())"
        let root = request.tar ? staging + ".d" : staging
        do {
            try fm.createDirectory(atPath: root + "/captures", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try fm.createDirectory(atPath: root + "/sessions", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            // The bundle holds what the captures hold: only its owner reads it until it is handed over.
            try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: root)
        } catch {
            throw ExportError.io("\(root): cannot create the bundle directory: \(error.localizedDescription)")
        }
        do {
            let result = try build(request, paths: paths, root: root, staging: staging, key: key, custody: custody, progress: progress)
            return result
        } catch {
            try? fm.removeItem(atPath: root)
            try? fm.removeItem(atPath: staging)
            throw error
        }
    }

    static func build(_ request: ExportRequest, paths: [String], root: String, staging: String, key: SigningKey, custody: CustodyAppender,
                      progress: (String) -> Void) throws(ExportError) -> ExportResult {
        var files: [FileEntry] = []
        var sessions: [SessionEntry] = []
        var reportSessions: [ReportSession] = []
        var refused: [String] = []
        var usedCaptureNames = Set<String>(), usedSessionDirs = Set<String>()
        var digests: [String: String] = [:]  // sha256 → bundle path, to drop a file selected twice under two names
        var keys: [String: (pem: String, roles: Set<String>, sessions: Set<String>)] = [:]
        var custodyFiles: [CustodyEntry.File] = []
        let limits = ReportLimits.forSessions(paths.count)

        for (i, source) in paths.enumerated() {
            progress("exporting \(i + 1)/\(paths.count): \(source)")
            let name = unique(sanitize((source as NSString).lastPathComponent, fallback: "capture.sesscap"), in: &usedCaptureNames)
            let rel = "captures/" + name
            let (sha, size) = try copy(source, to: root + "/" + rel)
            if let earlier = digests[sha] {
                try? FileManager.default.removeItem(atPath: root + "/" + rel)
                usedCaptureNames.remove(name)
                progress("\(source) is the same file as \(earlier): kept once")
                continue
            }
            digests[sha] = rel
            // Everything below reads the bundle's copy, so what is described is what is delivered.
            let capture: CaptureFile
            do { capture = try CaptureFile(path: root + "/" + rel) } catch { throw ExportError.capture("\(source): \(error)") }
            let integrity: Integrity
            switch IntegrityCheck.check(capture, trustedKeys: request.captureKeys) {
            case .accepted(let ok):
                integrity = ok
            case .damaged(let problems):
                refused.append("\(source): " + problems.prefix(5).map(\.description).joined(separator: "; ")
                               + (problems.count > 5 ? "; and \(problems.count - 5) more" : ""))
                continue
            }
            let h = capture.header
            let dir = "sessions/" + unique(sanitize(h.sessionID, fallback: "session"), in: &usedSessionDirs)
            do { try FileManager.default.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: false) } catch {
                throw ExportError.io("\(root)/\(dir): cannot create: \(error.localizedDescription)")
            }
            let rendering = try SessionRenderer.render(capture, capturePath: rel, timeline: limits.timeline) { (n) throws(ExportError) in
                try DigestWriter(path: root + "/" + dir + "/" + n)
            }
            let summary: SessionSummary
            do { summary = try capture.summary() } catch { throw ExportError.capture("\(source): \(error)") }
            files.append(FileEntry(path: rel, sha256: sha, size: size, kind: "capture", session: h.sessionID))
            for f in rendering.files {
                files.append(FileEntry(path: dir + "/" + f.name, sha256: f.sha256, size: f.size, kind: f.kind, session: h.sessionID))
            }
            let entry = sessionEntry(capture, summary: summary, integrity: integrity, capturePath: rel,
                                     source: absolute(source), rendering: rendering, directory: dir)
            sessions.append(entry)
            reportSessions.append(ReportSession(entry: entry, directory: dir, rendering: rendering, limits: limits))
            custodyFiles.append(CustodyEntry.File(path: rel, source: absolute(source), sha256: sha, size: size, session: h.sessionID))

            keys[h.signingKeyID, default: (SigningKey.publicKeyPEM(h.signingPublicKey), [], [])].roles.insert("capture-signer")
            keys[h.signingKeyID]!.sessions.insert(h.sessionID)
            if let sealer = capture.trailer?.sealerPublicKey {
                let id = SigningKey.keyID(of: sealer)
                keys[id, default: (SigningKey.publicKeyPEM(sealer), [], [])].roles.insert(integrity.state == .recovered ? "recovery-sealer" : "sealer")
                keys[id]!.sessions.insert(h.sessionID)
            }
        }
        if !refused.isEmpty {
            throw ExportError.check("refused \(refused.count) capture\(refused.count == 1 ? "" : "s") that did not verify (only clean, recovered or truncated captures are exported; nothing was written):\n  "
                                    + refused.joined(separator: "\n  "))
        }

        let exporter = identity(request.exporterName, key: key)
        let created = isoTime(micros: request.now)
        let pem = key.publicKeyPEM
        try writeFile(root + "/" + BundleFormat.exporterKeyName, Array(pem.utf8), into: &files, kind: "key", root: root)
        let report = HTMLReport(created: created, exporter: exporter, caseInfo: request.caseInfo, selection: request.selection.description,
                                sessions: reportSessions)
        try writeFile(root + "/" + BundleFormat.reportName, Array(report.render().utf8), into: &files, kind: "report", root: root)
        files.sort { $0.path < $1.path }

        let custodyRef = CustodyReference(log: absolute(request.custodyLog), entry: custody.nextSeq, previousEntrySha256: custody.head.lastHash)
        let manifest = Manifest(tool: .current, created: created, exporter: exporter, case: request.caseInfo, selection: request.selection.description,
                                custody: custodyRef,
                                signingKeys: keys.keys.sorted().map { KeyInfo(keyId: $0, publicKeyPem: keys[$0]!.pem, roles: keys[$0]!.roles.sorted(), sessions: keys[$0]!.sessions.sorted()) },
                                files: files, sessions: sessions)
        let manifestBytes: [UInt8]
        do { manifestBytes = try manifest.encoded() } catch { throw ExportError.io("manifest: \(error)") }
        let signature = key.sign(manifestBytes)
        try writeRaw(root + "/" + BundleFormat.manifestName, manifestBytes)
        try writeRaw(root + "/" + BundleFormat.signatureName, signature)
        let manifestSHA = hex(Array(SHA256.hash(data: manifestBytes)))

        var archiveSHA: String?
        if request.tar {
            progress("writing \(request.output)")
            let prefix = sanitize(((request.output as NSString).lastPathComponent as NSString).deletingPathExtension, fallback: "evidence")
            let order = [BundleFormat.manifestName, BundleFormat.signatureName] + files.map(\.path)
            archiveSHA = try Tar.write(root: root, files: order, prefix: prefix, mtime: request.now / 1_000_000, to: staging)
            try rename(staging, request.output)
            try? FileManager.default.removeItem(atPath: root)
        } else {
            try rename(root, request.output)
        }

        let entry = CustodyEntry(seq: custody.nextSeq, time: created,
                                 who: .init(name: exporter.name, user: exporter.user, uid: exporter.uid, host: exporter.host),
                                 exporterKeyId: key.keyID, exporterPublicKey: Data(key.publicKey).base64EncodedString(), case: request.caseInfo,
                                 bundle: .init(path: absolute(request.output), format: request.tar ? "tar" : "directory", sha256: archiveSHA,
                                               manifestSha256: manifestSHA, manifestSignature: Data(signature).base64EncodedString()),
                                 files: custodyFiles, sessions: sessions.map(\.session), prev: custody.head.lastHash)
        do {
            try custody.append(entry, key: key)
        } catch {
            // A bundle the custody log does not know must not be handed over.
            try? FileManager.default.removeItem(atPath: request.output)
            throw error
        }
        return ExportResult(output: request.output, manifest: manifest, manifestSHA256: manifestSHA, custodyEntry: entry.seq,
                            custodyLog: custody.path, archiveSHA256: archiveSHA)
    }

    static func sessionEntry(_ capture: CaptureFile, summary s: SessionSummary, integrity: Integrity, capturePath: String, source: String,
                             rendering: SessionRendering, directory: String) -> SessionEntry {
        let h = capture.header
        let dict = { (c: [NamedCount]) in Dictionary(c.map { ($0.name, $0.count) }, uniquingKeysWith: +) }
        return SessionEntry(session: h.sessionID, capture: capturePath, sourcePath: source, captureFormat: "\(capture.majorVersion).\(capture.minorVersion)",
                            subject: h.subject, groups: h.groups, issuer: h.issuer, target: h.target, protocol: h.protocolName, proxy: h.proxyID,
                            writer: h.writer, start: isoTime(micros: h.startMicros),
                            firstEvent: s.eventCount > 0 ? isoTime(micros: s.firstMicros) : nil,
                            lastEvent: s.eventCount > 0 ? isoTime(micros: s.lastMicros) : nil,
                            events: s.eventCount, exchanges: s.exchanges, errors: s.errors, kinds: dict(s.kindCounts), decisions: dict(s.decisionCounts),
                            approvals: rendering.approvals, masked: dict(s.maskedCounts), resources: s.resources,
                            requestBytes: s.requestBytes, responseBytes: s.responseBytes, endReason: s.endReason, integrity: integrity,
                            files: rendering.files.map { directory + "/" + $0.name })
    }

    /// Who is exporting: the given name (else the account), the account, uid and host.
    static func identity(_ name: String?, key: SigningKey) -> ExporterInfo {
        let uid = geteuid()
        var user = ProcessInfo.processInfo.environment["USER"] ?? ""
        if let pw = getpwuid(uid), let n = pw.pointee.pw_name { user = String(cString: n) }
        var host = [CChar](repeating: 0, count: 256)
        let hostName = gethostname(&host, host.count) == 0
            ? String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : ProcessInfo.processInfo.hostName
        return ExporterInfo(name: name ?? user, user: user, uid: uid, host: hostName, keyId: key.keyID, publicKeyPem: key.publicKeyPEM)
    }

    /// A file name made only of letters, digits, `.`, `_` and `-` (names in a bundle come from
    /// captures, which may be hostile: no `/`, no `..`, no leading dot).
    static func sanitize(_ name: String, fallback: String) -> String {
        var s = String(name.unicodeScalars.map { u -> Character in
            (("0"..."9").contains(u) || ("a"..."z").contains(u) || ("A"..."Z").contains(u) || u == "." || u == "_" || u == "-") ? Character(u) : "_"
        }.prefix(120))
        while s.hasPrefix(".") { s.removeFirst() }
        return s.isEmpty ? fallback : s
    }

    static func unique(_ name: String, in used: inout Set<String>) -> String {
        var candidate = name
        var n = 2
        let ext = (name as NSString).pathExtension, stem = (name as NSString).deletingPathExtension
        while used.contains(candidate) {
            candidate = ext.isEmpty ? "\(name)-\(n)" : "\(stem)-\(n).\(ext)"
            n += 1
        }
        used.insert(candidate)
        return candidate
    }

    static func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

    /// Copies `source` to `dest` byte for byte, hashing what is written.
    static func copy(_ source: String, to dest: String) throws(ExportError) -> (String, UInt64) {
        guard let input = FileHandle(forReadingAtPath: source) else { throw ExportError.io("\(source): cannot read") }
        defer { try? input.close() }
        let out = try DigestWriter(path: dest)
        while true {
            let chunk: Data
            do { chunk = try input.read(upToCount: 1 << 20) ?? Data() } catch { throw ExportError.io("\(source): read failed: \(error)") }
            if chunk.isEmpty { break }
            try out.write(bytes: Array(chunk))
        }
        return (try out.finish(), out.size)
    }

    static func writeFile(_ path: String, _ bytes: [UInt8], into files: inout [FileEntry], kind: String, root: String) throws(ExportError) {
        let w = try DigestWriter(path: path)
        try w.write(bytes: bytes)
        files.append(FileEntry(path: String(path.dropFirst(root.count + 1)), sha256: try w.finish(), size: w.size, kind: kind, session: nil))
    }

    static func writeRaw(_ path: String, _ bytes: [UInt8]) throws(ExportError) {
        let w = try DigestWriter(path: path)
        try w.write(bytes: bytes)
        _ = try w.finish()
    }

    static func rename(_ from: String, _ to: String) throws(ExportError) {
        // rename(2) would replace an existing file: link/unlink semantics are not needed, but refuse a race.
        guard !FileManager.default.fileExists(atPath: to) else { throw ExportError.usage("\(to) appeared during the export: not replacing it") }
        guard Foundation.rename(from, to) == 0 else { throw ExportError.io("cannot rename \(from) to \(to): \(String(cString: strerror(errno)))") }
    }
}
