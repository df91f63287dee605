import ArgumentParser
import CaptureFormat
import Forensics
import Foundation

struct SessInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessinfo",
        abstract: "Summarise, list, verify and recover Tollgate capture files (*.sesscap).",
        discussion: """
            With no mode option, prints a summary of each FILE: session, subject, target, time range, \
            counts, sizes, compression and seal state, read from the footer without decompressing events.

            --play plays a recorded exec or attach terminal back, as it happened: with the recorded \
            timing (scaled by --speed, idle gaps cut to --idle-limit); on a terminal, space pauses and \
            resumes, '.' steps one output while paused, q stops.

            Exit status: 0 when every file was read (and, with --verify, every check held); \
            1 when --verify found a problem (or --recover had nothing to recover, or --play found no terminal); 2 when a file cannot be read or the arguments are wrong.
            """
    )

    @Argument(help: "Capture files to read.", completion: .file(extensions: ["sesscap"]))
    var files: [String]

    @Flag(name: .long, help: "List the events instead of a summary.")
    var events = false

    @Flag(name: .long, help: "Check CRCs, framing, hash chain, signatures, sequence and footer of every block.")
    var verify = false

    @Option(name: .long, help: ArgumentHelp("With --verify: the public key (PEM) that must have signed the files.", valueName: "PUBKEY"))
    var key: String?

    @Option(name: .long, help: ArgumentHelp("Write a sealed copy of a truncated FILE to OUT, marked as recovered.", valueName: "OUT"))
    var recover: String?

    @Option(name: .customLong("sign-key"), help: ArgumentHelp("With --recover: the Ed25519 private key (PEM) that seals the copy.", valueName: "KEY"))
    var signKey: String?

    @Flag(name: .long, help: "Output JSON: one object per file (summary, --verify) or per event (--events), as JSON Lines.")
    var json = false

    @Option(name: .customLong("from-seq"), help: ArgumentHelp("With --events: start at this sequence number.", valueName: "N"))
    var fromSequence: UInt64 = 0

    @Option(name: .long, help: ArgumentHelp("With --events: start at this time (RFC 3339, or Unix seconds).", valueName: "TIME"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("With --events: only events of this kind (repeatable): \(EventKind.allCases.map(\.name).joined(separator: ", ")).", valueName: "KIND"))
    var kind: [String] = []

    @Option(name: .long, help: ArgumentHelp("With --events: stop after N events per file.", valueName: "N"))
    var limit: Int?

    @Flag(name: .long, help: "Play a recorded exec or attach terminal back with its timing.")
    var play = false

    @Option(name: .long, help: ArgumentHelp("With --play: the exchange to play (default: the first terminal recorded).", valueName: "N"))
    var exchange: UInt64?

    @Option(name: .long, help: ArgumentHelp("With --play: how much faster than recorded (0.5 is half speed).", valueName: "X"))
    var speed: Double = 1

    @Option(name: .customLong("idle-limit"), help: ArgumentHelp("With --play: cut every pause longer than this many seconds to it.", valueName: "SECONDS"))
    var idleLimit: Double?

    @Flag(name: .customLong("no-wait"), help: "With --play: write the output at once, without the recorded timing.")
    var noWait = false

    func validate() throws {
        if [events, verify, recover != nil, play].filter({ $0 }).count > 1 {
            throw ValidationError("choose one of --events, --verify, --recover and --play")
        }
        if play && files.count != 1 { throw ValidationError("--play takes exactly one FILE") }
        if play && json { throw ValidationError("--play writes a terminal; for the data use --events --json or sessexport's asciicast") }
        if !play && (exchange != nil || idleLimit != nil || noWait || speed != 1) {
            throw ValidationError("--exchange, --speed, --idle-limit and --no-wait are used with --play")
        }
        if !(speed > 0 && speed.isFinite) { throw ValidationError("--speed must be a positive number") }
        if let idleLimit, !(idleLimit >= 0 && idleLimit.isFinite) { throw ValidationError("--idle-limit must be zero or more seconds") }
        if recover != nil && files.count != 1 { throw ValidationError("--recover takes exactly one FILE") }
        if recover != nil && signKey == nil {
            throw ValidationError("--recover needs --sign-key KEY: the private key that seals the recovered copy (the proxy's, or your own)")
        }
        if key != nil && !verify { throw ValidationError("--key is used with --verify") }
        for k in kind where EventKind(name: k) == nil { throw ValidationError("unknown event kind '\(k)'") }
        if let since, parseTime(since) == nil { throw ValidationError("cannot read time '\(since)': use RFC 3339 (2026-11-25T19:00:00Z) or Unix seconds") }
    }

    func run() throws {
        let terminal = Terminal()
        let code: Int32
        if let recover {
            code = runRecover(out: recover)
        } else if play {
            code = runPlay(terminal: terminal)
        } else if verify {
            code = runVerify(terminal: terminal)
        } else if events {
            code = runEvents(terminal: terminal)
        } else {
            code = runSummary(terminal: terminal)
        }
        if code != 0 { throw ExitCode(code) }
    }

    func open(_ path: String) -> CaptureFile? {
        do {
            return try CaptureFile(path: path)
        } catch {
            printError("sessinfo: \(path): \(error)")
            return nil
        }
    }

    func runSummary(terminal: Terminal) -> Int32 {
        var failed = false
        for (i, path) in files.enumerated() {
            guard let capture = open(path) else { failed = true; continue }
            do {
                let report = try SessionReport(capture)
                if json {
                    print(report.json())
                } else {
                    if i > 0 { print("") }
                    print(report.text(terminal: terminal))
                }
            } catch {
                printError("sessinfo: \(path): \(error)")
                failed = true
            }
        }
        return failed ? 2 : 0
    }

    func runEvents(terminal: Terminal) -> Int32 {
        let kinds = Set(kind.compactMap { EventKind(name: $0) })
        let micros = since.flatMap(parseTime)
        var failed = false
        for path in files {
            guard let capture = open(path) else { failed = true; continue }
            var shown = 0
            do {
                if !json && files.count > 1 { print("==> \(path) <==") }
                try capture.forEachEvent(fromSequence: fromSequence, fromMicros: micros) { e in
                    if !kinds.isEmpty, !(e.payload.kind.map(kinds.contains) ?? false) { return true }
                    if let limit, shown >= limit { return false }
                    shown += 1
                    print(json ? e.jsonLine() : eventLine(e, sessionStart: capture.header.startMicros, terminal: terminal))
                    return true
                }
                if case .unsealed(_, _, let reason) = capture.state {
                    printError("sessinfo: \(path): truncated: events end at the last complete block; \(reason)")
                }
            } catch {
                printError("sessinfo: \(path): \(error)")
                failed = true
            }
        }
        return failed ? 2 : 0
    }

    func runVerify(terminal: Terminal) -> Int32 {
        var trusted: [UInt8]?
        if let key {
            do { trusted = try SigningKey.loadPublicKey(path: key) } catch {
                printError("sessinfo: \(error)")
                return 2
            }
        }
        var worst: Int32 = 0
        for (i, path) in files.enumerated() {
            terminal.status("verifying \(i + 1)/\(files.count): \(path)")
            let report: VerificationReport
            do {
                report = try VerificationReport.verifying(path: path, trustedKey: trusted)
            } catch {
                terminal.clearStatus()
                printError("sessinfo: \(path): \(error)")
                worst = 2
                continue
            }
            terminal.clearStatus()
            print(json ? report.json(path: path) : report.text(path: path, terminal: terminal))
            if !report.isValid { worst = max(worst, 1) }
        }
        return worst
    }

    func runPlay(terminal: Terminal) -> Int32 {
        guard let capture = open(files[0]) else { return 2 }
        let recording: TerminalRecording
        do {
            recording = try TerminalRecording.read(capture, exchange: exchange)
        } catch let error as TerminalRecording.ReadError {
            printError("sessinfo: \(files[0]): \(error)")
            return 1
        } catch {
            printError("sessinfo: \(files[0]): \(error)")
            return 2
        }
        let schedule = PlaybackSchedule(recording.outputs, speed: speed, idleLimitNanos: idleLimit.map { UInt64($0 * 1e9) })
        if terminal.progress {
            let size = recording.size.map { "\($0.columns)x\($0.rows)" } ?? "size not recorded"
            let seconds = String(format: "%.1f", Double(schedule.durationNanos) / 1e9)
            let keys = isatty(STDIN_FILENO) == 1 && !noWait ? "; space pause, . step, q quit" : ""
            printError(terminal.paint("\u{25B6} \(recording.title(capture.header)), \(size), \(seconds) s\(keys)", .dim))
        }
        let outcome = TerminalPlayer(schedule: schedule, wait: !noWait).play()
        if terminal.progress { printError(terminal.paint(outcome == .stopped ? "\n\u{25A0} stopped" : "\n\u{25A0} end of recording", .dim)) }
        return 0
    }

    func runRecover(out: String) -> Int32 {
        guard let capture = open(files[0]) else { return 2 }
        guard !capture.state.isSealed else {
            printError("sessinfo: \(files[0]) is sealed: nothing to recover (use --verify to check it)")
            return 1
        }
        do {
            let key = try SigningKey.load(path: signKey!)
            let result = try capture.recover(to: out, sealer: key)
            print("recovered \(files[0]) -> \(out): kept \(result.blocksKept) blocks, \(result.eventsKept) events; dropped \(result.bytesDropped) bytes (\(result.reason)); sealed by key \(key.keyID)")
            return 0
        } catch {
            printError("sessinfo: \(error)")
            return 2
        }
    }
}

SessInfo.mainWithGrepExitCodes()
