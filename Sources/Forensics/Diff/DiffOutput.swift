import CaptureFormat
import Foundation

/// How `sessdiff` prints: hunks like `diff -u` (colour only on a terminal, never with NO_COLOR),
/// a summary of counts per kind (like pt-upgrade's report), or JSON Lines.
public struct DiffOutput {
    public enum Mode: Sendable { case unified, summary, json }
    public let mode: Mode
    let terminal: Terminal
    let pathA: String
    let pathB: String
    var headerWritten = false

    public init(mode: Mode, terminal: Terminal, pathA: String, pathB: String) {
        self.mode = mode; self.terminal = terminal; self.pathA = pathA; self.pathB = pathB
    }

    func write(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

    public mutating func difference(_ d: Difference) {
        switch mode {
        case .summary: return
        case .json: write(Self.json(d))
        case .unified:
            if !headerWritten {
                headerWritten = true
                write(terminal.paint("--- \(pathA)", .bold))
                write(terminal.paint("+++ \(pathB)", .bold))
            }
            let where_ = "\(d.a.map { "A #\($0.index) (exchange \($0.exchange), seq \($0.sequence))" } ?? "A -")"
                + " \(d.b.map { "B #\($0.index) (exchange \($0.exchange), seq \($0.sequence))" } ?? "B -")"
            write(terminal.paint("@@ \(where_) @@ \(d.kind.rawValue): \(d.statement)", .warn))
            write(" " + d.detail)
            for line in d.removed { write(terminal.paint("-" + line, .bad)) }
            for line in d.added { write(terminal.paint("+" + line, .ok)) }
        }
    }

    public func finish(_ totals: DiffTotals, problems: [String]) {
        switch mode {
        case .json:
            var w = JSONWriter()
            w.object { o in
                o.object("summary") { s in
                    s.string("a", pathA); s.string("b", pathB)
                    s.number("exchanges_a", totals.exchangesA); s.number("exchanges_b", totals.exchangesB)
                    s.number("paired", totals.paired)
                    s.object("differences") { c in
                        for k in DifferenceKind.allCases { if let n = totals.counts[k] { c.number(k.rawValue, n) } }
                    }
                    s.number("not_compared_values", totals.notCompared)
                    s.number("altered_requests", totals.alteredRequests)
                    s.bool("same", totals.same && problems.isEmpty)
                    if !problems.isEmpty { s.strings("errors", problems) }
                }
            }
            write(w.text)
        case .summary, .unified:
            if mode == .summary || !totals.same {
                write("sessdiff: \(pathA) vs \(pathB)")
                write("exchanges: A \(totals.exchangesA), B \(totals.exchangesB), paired \(totals.paired)")
                if totals.same { write("no differences") }
                for k in DifferenceKind.allCases {
                    if let n = totals.counts[k] { write("  " + k.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0) + " \(n)") }
                }
            }
            if totals.notCompared > 0 {
                write("\(totals.notCompared) masked, withheld or cut value\(totals.notCompared == 1 ? "" : "s") compared by recorded form only (not compared)")
            }
            if totals.alteredRequests > 0 {
                write("\(totals.alteredRequests) request\(totals.alteredRequests == 1 ? "" : "s") with masked or withheld text or parameters")
            }
        }
    }

    static func json(_ d: Difference) -> String {
        var w = JSONWriter()
        w.object { o in
            o.string("kind", d.kind.rawValue)
            for (key, place) in [("a", d.a), ("b", d.b)] {
                if let p = place {
                    o.object(key) { $0.number("index", p.index); $0.number("exchange", p.exchange); $0.number("sequence", p.sequence) }
                }
            }
            o.string("statement", d.statement)
            o.string("detail", d.detail)
            o.strings("removed", d.removed)
            o.strings("added", d.added)
        }
        return w.text
    }
}
