import ArgumentParser
import CaptureFormat
import Forensics
import Foundation
import SyntheticSessions

// capgen: writes realistic synthetic Tollgate captures (samples, corpora) and
// measures the capture format. The generation logic is in SyntheticSessions.

struct Capgen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capgen",
        abstract: "Generate realistic synthetic Tollgate captures: samples, benchmark corpora, and the capture-format benchmark.",
        discussion: """
            Sessions are generated deterministically from a seed: PostgreSQL sessions of an AI assistant, an \
            on-call developer and a contractor (SELECTs with joins, writes with bound parameters, DDL; \
            decisions, approvals, masked rows, errors, annotations) and kubectl sessions (list, logs, exec \
            with streams). Every value that would be sensitive is already masked. Headers carry the \
            attribute synthetic=capgen.

            Exit status: 0 on success; 2 when the arguments are wrong or a file cannot be written.
            """,
        subcommands: [SamplesCommand.self, CorpusCommand.self, BenchCommand.self, PrintCommand.self]
    )
}

// MARK: - Shared options

struct WriterFlags: ParsableArguments {
    @Option(name: .customLong("block-size"), help: ArgumentHelp("Seal a block when its uncompressed events reach SIZE bytes (suffix K or M for KiB, MiB).", valueName: "SIZE"))
    var blockSize: String = "128K"

    @Option(name: .long, help: ArgumentHelp("zlib level, 1 (fastest) to 9 (smallest).", valueName: "N"))
    var level: Int32 = 6

    @Option(name: .long, help: ArgumentHelp("When written bytes reach the disk: none, per-block, strict, or interval:SECONDS.", valueName: "MODE"))
    var durability: String = "per-block"

    func options() throws -> WriterOptions {
        var o = WriterOptions()
        o.blockTargetBytes = try parseSize(blockSize)
        guard (1...9).contains(level) else { throw ValidationError("--level must be 1 to 9") }
        o.compressionLevel = level
        o.durability = try parseDurability(durability)
        return o
    }
}

func parseSize(_ s: String) throws -> Int {
    var text = s.uppercased()
    var unit = 1
    for (suffix, m) in [("KIB", 1024), ("MIB", 1 << 20), ("K", 1024), ("M", 1 << 20)] where text.hasSuffix(suffix) {
        text.removeLast(suffix.count)
        unit = m
        break
    }
    guard let n = Int(text), n > 0, n * unit <= 32 << 20 else { throw ValidationError("bad size \"\(s)\": use bytes or a K/M suffix, at most 32M") }
    return n * unit
}

func parseDurability(_ s: String) throws -> Durability {
    switch s {
    case "none": return .none
    case "per-block", "perBlock": return .perBlock
    case "strict": return .strict
    default:
        if s.hasPrefix("interval:"), let secs = Double(s.dropFirst("interval:".count)), secs > 0 {
            return .interval(.milliseconds(Int(secs * 1000)))
        }
        throw ValidationError("bad durability \"\(s)\": use none, per-block, strict or interval:SECONDS")
    }
}

/// A time option's value, in microseconds (Forensics' parser, with a usage error).
func parseTimeOption(_ s: String) throws -> Int64 {
    guard let t = parseTime(s) else { throw ValidationError("bad time \"\(s)\": use RFC 3339 (2026-11-20T08:00:00Z) or Unix seconds") }
    return t
}

func parseProfile(_ s: String) throws -> SessionProfile? {
    if s == "mixed" { return nil }
    guard let p = SessionProfile(rawValue: s) else {
        throw ValidationError("unknown profile \"\(s)\": use mixed, \(SessionProfile.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return p
}

let profileHelp = "Session profile: mixed, \(SessionProfile.allCases.map(\.rawValue).joined(separator: ", "))."

func loadKey(_ path: String) throws -> SigningKey {
    try SigningKey.loadOrCreate(path: path)
}


// MARK: - samples

struct SamplesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "samples",
        abstract: "Write the small sample captures and the public key into a directory.",
        discussion: """
            Writes \(Samples.files.map(\.name).joined(separator: ", ")) and signing-public.pem into DIR, \
            replacing earlier ones. Blocks are \(Samples.blockTargetBytes / 1024) KiB so that each sample has several. \
            The sessions are the same on every run; the files differ only in their seal time, and in their \
            signatures when the key differs. Keep the private key out of DIR.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Directory to write into (created if missing).", valueName: "DIR"))
    var out: String

    @Option(name: .long, help: ArgumentHelp("Ed25519 private key (PEM) that signs the captures; created (mode 0600) if missing.", valueName: "KEYFILE"))
    var key: String

    func validate() throws {
        let outAbs = URL(fileURLWithPath: out).standardizedFileURL.path
        let keyDir = URL(fileURLWithPath: key).standardizedFileURL.deletingLastPathComponent().path
        if outAbs == keyDir { throw ValidationError("--key must not be inside --out: the samples directory is published, the private key must not be") }
    }

    func run() throws {
        let signing = try loadKey(key)
        let written = try Samples.write(to: out, key: signing)
        for w in written {
            print("\(w.name)\t\(w.bytes) bytes\t\(w.events) events\t\(w.description)")
        }
        print("signing-public.pem\tkey \(signing.keyID)")
    }
}

// MARK: - corpus

struct CorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corpus",
        abstract: "Write a corpus of synthetic captures, one file per session, for benchmarks and tests.",
        discussion: """
            Files are named SESSION-ID.sesscap under DIR/YYYY/MM/DD/ by session start (--flat: directly in DIR); \
            signing-public.pem is written to DIR. Session i's seed and start time follow from --seed alone, so the \
            same arguments give the same sessions. With --jsonl, every event is also written as one JSON line, \
            tagged with its session id.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Directory to write into (created if missing); files must not exist yet.", valueName: "DIR"))
    var out: String

    @Option(name: .long, help: ArgumentHelp("Number of sessions (files).", valueName: "N"))
    var sessions: Int = 10

    @Option(name: .customLong("events-per-session"), help: ArgumentHelp("Events per session, start and end included (at least 2).", valueName: "M"))
    var eventsPerSession: Int = 1000

    @Option(name: .long, help: ArgumentHelp("Seed of the corpus.", valueName: "S"))
    var seed: UInt64 = 1

    @Option(name: .long, help: ArgumentHelp("Ed25519 private key (PEM) that signs the captures; created (mode 0600) if missing.", valueName: "KEYFILE"))
    var key: String

    @Option(name: .long, help: ArgumentHelp("Also write the events as JSON Lines to FILE.", valueName: "FILE"))
    var jsonl: String?

    @Option(name: .customLong("jsonl-dir"), help: ArgumentHelp("Also write each session's events as JSON Lines to DIR/SESSION-ID.jsonl, with its subject and target on every line.", valueName: "DIR"))
    var jsonlDir: String?

    @Option(name: .long, help: ArgumentHelp("Start of the first session: RFC 3339 or Unix seconds.", valueName: "TIME"))
    var start: String = "2026-11-20T08:00:00Z"

    @Option(name: .long, help: ArgumentHelp(profileHelp, valueName: "PROFILE"))
    var profile: String = "mixed"

    @Flag(name: .long, help: "Write all files directly in DIR instead of DIR/YYYY/MM/DD/.")
    var flat = false

    @Flag(name: .shortAndLong, help: "Print nothing but errors.")
    var quiet = false

    @OptionGroup(title: "Writer")
    var writer: WriterFlags

    func validate() throws {
        guard sessions >= 1 else { throw ValidationError("--sessions must be at least 1") }
        guard eventsPerSession >= 2 else { throw ValidationError("--events-per-session must be at least 2 (start and end)") }
    }

    func run() throws {
        let options = CorpusOptions(directory: out, sessions: sessions, eventsPerSession: eventsPerSession, seed: seed,
                                    start: try parseTimeOption(start), profile: try parseProfile(profile), writer: try writer.options(),
                                    jsonlPath: jsonl, dated: !flat, jsonlDirectory: jsonlDir)
        let signing = try loadKey(key)
        let step = max(1, sessions / 20)
        let result = try Corpus.write(options, key: signing) { done, total in
            if !quiet && (done % step == 0 || done == total) { printError("capgen: \(done)/\(total) sessions") }
        }
        if !quiet {
            print("\(result.files.count) captures, \(result.events) events, \(result.bytes) bytes in \(out) (key \(signing.keyID)), \(String(format: "%.2f", result.seconds)) s")
            if let jsonl { print("JSON Lines: \(jsonl), \(result.jsonlBytes) bytes") }
            if let jsonlDir { print("JSON Lines: \(jsonlDir)/SESSION-ID.jsonl, \(result.jsonlBytes) bytes") }
        }
    }
}

// MARK: - bench

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure capture write, read and verify throughput over a generated corpus.",
        discussion: """
            Generates --events events (a mix of profiles, in --sessions sessions) into memory once, then for \
            each combination of block size, zlib level and durability writes them as captures under DIR, \
            reads them back (open, decompress and decode every event) and verifies them (CRCs, hash chain, \
            signatures, footers). Files of a configuration are deleted after it unless --keep. Prints a table; \
            --tsv writes the figures for scripts. benchmarks/capture-format.sh adds the gzip baseline.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Total events to generate.", valueName: "N"))
    var events: Int = 1_000_000

    @Option(name: .long, help: ArgumentHelp("Sessions to spread them over (one file each).", valueName: "N"))
    var sessions: Int = 100

    @Option(name: .long, help: ArgumentHelp("Seed of the corpus.", valueName: "S"))
    var seed: UInt64 = 1

    @Option(name: .long, help: ArgumentHelp("Working directory for the captures.", valueName: "DIR"))
    var out: String

    @Option(name: .long, help: ArgumentHelp("Ed25519 private key (PEM); default: a new key held in memory.", valueName: "KEYFILE"))
    var key: String?

    @Option(name: .long, help: ArgumentHelp("Also write the events as JSON Lines to FILE (the gzip baseline's input).", valueName: "FILE"))
    var jsonl: String?

    @Option(name: .long, help: ArgumentHelp("Write the results as tab-separated values to FILE.", valueName: "FILE"))
    var tsv: String?

    @Option(name: .customLong("block-sizes"), help: ArgumentHelp("Comma-separated block sizes.", valueName: "LIST"))
    var blockSizes: String = "32K,128K,512K"

    @Option(name: .long, help: ArgumentHelp("Comma-separated zlib levels (0: store blocks uncompressed).", valueName: "LIST"))
    var levels: String = "1,6"

    @Option(name: .customLong("durabilities"), help: ArgumentHelp("Comma-separated durability modes.", valueName: "LIST"))
    var durabilities: String = "none,per-block"

    @Option(name: .customLong("durable-level"), help: ArgumentHelp("Measure durabilities other than none only at this level (0: at every level).", valueName: "N"))
    var durableLevel: Int32 = 0

    @Flag(name: .customLong("no-verify"), help: "Skip the verify pass.")
    var noVerify = false

    @Flag(name: .long, help: "Keep the captures of each configuration.")
    var keep = false

    @Option(name: .long, help: ArgumentHelp("Start of the first session: RFC 3339 or Unix seconds.", valueName: "TIME"))
    var start: String = "2026-11-20T08:00:00Z"

    @Option(name: .long, help: ArgumentHelp("Use the sessions of this capture as the corpus instead of generated ones (repeatable; --events, --sessions and --seed are then ignored): measures the writer on a real gate's event stream.", valueName: "CAPTURE"))
    var from: [String] = []

    func validate() throws {
        guard events >= 2, sessions >= 1, events / sessions >= 2 else { throw ValidationError("need --events ≥ 2 × --sessions") }
    }

    func run() throws {
        var configs: [BenchConfig] = []
        let sizes = try blockSizes.split(separator: ",").map { try parseSize(String($0)) }
        let lvls = try levels.split(separator: ",").map { s -> Int32 in
            guard let l = Int32(s), (0...9).contains(l) else { throw ValidationError("bad level \"\(s)\": 1 to 9, or 0 for no compression") }
            return l
        }
        let durs = try durabilities.split(separator: ",").map { try parseDurability(String($0)) }
        for d in durs {
            for l in lvls where d == .none || durableLevel == 0 || l == durableLevel {
                for s in sizes { configs.append(BenchConfig(blockBytes: s, level: l, durability: d)) }
            }
        }
        let signing = try key.map(loadKey) ?? SigningKey()
        let options = BenchOptions(events: events, sessions: sessions, seed: seed, start: try parseTimeOption(start), directory: out,
                                   jsonlPath: jsonl, configs: configs, verify: !noVerify, keep: keep, sources: from)
        let result = try CaptureBenchmark.run(options, key: signing) { printError("capgen bench: " + $0) }
        print(CaptureBenchmark.table(result))
        if let tsv { try CaptureBenchmark.tsv(result).write(toFile: tsv, atomically: true, encoding: .utf8) }
    }
}

// MARK: - print

struct PrintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "print",
        abstract: "Print one generated session as JSON Lines (header first), without writing a capture.",
        discussion: "Useful to look at what a seed and profile produce, or to feed other tools test data."
    )

    @Option(name: .long, help: ArgumentHelp("Seed of the session.", valueName: "S"))
    var seed: UInt64 = 1

    @Option(name: .long, help: ArgumentHelp(profileHelp, valueName: "PROFILE"))
    var profile: String = "mixed"

    @Option(name: .long, help: ArgumentHelp("Number of exchanges.", valueName: "N"))
    var exchanges: Int = 10

    @Option(name: .long, help: ArgumentHelp("Exactly N events instead of --exchanges.", valueName: "N"))
    var events: Int?

    @Option(name: .long, help: ArgumentHelp("Session start: RFC 3339 or Unix seconds.", valueName: "TIME"))
    var start: String = "2026-11-20T08:00:00Z"

    func run() throws {
        let length: SessionLength = events.map { .events(max(2, $0)) } ?? .exchanges(exchanges)
        var g = SessionGenerator(seed: seed, start: try parseTimeOption(start), profile: try parseProfile(profile), length: length)
        let h = g.header
        var w = JSONWriter()
        w.object { o in
            o.string("session", h.sessionID)
            o.object("header") {
                $0.string("subject", h.subject); $0.strings("groups", h.groups); $0.string("target", h.target)
                $0.string("protocol", h.protocolName); $0.string("proxy", h.proxyID); $0.string("profile", g.profile.rawValue)
            }
        }
        print(w.text)
        while let e = g.next() { print(sessionJSONLine(e, sessionID: h.sessionID), terminator: "") }
    }
}

Capgen.mainWithGrepExitCodes()
