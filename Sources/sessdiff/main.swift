import ArgumentParser
import CaptureFormat
import Forensics
import Foundation

struct SessDiff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessdiff",
        abstract: "Compare two Tollgate captures exchange by exchange: requests and their results.",
        discussion: """
            Aligns the exchanges of A and B by order, falling back to the longest common subsequence of \
            statement fingerprints where one side has extra or missing requests, and reports requests only \
            in A or only in B, and for the same request: a different decision, error against success or a \
            different SQLSTATE, a different command tag or row count, different columns or types, different \
            values (rows compared in any order when the statement has no ORDER BY), a different HTTP status \
            or body, and with --latency, latency changes. Masked, withheld or cut values are compared by their \
            recorded form and counted as not compared.

            Both captures are streamed: memory stays flat however long they are.

            Given one capture, a replay made by sessreplay, sessdiff diffs it against its original: the capture \
            its header links to (replay.of_capture as recorded, then relative to the replay's directory, then \
            searched under --original-dir or $TOLLGATE_CAPTURES by replay.of_session), once it is checked to be \
            that session (its id, the final chain hash the replay read, and its hash chain and signatures).

            Exit status: 0 when the captures are the same; 1 when they differ; 2 on an error (a capture \
            that cannot be read, is damaged or cut, or is of a newer format; a replay's original not found or \
            not the replayed session).
            """
    )

    @Argument(help: "The first capture (the baseline); alone, a replay whose original is found by its link.", completion: .file(extensions: ["sesscap"]))
    var a: String

    @Argument(help: "The second capture (for example a replay).", completion: .file(extensions: ["sesscap"]))
    var b: String?

    @Option(name: .customLong("original-dir"), help: ArgumentHelp("Given one capture (a replay): search DIR for its original (repeatable; default $TOLLGATE_CAPTURES).", valueName: "DIR"))
    var originalDirs: [String] = []

    @Option(name: .long, help: ArgumentHelp("Leave out columns and JSON fields named NAME or matching GLOB (repeatable).", valueName: "NAME|GLOB"))
    var ignore: [String] = []

    @Option(name: .long, help: ArgumentHelp("Report latency changes larger than PCT percent (on exchanges of at least 1 ms).", valueName: "PCT"))
    var latency: Double?

    @Flag(name: .long, help: "Print only the counts per kind of difference.")
    var summary = false

    @Flag(name: .long, help: "Output JSON Lines: one object per difference, then one summary object.")
    var json = false

    @Flag(name: .customLong("forwarded-only"), help: "Compare only requests the gate forwarded (a replay holds no denied request).")
    var forwardedOnly = false

    @Option(name: .long, help: ArgumentHelp("Unmatched exchanges held per side for alignment (default \(SessionDiff.defaultWindow)).", valueName: "N"))
    var window: Int = SessionDiff.defaultWindow

    func validate() throws {
        if summary && json { throw ValidationError("choose one of --summary and --json") }
        if let latency, !(latency >= 0) { throw ValidationError("--latency takes a percentage (0 or more)") }
        if window < 1 || window > 100_000 { throw ValidationError("--window takes 1 to 100000") }
        if b != nil && !originalDirs.isEmpty { throw ValidationError("--original-dir is for one capture (a replay); two were given") }
    }

    func open(_ path: String, _ side: String) throws -> CaptureFile {
        do {
            return try CaptureFile(path: path)
        } catch {
            printError("sessdiff: \(side) \(path): \(error)")
            throw ExitCode(2)
        }
    }

    func run() throws {
        let terminal = Terminal()
        // One capture: a replay, diffed against the original its header links to.
        let (a, b): (String, String)
        if let second = self.b {
            (a, b) = (self.a, second)
        } else {
            let replay = try open(self.a, "B")
            let directories = !originalDirs.isEmpty ? originalDirs : ProcessInfo.processInfo.environment["TOLLGATE_CAPTURES"].map { [$0] }?.filter { !$0.isEmpty } ?? []
            do {
                (a, b) = (try ReplayOriginal.find(replayPath: self.a, header: replay.header, directories: directories), self.a)
            } catch {
                printError("sessdiff: \(error)")
                throw ExitCode(2)
            }
        }
        let captureA = try open(a, "A"), captureB = try open(b, "B")
        if let warning = ReplayOriginal.notOneCapture(captureA.header, captureB.header) { printError("sessdiff: warning: \(warning); compared anyway") }
        var problems: [String] = []
        for (side, path, c) in [("A", a, captureA), ("B", b, captureB)] {
            if case .unsealed(let complete, let length, let reason) = c.state {
                problems.append("\(side) \(path): not sealed: \(reason) (complete blocks end at byte \(complete) of \(length)); compared up to there")
            }
        }
        var streamA = ExchangeStream(captureA), streamB = ExchangeStream(captureB)
        let diff = SessionDiff(comparer: ExchangeComparer(ignore: ignore.map { Glob($0) }, latencyPercent: latency),
                               window: window, forwardedOnly: forwardedOnly)
        var output = DiffOutput(mode: json ? .json : summary ? .summary : .unified, terminal: terminal, pathA: a, pathB: b)
        let totals = diff.run(&streamA, &streamB, progress: { terminal.status("sessdiff: \($0) exchanges read") }) { output.difference($0) }
        terminal.clearStatus()
        for (side, path, s) in [("A", a, streamA), ("B", b, streamB)] {
            if let damage = s.damageDescription { problems.append("\(side) \(path): damaged: \(damage); compared up to there") }
        }
        output.finish(totals, problems: problems)
        for p in problems { printError("sessdiff: \(p)") }
        if !problems.isEmpty { throw ExitCode(2) }
        if !totals.same { throw ExitCode(1) }
    }
}

SessDiff.mainWithGrepExitCodes()
