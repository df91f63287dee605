import ArgumentParser
import CaptureFormat
import Forensics
import Foundation
import ProxyCore

struct SessGrep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sessgrep",
        abstract: "Search Tollgate captures (*.sesscap) by field and by regular expression over requests and masked responses.",
        usage: "sessgrep [OPTIONS] [PATTERN] [PATH...]\n  sessgrep [OPTIONS] -e PATTERN [-e PATTERN...] [PATH...]",
        discussion: """
            Prints one line per matching exchange (a request with its decision, approvals, response, mask summary, \
            streams and annotations): session and exchange, time, subject, target, outcome, request. PATH is a capture \
            or a directory searched recursively for *.sesscap; without PATH, the capture directory of --config FILE \
            (proxy.captures), else $TOLLGATE_CAPTURES. The first operand is PATTERN unless -e is given: with field \
            filters only, name the captures with -e '' PATH… or set TOLLGATE_CAPTURES.

            PATTERN is a POSIX extended regular expression (as grep -E; also \\d), tried on each statement and bound \
            parameter, request line, exec command and body; with --in responses|all also on the recorded rows \
            (values joined by tabs, rows by newlines), errors, notices, bodies and output streams, as recorded \
            after masking. Filters of different fields must all hold; a repeated filter holds when one of its values does.

            Exit status: 0 when something matched, 1 when nothing did, 2 on an error (an unreadable or damaged \
            capture, reported on stderr with its block and byte offset, is searched as far as it can be read; the \
            status is 2 even if other captures matched, as in grep, except with -q after a match). A capture that \
            is not sealed (being written, or cut off) is searched up to its last complete block, with a note on stderr.
            """
    )

    @Argument(help: ArgumentHelp("PATTERN (unless -e is given), then captures or directories.", valueName: "PATTERN | PATH"))
    var operands: [String] = []

    @Option(name: [.customShort("e"), .customLong("regexp")], help: ArgumentHelp("A pattern (repeatable: any of them); every operand is then a PATH.", valueName: "PATTERN"))
    var regexps: [String] = []

    @Flag(name: [.customShort("F"), .customLong("fixed-strings")], help: "PATTERN is a fixed string, not a regular expression.")
    var fixedStrings = false

    @Flag(name: [.customShort("i"), .customLong("ignore-case")], help: "Ignore ASCII case in PATTERN.")
    var ignoreCase = false

    @Flag(name: [.customShort("v"), .customLong("invert-match")], help: "Select exchanges where PATTERN matches none of the texts (the filters still apply).")
    var invert = false

    @Option(name: .customLong("in"), help: ArgumentHelp("Where PATTERN looks: requests, responses, or all.", valueName: "WHERE"))
    var scope: String = "requests"

    @OptionGroup(title: "Filters")
    var filters: CaptureFilterOptions

    @Flag(name: [.customShort("c"), .customLong("count")], help: "Print the number of matching exchanges per capture (PATH:COUNT, or COUNT for one file).")
    var count = false

    @Flag(name: [.customShort("l"), .customLong("files-with-matches")], help: "Print the captures that have a match (stops reading each at its first).")
    var filesWithMatches = false

    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Print nothing; exit 0 at the first match.")
    var quiet = false

    @Option(name: [.customShort("A"), .customLong("after-context")], help: ArgumentHelp("Show N exchanges after each match.", valueName: "N"))
    var afterContext: Int = 0

    @Option(name: [.customShort("B"), .customLong("before-context")], help: ArgumentHelp("Show N exchanges before each match.", valueName: "N"))
    var beforeContext: Int = 0

    @Option(name: [.customShort("C"), .customLong("context")], help: ArgumentHelp("Show N exchanges before and after each match.", valueName: "N"))
    var context: Int?

    @Flag(name: .long, help: "JSON Lines: one object per matching exchange with all its events (with -c and -l, one per capture).")
    var json = false

    @Option(name: .long, help: ArgumentHelp("The gate's configuration: search its capture directory (proxy.captures) when no PATH is given.", valueName: "FILE"))
    var config: String?

    @Flag(name: .long, help: "Print on stderr what the search read and skipped (files, blocks, exchanges).")
    var stats = false

    @Option(name: [.customShort("j"), .customLong("jobs")], help: ArgumentHelp("Parallel workers (default: one per core).", valueName: "N"))
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        if [count, filesWithMatches, quiet].filter({ $0 }).count > 1 { throw ValidationError("choose one of -c, -l and -q") }
        guard TextPattern.Scope(rawValue: scope) != nil else { throw ValidationError("--in takes requests, responses or all") }
        for n in [afterContext, beforeContext, context ?? 0] where n < 0 { throw ValidationError("context must not be negative") }
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        if invert && patterns.isEmpty { throw ValidationError("-v needs a PATTERN") }
        try pattern?.validate()
    }

    /// The first operand is PATTERN, as in grep, unless -e is given or it names an existing
    /// directory or capture file: `sessgrep --subject alice captures/` searches captures/ with the
    /// filter alone (a pattern that is also such a path is given with -e).
    var firstOperandIsPattern: Bool {
        guard regexps.isEmpty, let first = operands.first else { return false }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: first, isDirectory: &isDirectory) else { return true }
        return !(isDirectory.boolValue || first.hasSuffix(".sesscap"))
    }

    var patterns: [String] {
        let given = regexps.isEmpty ? (firstOperandIsPattern ? Array(operands.prefix(1)) : []) : regexps
        return given.filter { !$0.isEmpty }  // an empty pattern selects everything: no text condition
    }

    var paths: [String] { firstOperandIsPattern ? Array(operands.dropFirst()) : operands }

    var pattern: TextPattern? {
        patterns.isEmpty ? nil : TextPattern(patterns: patterns, fixed: fixedStrings, ignoreCase: ignoreCase, invert: invert,
                                             scope: TextPattern.Scope(rawValue: scope) ?? .requests)
    }

    /// PATH operands, else the configured capture directory.
    func locations() throws -> [String] {
        if !paths.isEmpty { return paths }
        if let config {
            do {
                return [try GateConfig.load(path: config, requireSecrets: false).proxy.captureDirectory]
            } catch {
                throw ValidationError("\(error)")
            }
        }
        if let env = ProcessInfo.processInfo.environment["TOLLGATE_CAPTURES"], !env.isEmpty { return [env] }
        var hint = ""
        if firstOperandIsPattern, let first = operands.first, FileManager.default.fileExists(atPath: first) {
            hint = " ('\(first)' was taken as PATTERN; to search it with filters only: sessgrep -e '' [FILTERS] \(first))"
        }
        throw ValidationError("no captures to search: give PATH, --config FILE, or set TOLLGATE_CAPTURES\(hint)")
    }

    func run() async throws {
        signal(SIGPIPE, SIG_DFL)  // like grep: a closed pipe (| head) ends the search quietly
        let terminal = Terminal()
        let roots = try locations()
        var query = try filters.query()
        query.pattern = pattern
        let (files, missing) = CaptureLocations.files(in: roots)
        var failed = !missing.isEmpty
        for m in missing { printError("sessgrep: \(m)") }

        let mode: SearchOptions.Mode = quiet ? .quiet : filesWithMatches ? .files : count ? .count : .exchanges
        let options = SearchOptions(mode: mode, renderer: ExchangeRenderer(json: json, terminal: terminal, highlight: query.pattern),
                                    before: context ?? beforeContext, after: context ?? afterContext, parallelism: jobs)
        let singleFile = roots.count == 1 && files.count == 1 && files[0] == roots[0]
        var out = OutputBuffer()
        var totals = SearchStats()
        var matched = false
        var searched = 0
        var printedGroup = false
        let clock = ContinuousClock()
        let started = clock.now
        var lastStatus = started
        var statusShown = false

        await CaptureSearch.run(paths: files, query: query, options: options) { o in
            searched += 1
            totals.add(o.stats)
            if statusShown && (!o.errors.isEmpty || !o.notes.isEmpty || !o.output.isEmpty) { terminal.clearStatus(); statusShown = false }
            // What came before a message is on the screen before it.
            if !o.errors.isEmpty || !o.notes.isEmpty { out.flush() }
            for e in o.errors { printError("sessgrep: \(e)") }
            for n in o.notes { printError("sessgrep: \(n)") }
            if !o.errors.isEmpty { failed = true }
            if o.matches > 0 { matched = true }
            switch mode {
            case .quiet:
                if o.matches > 0 { return false }
            case .files:
                if o.matches > 0 { out.line(json ? fileJSON(o, count: nil) : o.path) }
            case .count:
                if json {
                    if o.matches > 0 || singleFile { out.line(fileJSON(o, count: o.matches)) }
                } else if singleFile {
                    out.line(String(o.matches))
                } else if o.matches > 0 {
                    out.line("\(o.path):\(o.matches)")
                }
            case .exchanges:
                if options.before + options.after > 0 && printedGroup && !o.output.isEmpty && !json { out.line("--") }
                for line in o.output where !(json && line == "--") { out.line(line) }
                if !o.output.isEmpty { printedGroup = true }
            }
            out.flushIfLarge()
            let now = clock.now
            if terminal.progress && now - started > .milliseconds(300) && now - lastStatus > .milliseconds(100) {
                out.flush()
                terminal.status("sessgrep: \(searched)/\(files.count) captures, \(totals.matches) matches")
                statusShown = true
                lastStatus = now
            }
            return true
        }
        out.flush()
        if statusShown { terminal.clearStatus() }
        if stats {
            let seconds = (clock.now - started).components
            printError("sessgrep: stats: \(totals.line) seconds=\(String(format: "%.3f", Double(seconds.seconds) + Double(seconds.attoseconds) / 1e18))")
        }
        if quiet && matched { throw ExitCode(0) }
        if failed { throw ExitCode(2) }
        throw ExitCode(matched ? 0 : 1)
    }

    func fileJSON(_ o: FileOutcome, count: Int?) -> String {
        var w = JSONWriter()
        w.object { j in
            j.string("file", o.path)
            if let h = o.header {
                j.string("session", h.sessionID); j.string("subject", h.subject); j.string("target", h.target)
            }
            if let count { j.number("count", count) }
        }
        return w.text
    }
}

/// Standard output through a buffer: one write per 64 KiB, not per line.
struct OutputBuffer {
    var bytes: [UInt8] = []

    mutating func line(_ s: String) {
        bytes.append(contentsOf: s.utf8)
        bytes.append(10)
    }

    mutating func flushIfLarge() { if bytes.count >= 64 << 10 { flush() } }

    mutating func flush() {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                printError("sessgrep: cannot write to standard output: \(String(cString: strerror(errno)))")
                Foundation.exit(2)
            }
            done += n
        }
        bytes.removeAll(keepingCapacity: true)
    }
}

extension SessGrep {
    /// grep's attached short values (`-A3`, `-C2`, `-j4`, `-efoo`), which ArgumentParser reads only
    /// detached, split in two; everything after `--` is left alone.
    static func detachingShortValues(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var operandsOnly = false
        for a in arguments {
            if a == "--" { operandsOnly = true }
            let b = Array(a)
            if !operandsOnly, b.count > 2, b[0] == "-", b[1] != "-",
               (["A", "B", "C", "j"].contains(b[1]) && b[2...].allSatisfy(\.isNumber)) || b[1] == "e" {
                out.append("-\(b[1])")
                out.append(String(b[2...]))
            } else {
                out.append(a)
            }
        }
        return out
    }
}

await SessGrep.asyncMainWithGrepExitCodes(arguments: SessGrep.detachingShortValues(
    CaptureFilterOptions.expandingOptionalValues(Array(CommandLine.arguments.dropFirst()))))
