import CaptureFormat
import Foundation

/// What a search looked at and what it could skip: the evidence that the index did its job.
public struct SearchStats: Sendable, Equatable {
    public var files = 0
    public var filesSkippedByHeader = 0
    public var filesSkippedBySummary = 0
    /// Files where no block's index admits one of the conditions.
    public var filesSkippedByIndex = 0
    public var filesUnreadable = 0
    /// Events blocks in the files that were opened and not skipped by header or summary.
    public var blocks = 0
    public var blocksDecompressed = 0
    /// Decompressed blocks that did not contain PATTERN's required bytes (no text in them was matched).
    public var blocksWithoutPattern = 0
    public var exchangesEvaluated = 0
    public var matches = 0

    public init() {}

    public mutating func add(_ o: SearchStats) {
        files += o.files; filesSkippedByHeader += o.filesSkippedByHeader; filesSkippedBySummary += o.filesSkippedBySummary
        filesSkippedByIndex += o.filesSkippedByIndex; filesUnreadable += o.filesUnreadable; blocks += o.blocks
        blocksDecompressed += o.blocksDecompressed; blocksWithoutPattern += o.blocksWithoutPattern
        exchangesEvaluated += o.exchangesEvaluated; matches += o.matches
    }

    /// `key=value` pairs on one line, for people and scripts alike.
    public var line: String {
        "files=\(files) skipped_by_header=\(filesSkippedByHeader) skipped_by_summary=\(filesSkippedBySummary) "
            + "skipped_by_index=\(filesSkippedByIndex) unreadable=\(filesUnreadable) blocks=\(blocks) "
            + "decompressed=\(blocksDecompressed) without_pattern=\(blocksWithoutPattern) "
            + "exchanges_evaluated=\(exchangesEvaluated) matches=\(matches)"
    }
}

public struct SearchOptions: Sendable {
    public enum Mode: Sendable {
        /// Every matching exchange, rendered (with context).
        case exchanges
        /// Count matches per file.
        case count
        /// Stop at the first match in each file (`-l`).
        case files
        /// Stop at the first match anywhere (`-q`).
        case quiet
    }

    public var mode: Mode
    public var renderer: ExchangeRenderer
    /// Exchanges of context before and after each match (`-B`, `-A`).
    public var before: Int
    public var after: Int
    /// Workers: blocks of a file are decompressed by this many tasks, and files are searched this many
    /// (times two, so that no core waits while one file's exchanges are judged) at a time.
    public var parallelism: Int

    public init(mode: Mode = .exchanges, renderer: ExchangeRenderer = ExchangeRenderer(json: false, terminal: Terminal(environment: ["NO_COLOR": "1"])),
                before: Int = 0, after: Int = 0, parallelism: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.mode = mode; self.renderer = renderer; self.before = before; self.after = after
        self.parallelism = max(1, parallelism)
    }
}

/// The result of searching one capture.
public struct FileOutcome: Sendable {
    public let path: String
    /// nil when the file could not be opened.
    public var header: SessionHeader?
    public var matches = 0
    /// Rendered matches (and context, with `--` between groups), in event order.
    public var output: [String] = []
    /// Damage and read errors: the file was searched as far as it could be read.
    public var errors: [String] = []
    /// Not errors: an unsealed file (still being written, or cut off) is searched up to its last complete block.
    public var notes: [String] = []
    public var stats = SearchStats()

    public init(path: String) { self.path = path }
}

/// The search: captures in parallel (bounded), and within a large capture its blocks in parallel;
/// results handed back in file order, and within a file in event order.
public enum CaptureSearch {
    /// Searches `paths` in order, calling `onFile` with each file's outcome in the same order;
    /// `onFile` returns false to stop the search (the remaining files are not searched).
    public static func run(paths: [String], query: CaptureQuery, options: SearchOptions,
                           onFile: (FileOutcome) -> Bool) async {
        // Twice the workers, so a core never waits while one file's blocks are judged in order;
        // one worker means one file at a time.
        let window = options.parallelism == 1 ? 1 : options.parallelism * 2
        await withTaskGroup(of: (Int, FileOutcome).self) { group in
            var next = 0, deliver = 0
            var done: [Int: FileOutcome] = [:]
            while next < min(window, paths.count) {
                let i = next
                group.addTask { (i, await search(path: paths[i], query: query, options: options)) }
                next += 1
            }
            while let (i, outcome) = await group.next() {
                done[i] = outcome
                while let o = done.removeValue(forKey: deliver) {
                    deliver += 1
                    if !onFile(o) {
                        group.cancelAll()
                        return
                    }
                }
                // Keep the workers busy, but never hold more than a few windows of finished results.
                while next < paths.count && next - deliver < window * 4 && next - deliver - done.count < window {
                    let j = next
                    group.addTask { (j, await search(path: paths[j], query: query, options: options)) }
                    next += 1
                }
            }
        }
    }

    /// Searches one capture.
    public static func search(path: String, query: CaptureQuery, options: SearchOptions) async -> FileOutcome {
        var out = FileOutcome(path: path)
        out.stats.files = 1
        let capture: CaptureFile
        do {
            capture = try CaptureFile(path: path)
        } catch {
            out.errors.append("\(path): \(error)")
            out.stats.filesUnreadable = 1
            return out
        }
        out.header = capture.header
        guard query.admits(header: capture.header) else {
            out.stats.filesSkippedByHeader = 1
            return out
        }
        if let problem = capture.footerProblem {
            out.errors.append("\(path): \(problem); searching the blocks found by scanning")
        }
        if case .unsealed(let complete, let length, let reason) = capture.state {
            // Name the block and byte where the readable part ends, as sessinfo --verify does.
            let marker = "are not a complete block: "
            let why = reason.range(of: marker).map { "block \(capture.blocks.count) at byte \(complete): " + reason[$0.upperBound...] }
                ?? reason
            if isDamage(reason) {
                out.errors.append("\(path): damaged: searched its \(capture.blocks.count) blocks before the damage, up to byte \(complete) of \(length); \(why)")
            } else {
                out.notes.append("\(path): not sealed (still being written, or cut off): searched its \(capture.blocks.count) complete blocks, up to byte \(complete) of \(length); \(why)")
            }
        }
        if capture.state.isSealed, let footer = capture.footer, !query.admits(summary: footer.summary, header: capture.header) {
            out.stats.filesSkippedBySummary = 1
            return out
        }
        out.stats.blocks = capture.blocks.count
        guard let plan = Plan(capture: capture, query: query, context: options.before > 0 || options.after > 0) else {
            out.stats.filesSkippedByIndex = 1
            return out
        }
        let matcher: ExchangeMatcher
        do {
            matcher = try ExchangeMatcher(query: query)
        } catch {
            out.errors.append("\(error)")
            return out
        }
        var scan = FileScan(capture: capture, plan: plan, options: options, matcher: matcher, out: out)
        await scan.run()
        return scan.out
    }

    /// An unsealed file whose walk stopped at damage, not at a cut-off end.
    static func isDamage(_ reason: String) -> Bool {
        reason.contains("are not a complete block") && !reason.contains("cut off")
    }
}

/// Which blocks of one capture must be decompressed, from its index alone.
struct Plan {
    let conditions: [Condition]
    /// pass[c][j]: block j's index admits condition c.
    let pass: [[Bool]]
    /// Blocks to decompress, ascending.
    let blocks: [Int]
    /// Whether the index records exchange spans (1.1, sealed): exchanges then complete early.
    let spansKnown: Bool

    /// nil when the index proves that nothing in the file can match.
    init?(capture: CaptureFile, query: CaptureQuery, context: Bool) {
        let index = capture.blocks
        let n = index.count
        let conditions = query.conditions
        let pass = conditions.map { c in index.map { c.test.admits($0) } }
        let spansKnown = capture.state.isSealed && n > 0 && index.allSatisfy { $0.exchangeSpan != nil }
        let existential = conditions.indices.filter { conditions[$0].existential }
        if n == 0 { return nil }
        for c in existential where !pass[c].contains(true) { return nil }

        // The anchor: the condition the fewest blocks admit. A match has an event satisfying it in one
        // of those blocks, and (with spans) all its events within that block's span, where every other
        // condition must then be admitted too.
        var candidate = [Bool](repeating: true, count: n)
        if let anchor = existential.min(by: { a, b in pass[a].count(where: { $0 }) < pass[b].count(where: { $0 }) }) {
            candidate = pass[anchor]
            if spansKnown {
                let sums = existential.map { c in pass[c].reduce(into: [0]) { $0.append($0.last! + ($1 ? 1 : 0)) } }
                for j in 0..<n where candidate[j] {
                    let (lo, hi) = Plan.window(index[j], j, n)
                    if sums.contains(where: { $0[hi + 1] - $0[lo] == 0 }) { candidate[j] = false }
                }
            }
        }
        guard candidate.contains(true) else { return nil }
        self.conditions = conditions
        self.pass = pass
        self.spansKnown = spansKnown
        if context || !spansKnown {
            // Without spans an exchange may reach any block; context needs the neighbours too.
            blocks = Array(0..<n)
        } else {
            var needed = [Bool](repeating: false, count: n)
            for j in 0..<n where candidate[j] {
                let (lo, hi) = Plan.window(index[j], j, n)
                for k in lo...hi { needed[k] = true }
            }
            blocks = (0..<n).filter { needed[$0] }
        }
    }

    static func window(_ b: BlockInfo, _ j: Int, _ n: Int) -> (Int, Int) {
        let s = b.exchangeSpan ?? ExchangeSpan()
        return (max(0, j - Int(s.before)), min(n - 1, j + Int(s.after)))
    }
}

/// Walks the planned blocks of one capture in order, assembling exchanges and judging each once complete.
struct FileScan {
    let capture: CaptureFile
    let plan: Plan
    let options: SearchOptions
    var matcher: ExchangeMatcher
    var out: FileOutcome

    let all: UInt64
    let loneKinds: Set<EventKind>
    let literal: [UInt8]?
    let ignoreCase: Bool
    let patternCondition: Int?

    // Exchanges in order of their first event: pending[i] has ordinal `judged + i`. Mutated in
    // place (never copied out and back), so a long exchange's events are not copied per event.
    var pending: [ExchangeEvents] = []
    var head = 0
    var judged = 0
    var openByID: [UInt64: Int] = [:]
    var nextOrdinal: Int { judged + pending.count - head }
    // Context (-B/-A).
    var held: [(Int, ExchangeEvents)] = []
    var afterLeft = 0
    var lastShown = -2
    var stop = false

    init(capture: CaptureFile, plan: Plan, options: SearchOptions, matcher: ExchangeMatcher, out: FileOutcome) {
        self.capture = capture; self.plan = plan; self.options = options; self.matcher = matcher; self.out = out
        all = plan.conditions.count >= 64 ? .max : (1 << UInt64(plan.conditions.count)) - 1
        loneKinds = Set(matcher.query.kinds)
        let p = matcher.query.pattern
        literal = p.flatMap { $0.invert ? nil : $0.requiredLiteral }
        ignoreCase = p?.ignoreCase ?? false
        patternCondition = plan.conditions.firstIndex { $0.field == .pattern && $0.existential }
    }

    mutating func run() async {
        let chunk = max(8, options.parallelism * 4)
        var i = 0
        while i < plan.blocks.count && !stop {
            if Task.isCancelled { return }
            let indices = Array(plan.blocks[i..<min(i + chunk, plan.blocks.count)])
            i += indices.count
            for (j, result) in await decode(indices) {
                switch result {
                case .success(let block):
                    out.stats.blocksDecompressed += 1
                    if literal != nil && !block.mayMatchPattern { out.stats.blocksWithoutPattern += 1 }
                    feed(block)
                case .failure(let error):
                    let b = capture.blocks[j]
                    out.errors.append("\(capture.path): block \(j) at byte \(error.offset ?? Int(b.offset)): \(error.message); its events were not searched")
                }
                judgeReady(upTo: j)
                if stop { return }
            }
        }
        judgeReady(upTo: .max)
    }

    /// Decompresses blocks (in parallel when there are several) and reads their envelopes.
    func decode(_ indices: [Int]) async -> [(Int, Result<DecodedBlock, CaptureError>)] {
        let capture = self.capture, literal = self.literal, ignoreCase = self.ignoreCase
        if indices.count < 2 || options.parallelism < 2 {
            return indices.map { ($0, FileScan.decodeBlock(capture, $0, literal, ignoreCase)) }
        }
        let slices = options.parallelism
        return await withTaskGroup(of: [(Int, Result<DecodedBlock, CaptureError>)].self) { group in
            for s in 0..<slices {
                let mine = stride(from: s, to: indices.count, by: slices).map { indices[$0] }
                if mine.isEmpty { continue }
                group.addTask { mine.map { ($0, FileScan.decodeBlock(capture, $0, literal, ignoreCase)) } }
            }
            var all: [(Int, Result<DecodedBlock, CaptureError>)] = []
            for await part in group { all += part }
            return all.sorted { $0.0 < $1.0 }
        }
    }

    static func decodeBlock(_ capture: CaptureFile, _ j: Int, _ literal: [UInt8]?, _ ignoreCase: Bool) -> Result<DecodedBlock, CaptureError> {
        let info = capture.blocks[j]
        do {
            let raw = try capture.rawPayload(of: info)
            let envelopes: [EventEnvelope]
            do {
                envelopes = try raw.withUnsafeBytes { try EventEnvelope.all(in: $0, expectedCount: Int(info.eventCount)) }
            } catch {
                return .failure(CaptureError(.corrupt, "events cannot be decoded: \(error)", offset: info.payloadOffset))
            }
            var may = true
            if let literal {
                may = raw.withUnsafeBytes { buffer in
                    literal.withUnsafeBytes { needle in
                        if !ignoreCase { return find(needle, in: buffer) }
                        let lowered = buffer.map(asciiLower)
                        return lowered.withUnsafeBytes { find(needle, in: $0) }
                    }
                }
            }
            return .success(DecodedBlock(index: j, raw: raw, envelopes: envelopes, mayMatchPattern: may))
        } catch {
            return .failure(error)
        }
    }

    /// Adds a block's events to their exchanges.
    mutating func feed(_ block: DecodedBlock) {
        let j = block.index
        var mask: UInt64 = 0
        for (c, column) in plan.pass.enumerated() where column[j] || !plan.conditions[c].existential {
            mask |= 1 << UInt64(c)
        }
        if let p = patternCondition, !block.mayMatchPattern { mask &= ~(1 << UInt64(p)) }
        let info = capture.blocks[j]
        let bound = plan.spansKnown ? j + Int(info.exchangeSpan?.after ?? 0) : Int.max
        for e in block.envelopes {
            if e.exchangeID == 0 {
                guard let kind = e.kind, loneKinds.contains(kind) else { continue }
                pending.append(ExchangeEvents(id: 0, events: [ExchangeEvent(envelope: e, block: block)], admitted: mask, bound: j))
                continue
            }
            if let ordinal = openByID[e.exchangeID] {
                let i = ordinal - judged + head
                pending[i].events.append(ExchangeEvent(envelope: e, block: block))
                pending[i].admitted |= mask
                pending[i].bound = max(pending[i].bound, bound)
            } else {
                openByID[e.exchangeID] = nextOrdinal
                pending.append(ExchangeEvents(id: e.exchangeID, events: [ExchangeEvent(envelope: e, block: block)], admitted: mask, bound: bound))
            }
        }
    }

    /// Judges, in order, the exchanges that can have no more events once block `j` has been read.
    mutating func judgeReady(upTo j: Int) {
        while head < pending.count, pending[head].bound <= j || j == .max {
            let x = pending[head]
            pending[head].events = []  // release its blocks now
            head += 1
            if x.id != 0, openByID[x.id] == judged { openByID[x.id] = nil }
            judge(x, ordinal: judged)
            judged += 1
            if stop { return }
        }
        if head > 1024 && head * 2 > pending.count {
            pending.removeFirst(head)
            head = 0
        }
    }

    mutating func judge(_ x: ExchangeEvents, ordinal: Int) {
        let candidate = x.admitted & all == all
        var matched = false
        if candidate {
            out.stats.exchangesEvaluated += 1
            matched = matcher.matches(x)
        }
        let context = options.mode == .exchanges && (options.before > 0 || options.after > 0)
        guard matched else {
            guard context, x.id != 0 else { return }
            if afterLeft > 0 {
                show(x, ordinal: ordinal, context: true)
                afterLeft -= 1
            } else if options.before > 0 {
                held.append((ordinal, x))
                if held.count > options.before { held.removeFirst() }
            }
            return
        }
        out.matches += 1
        out.stats.matches += 1
        switch options.mode {
        case .quiet, .files:
            stop = true
        case .count:
            break
        case .exchanges:
            for (o, h) in held { show(h, ordinal: o, context: true) }
            held.removeAll()
            show(x, ordinal: ordinal, context: false)
            afterLeft = options.after
        }
    }

    mutating func show(_ x: ExchangeEvents, ordinal: Int, context: Bool) {
        let grouped = options.before > 0 || options.after > 0
        if grouped && lastShown >= 0 && ordinal > lastShown + 1 { out.output.append("--") }
        lastShown = ordinal
        out.output.append(options.renderer.render(x, capture: capture, context: context))
    }
}
