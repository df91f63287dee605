import CaptureFormat
import Foundation

/// Errors from the jobs below, with a message meant for a person.
public struct SyntheticError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Writes one generated session as a capture file; returns the events written and the file size.
@discardableResult
public func writeCapture(_ generator: SessionGenerator, to path: String, key: SigningKey,
                         options: WriterOptions = WriterOptions()) throws -> (events: Int, bytes: Int) {
    var g = generator
    let writer = try CaptureWriter(path: path, header: g.header, key: key, options: options)
    var n = 0
    while let e = g.next() {
        try writer.append(e)
        n += 1
    }
    try writer.close()
    return (n, fileSize(path))
}

func fileSize(_ path: String) -> Int {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : 0
}

/// Appends lines to a file through a buffer.
final class LineFile {
    let fd: Int32
    let path: String
    var buffer: [UInt8] = []
    private(set) var bytesWritten = 0

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SyntheticError("\(path): cannot create: \(String(cString: strerror(errno)))") }
        buffer.reserveCapacity(1 << 20)
    }

    func append(_ s: String) throws {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 1 << 20 { try flush() }
    }

    func flush() throws {
        var done = 0
        while done < buffer.count {
            let n = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + done, buffer.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SyntheticError("\(path): write failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
        bytesWritten += buffer.count
        buffer.removeAll(keepingCapacity: true)
    }

    func close() throws {
        try flush()
        Foundation.close(fd)
    }
}

/// One event as a JSON line tagged with its session, subject and target, as a gate's JSON log
/// would carry them: `{"session":"…","subject":"…","target":"…",` then the fields of `Event.jsonLine()`.
public func sessionJSONLine(_ event: Event, header: SessionHeader) -> String {
    var w = JSONWriter()
    w.object { o in
        o.string("session", header.sessionID); o.string("subject", header.subject); o.string("target", header.target)
        event.writeJSON(&o)
    }
    return w.text + "\n"
}

/// One event as a JSON line tagged with its session: `{"session":"…",` then the
/// fields of `Event.jsonLine()`.
public func sessionJSONLine(_ event: Event, sessionID: String) -> String {
    let line = event.jsonLine()
    return "{\"session\":\"\(sessionID)\"," + line.dropFirst() + "\n"
}

// MARK: - Samples

public enum Samples {
    public struct Written: Sendable {
        public var name: String
        public var path: String
        public var events: Int
        public var bytes: Int
        public var description: String
    }

    /// The sample captures: small, with several blocks each, covering every event kind.
    public static let files: [(name: String, description: String)] = [
        ("postgres-analytics.sesscap", "AI assistant on analytics-db: prompt annotations, SELECTs with joins, masked personal data, writes held for review, a destructive statement denied, database errors"),
        ("kubernetes-exec.sesscap", "kubectl on prod-cluster: list and get, logs capped at 8 KiB with the digest of the rest, exec with approval and stdin/stdout streams, a denied secrets list"),
        ("denied-review.sesscap", "contractor on orders-db: personal data denied, writes reviewed (granted, denied, expired), DDL denied"),
        ("truncated.sesscap", "on-call developer on orders-db, cut in the middle of a block as by a crash: readable up to its last whole block, recoverable"),
    ]

    /// Block size for samples: small, so that each sample has several blocks.
    public static let blockTargetBytes = 6 * 1024

    /// Writes the samples and the public key into `dir`, replacing earlier samples there.
    public static func write(to dir: String, key: SigningKey) throws -> [Written] {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var options = WriterOptions()
        options.blockTargetBytes = blockTargetBytes
        var written: [Written] = []
        func path(_ name: String) -> String { (dir as NSString).appendingPathComponent(name) }
        for (name, _) in files { try? FileManager.default.removeItem(atPath: path(name)) }

        let day = Civil.micros(year: 2026, month: 11, day: 20)
        let h: Int64 = 3_600_000_000

        // Seeds are searched from a fixed start until the session shows what the sample is for.
        let analytics = firstSession(from: 101, start: day + 9 * h + 843_000_000, profile: .analyticsAssistant, length: .exchanges(36)) { events in
            events.contains { if case .decision(let d) = $0.payload { d.action == .review } else { false } }
                && events.contains { if case .decision(let d) = $0.payload { d.action == .deny } else { false } }
                && events.contains { if case .response(.postgres(let r)) = $0.payload { r.error != nil && r.error!.sqlState != "42501" } else { false } }
                && events.contains { if case .maskSummary = $0.payload { true } else { false } }
        }
        let k8s = firstSession(from: 202, start: day + 10 * h + 1_207_000_000, profile: .kubernetes, length: .exchanges(12)) { events in
            events.contains { if case .request(.kubernetes(let k)) = $0.payload { k.subresource == "exec" && k.command == ["/bin/sh"] } else { false } }
                && events.contains { if case .approval(let a) = $0.payload { a.state == .granted } else { false } }
                && events.contains { if case .streamChunk(let s) = $0.payload { s.stream == .stdin } else { false } }
                && events.contains { if case .response(.http(let r)) = $0.payload { r.body.isTruncated } else { false } }
                && events.contains { if case .decision(let d) = $0.payload { d.action == .deny } else { false } }
        }
        let restricted = firstSession(from: 303, start: day + 13 * h + 2_411_000_000, profile: .restricted, length: .exchanges(24)) { events in
            let states = Set(events.compactMap { if case .approval(let a) = $0.payload { a.state } else { nil } })
            return states.contains(.granted) && states.contains(.denied)
                && events.contains { if case .decision(let d) = $0.payload { d.action == .deny } else { false } }
        }
        let crashed = firstSession(from: 404, start: day + 15 * h + 302_000_000, profile: .ordersOncall, length: .exchanges(40)) { events in
            events.contains { if case .request(.postgres(let p)) = $0.payload { p.statementKinds == ["begin"] } else { false } }
        }

        for (i, g) in [analytics, k8s, restricted].enumerated() {
            let (name, description) = files[i]
            let (events, bytes) = try writeCapture(g, to: path(name), key: key, options: options)
            written.append(Written(name: name, path: path(name), events: events, bytes: bytes, description: description))
        }

        // The truncated sample: a whole capture written aside, then cut in the middle of a block.
        let (name, description) = files[3]
        let whole = path(".truncated-whole.tmp")
        try? FileManager.default.removeItem(atPath: whole)
        defer { try? FileManager.default.removeItem(atPath: whole) }
        try writeCapture(crashed, to: whole, key: key, options: options)
        let capture = try CaptureFile(path: whole)
        guard capture.blocks.count >= 3 else { throw SyntheticError("truncated sample: expected at least 3 blocks, got \(capture.blocks.count)") }
        let victim = capture.blocks[capture.blocks.count - 2]
        let cut = Int(victim.offset) + Int(victim.length) / 2
        let bytes = try Data(contentsOf: URL(fileURLWithPath: whole)).prefix(cut)
        try writePrivateFile(path(name), Array(bytes))
        let kept = capture.blocks.prefix(capture.blocks.count - 2).reduce(0) { $0 + Int($1.eventCount) }
        written.append(Written(name: name, path: path(name), events: kept, bytes: cut,
                               description: description + " (cut at byte \(cut), inside block \(capture.blocks.count - 2) (0-based) of \(capture.blocks.count); \(kept) events in whole blocks)"))

        let pem = path("signing-public.pem")
        try? FileManager.default.removeItem(atPath: pem)
        try key.publicKeyPEM.write(toFile: pem, atomically: true, encoding: .utf8)
        return written
    }

    static func firstSession(from seed: UInt64, start: Int64, profile: SessionProfile, length: SessionLength,
                             where wanted: ([Event]) -> Bool) -> SessionGenerator {
        var s = seed
        while true {
            let g = SessionGenerator(seed: s, start: start, profile: profile, length: length)
            if wanted(Array(g)) { return g }
            s += 1
        }
    }
}

/// Writes a whole file at once, created with mode 0600 like a capture.
func writePrivateFile(_ path: String, _ bytes: [UInt8]) throws {
    let f = try LineFile(path: path)
    f.buffer = bytes
    try f.close()
}

// MARK: - Corpora

public struct CorpusOptions: Sendable {
    public var directory: String
    public var sessions: Int
    public var eventsPerSession: Int
    public var seed: UInt64
    /// Start of the first session, microseconds since the epoch.
    public var start: Int64
    /// nil: a mix of profiles.
    public var profile: SessionProfile?
    public var writer: WriterOptions
    /// Also write every event as JSON Lines here.
    public var jsonlPath: String?
    /// Also write each session's events as JSON Lines to DIR/SESSION-ID.jsonl, each line carrying
    /// the session's subject and target (what a log-based baseline needs to answer the same questions).
    public var jsonlDirectory: String?
    /// Files under YYYY/MM/DD/ (true) or all in the directory.
    public var dated: Bool

    public init(directory: String, sessions: Int, eventsPerSession: Int, seed: UInt64, start: Int64,
                profile: SessionProfile? = nil, writer: WriterOptions = WriterOptions(), jsonlPath: String? = nil, dated: Bool = true,
                jsonlDirectory: String? = nil) {
        self.directory = directory; self.sessions = sessions; self.eventsPerSession = eventsPerSession; self.seed = seed
        self.start = start; self.profile = profile; self.writer = writer; self.jsonlPath = jsonlPath; self.dated = dated
        self.jsonlDirectory = jsonlDirectory
    }
}

public struct CorpusResult: Sendable {
    public var files: [String] = []
    public var events = 0
    public var bytes = 0
    public var jsonlBytes = 0
    public var seconds = 0.0
}

public enum Corpus {
    /// The generators of a corpus: session i's seed and start follow from the corpus seed alone.
    public static func generators(sessions: Int, eventsPerSession: Int, seed: UInt64, start: Int64,
                                  profile: SessionProfile?) -> [SessionGenerator] {
        var master = SyntheticRandom(seed: seed)
        var t = start
        var out: [SessionGenerator] = []
        out.reserveCapacity(sessions)
        for _ in 0..<sessions {
            out.append(SessionGenerator(seed: master.next(), start: t, profile: profile, length: .events(eventsPerSession)))
            t += Int64(master.logUniform(2, 600) * 1_000_000)
        }
        return out
    }

    public static func relativePath(for header: SessionHeader, dated: Bool) -> String {
        let name = header.sessionID + ".sesscap"
        guard dated else { return name }
        let c = Civil(micros: header.startMicros)
        func pad(_ v: Int, _ w: Int) -> String { String(repeating: "0", count: max(0, w - String(v).count)) + String(v) }
        return "\(pad(c.year, 4))/\(pad(c.month, 2))/\(pad(c.day, 2))/\(name)"
    }

    public static func write(_ o: CorpusOptions, key: SigningKey, progress: ((Int, Int) -> Void)? = nil) throws -> CorpusResult {
        let clock = ContinuousClock()
        let t0 = clock.now
        var result = CorpusResult()
        let fm = FileManager.default
        try fm.createDirectory(atPath: o.directory, withIntermediateDirectories: true)
        let jsonl = try o.jsonlPath.map { try LineFile(path: $0) }
        if let d = o.jsonlDirectory { try fm.createDirectory(atPath: d, withIntermediateDirectories: true) }
        let gens = generators(sessions: o.sessions, eventsPerSession: o.eventsPerSession, seed: o.seed, start: o.start, profile: o.profile)
        for (i, generator) in gens.enumerated() {
            var g = generator
            let rel = relativePath(for: g.header, dated: o.dated)
            let path = (o.directory as NSString).appendingPathComponent(rel)
            try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let writer = try CaptureWriter(path: path, header: g.header, key: key, options: o.writer)
            let perSession = try o.jsonlDirectory.map { try LineFile(path: ($0 as NSString).appendingPathComponent(g.header.sessionID + ".jsonl")) }
            while let e = g.next() {
                try writer.append(e)
                if let jsonl { try jsonl.append(sessionJSONLine(e, sessionID: g.header.sessionID)) }
                if let perSession { try perSession.append(sessionJSONLine(e, header: g.header)) }
                result.events += 1
            }
            try writer.close()
            if let perSession {
                try perSession.close()
                result.jsonlBytes += perSession.bytesWritten
            }
            result.files.append(path)
            result.bytes += fileSize(path)
            progress?(i + 1, o.sessions)
        }
        if let jsonl {
            try jsonl.close()
            result.jsonlBytes = jsonl.bytesWritten
        }
        let pem = (o.directory as NSString).appendingPathComponent("signing-public.pem")
        try? fm.removeItem(atPath: pem)
        try key.publicKeyPEM.write(toFile: pem, atomically: true, encoding: .utf8)
        result.seconds = (clock.now - t0).seconds
        return result
    }
}

extension Duration {
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
