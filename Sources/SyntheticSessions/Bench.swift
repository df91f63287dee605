import CaptureFormat
import Foundation

/// One writer configuration to measure.
public struct BenchConfig: Sendable {
    public var blockBytes: Int
    public var level: Int32
    public var durability: Durability

    public init(blockBytes: Int, level: Int32, durability: Durability) {
        self.blockBytes = blockBytes; self.level = level; self.durability = durability
    }

    public var durabilityName: String {
        switch durability {
        case .none: "none"
        case .perBlock: "perBlock"
        case .strict: "strict"
        case .interval(let d): "interval(\(d))"
        }
    }

    public var name: String { "\(blockBytes / 1024)KiB-z\(level)-\(durabilityName)" }

    var writerOptions: WriterOptions {
        var o = WriterOptions()
        o.blockTargetBytes = blockBytes
        // Level 0: no compression (BlockCodec.none), to see what encoding, hashing and signing cost alone.
        o.codec = level == 0 ? .none : .zlib
        o.compressionLevel = Swift.max(1, level)
        o.durability = durability
        // The benchmark measures size-driven sealing; age-driven sealing depends on the wall clock.
        o.maxBlockAge = .seconds(3600)
        return o
    }
}

public struct BenchOptions: Sendable {
    public var events: Int
    public var sessions: Int
    public var seed: UInt64
    public var start: Int64
    public var directory: String
    public var jsonlPath: String?
    public var configs: [BenchConfig]
    public var verify: Bool
    public var keep: Bool
    /// Captures whose sessions are the corpus instead of generated ones (a gate's real event stream).
    public var sources: [String]

    public init(events: Int, sessions: Int, seed: UInt64, start: Int64, directory: String, jsonlPath: String?,
                configs: [BenchConfig], verify: Bool = true, keep: Bool = false, sources: [String] = []) {
        self.events = events; self.sessions = sessions; self.seed = seed; self.start = start; self.directory = directory
        self.jsonlPath = jsonlPath; self.configs = configs; self.verify = verify; self.keep = keep; self.sources = sources
    }
}

public struct BenchRow: Sendable {
    public var config: BenchConfig
    public var writeSeconds: Double
    public var fileBytes: Int
    public var blocks: Int
    public var readSeconds: Double
    public var verifySeconds: Double?
    public var verifyProblems: Int
}

public struct BenchResult: Sendable {
    public var events = 0
    public var sessions = 0
    /// Encoded event bytes before compression (block payloads), the same for every configuration.
    public var rawEventBytes = 0
    /// Time to build the corpus in memory: generating it, or reading it from captures (`fromCaptures`).
    public var generateSeconds = 0.0
    public var fromCaptures = false
    public var jsonlSeconds = 0.0
    public var jsonlBytes = 0
    public var rows: [BenchRow] = []
}

public enum CaptureBenchmark {
    /// Generates the corpus in memory once, then for each configuration writes it,
    /// reads it back (open and decode every event) and verifies it, timing each step.
    public static func run(_ o: BenchOptions, key: SigningKey, log: (String) -> Void) throws -> BenchResult {
        let clock = ContinuousClock()
        var result = BenchResult()
        let fm = FileManager.default
        try fm.createDirectory(atPath: o.directory, withIntermediateDirectories: true)

        // 1. Generate (or read): the events sit in memory so that writing measures the writer alone.
        var t = clock.now
        var corpus: [(SessionHeader, [Event])] = []
        if o.sources.isEmpty {
            let perSession = max(2, o.events / max(1, o.sessions))
            let gens = Corpus.generators(sessions: o.sessions, eventsPerSession: perSession, seed: o.seed, start: o.start, profile: nil)
            corpus.reserveCapacity(gens.count)
            for g in gens {
                var events: [Event] = []
                events.reserveCapacity(perSession)
                var it = g
                while let e = it.next() { events.append(e) }
                corpus.append((g.header, events))
            }
        } else {
            for path in o.sources {
                let capture = try CaptureFile(path: path)
                var events: [Event] = []
                try capture.forEachEvent { events.append($0); return true }
                corpus.append((capture.header, events))
            }
        }
        result.events = corpus.reduce(0) { $0 + $1.1.count }
        result.sessions = corpus.count
        result.generateSeconds = (clock.now - t).seconds
        result.fromCaptures = !o.sources.isEmpty
        log("\(result.fromCaptures ? "read" : "generated") \(result.events) events in \(corpus.count) sessions in \(fmt(result.generateSeconds)) s")

        // 2. The same events as JSON Lines (the baseline's input).
        if let path = o.jsonlPath {
            t = clock.now
            let f = try LineFile(path: path)
            for (header, events) in corpus {
                for e in events { try f.append(sessionJSONLine(e, sessionID: header.sessionID)) }
            }
            try f.close()
            result.jsonlSeconds = (clock.now - t).seconds
            result.jsonlBytes = f.bytesWritten
            log("wrote JSON Lines: \(result.jsonlBytes) bytes in \(fmt(result.jsonlSeconds)) s")
        }

        // 3. Each configuration: write, read, verify.
        for config in o.configs {
            let dir = (o.directory as NSString).appendingPathComponent(config.name)
            try? fm.removeItem(atPath: dir)
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var paths: [String] = []
            paths.reserveCapacity(corpus.count)
            let options = config.writerOptions

            t = clock.now
            for (i, (header, events)) in corpus.enumerated() {
                // The same capture may be given more than once (--from): its copies need their own files.
                let name = o.sources.isEmpty ? header.sessionID : "\(i + 1)-\(header.sessionID)"
                let path = (dir as NSString).appendingPathComponent(name + ".sesscap")
                let writer = try CaptureWriter(path: path, header: header, key: key, options: options)
                for e in events { try writer.append(e) }
                try writer.close()
                paths.append(path)
            }
            let writeSeconds = (clock.now - t).seconds

            t = clock.now
            var decoded = 0, blocks = 0, raw = 0
            var checksum: UInt64 = 0
            for path in paths {
                let capture = try CaptureFile(path: path)
                blocks += capture.blocks.count
                raw += capture.rawEventBytes
                try capture.forEachEvent { e in
                    decoded += 1
                    checksum &+= e.sequence &+ UInt64(truncatingIfNeeded: e.wallMicros)
                    return true
                }
            }
            let readSeconds = (clock.now - t).seconds
            guard decoded == result.events else { throw SyntheticError("\(config.name): read back \(decoded) events, wrote \(result.events)") }
            if result.rawEventBytes == 0 { result.rawEventBytes = raw }

            var verifySeconds: Double?
            var problems = 0
            if o.verify {
                t = clock.now
                for path in paths {
                    let report = try CaptureFile(path: path).verify(trustedKey: key.publicKey)
                    problems += report.problems.count
                }
                verifySeconds = (clock.now - t).seconds
            }
            let bytes = paths.reduce(0) { $0 + fileSize($1) }
            result.rows.append(BenchRow(config: config, writeSeconds: writeSeconds, fileBytes: bytes, blocks: blocks,
                                        readSeconds: readSeconds, verifySeconds: verifySeconds, verifyProblems: problems))
            log("\(config.name): write \(fmt(writeSeconds)) s, read \(fmt(readSeconds)) s, verify \(verifySeconds.map(fmt) ?? "-") s, \(bytes) bytes, \(blocks) blocks (checksum \(checksum % 1000))")
            if !o.keep { try? fm.removeItem(atPath: dir) }
        }
        return result
    }

    /// A fixed-width table of the results.
    public static func table(_ r: BenchResult) -> String {
        let mb = 1_000_000.0
        var lines: [String] = []
        lines.append("events: \(r.events) in \(r.sessions) sessions; raw event bytes: \(r.rawEventBytes) (\(fmt(Double(r.rawEventBytes) / mb)) MB, \(r.rawEventBytes / max(1, r.events)) B/event)")
        lines.append("\(r.fromCaptures ? "read from captures" : "generation"): \(fmt(r.generateSeconds)) s" + (r.jsonlBytes > 0 ? "; JSON Lines: \(r.jsonlBytes) bytes (\(fmt(Double(r.jsonlBytes) / mb)) MB) encoded+written in \(fmt(r.jsonlSeconds)) s" : ""))
        lines.append("")
        let header = ["config", "write ev/s", "write MB/s", "read ev/s", "read MB/s", "verify MB/s", "file MB", "ratio", "blocks"]
        let widths = [24, 11, 11, 11, 10, 12, 9, 7, 7]
        func row(_ cells: [String]) -> String {
            zip(cells, widths).enumerated().map { i, p in i == 0 ? p.0.padding(toLength: p.1, withPad: " ", startingAt: 0) : String(repeating: " ", count: max(0, p.1 - p.0.count)) + p.0 }.joined(separator: " ")
        }
        lines.append(row(header))
        let rawMB = Double(r.rawEventBytes) / mb
        for x in r.rows {
            lines.append(row([
                x.config.name,
                String(Int(Double(r.events) / x.writeSeconds)),
                fmt(rawMB / x.writeSeconds),
                String(Int(Double(r.events) / x.readSeconds)),
                fmt(rawMB / x.readSeconds),
                x.verifySeconds.map { fmt(rawMB / $0) } ?? "-",
                fmt(Double(x.fileBytes) / mb),
                fmt(Double(r.rawEventBytes) / Double(max(1, x.fileBytes))),
                String(x.blocks),
            ]))
        }
        lines.append("")
        lines.append("MB/s are of raw event bytes (encoded events before compression); ratio = raw / file size.")
        if r.rows.contains(where: { $0.verifyProblems > 0 }) {
            lines.append("VERIFY PROBLEMS: " + r.rows.filter { $0.verifyProblems > 0 }.map { "\($0.config.name): \($0.verifyProblems)" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }

    /// Tab-separated values, one line per configuration, for scripts.
    public static func tsv(_ r: BenchResult) -> String {
        var lines = ["# events\tsessions\traw_bytes\tgenerate_s\tjsonl_bytes\tjsonl_s",
                     "summary\t\(r.events)\t\(r.sessions)\t\(r.rawEventBytes)\t\(r.generateSeconds)\t\(r.jsonlBytes)\t\(r.jsonlSeconds)",
                     "# config\tblock_bytes\tlevel\tdurability\twrite_s\tread_s\tverify_s\tfile_bytes\tblocks\tverify_problems"]
        for x in r.rows {
            lines.append("config\t\(x.config.name)\t\(x.config.blockBytes)\t\(x.config.level)\t\(x.config.durabilityName)\t\(x.writeSeconds)\t\(x.readSeconds)\t\(x.verifySeconds ?? -1)\t\(x.fileBytes)\t\(x.blocks)\t\(x.verifyProblems)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

func fmt(_ x: Double) -> String {
    let v = (x * 100).rounded() / 100
    var s = String(v)
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < 2 { s += String(repeating: "0", count: 2 - decimals) }
    }
    return s
}
