import Forensics
import Foundation

/// The end-of-run report: requests, errors, skips by reason, and latency percentiles recorded
/// against replayed; as text or one JSON object.
struct ReplaySummary {
    var outcomes: [SessionOutcome]
    var damage: [String]
    var target: String
    var seconds: Double

    var replayed: Int { outcomes.reduce(0) { $0 + $1.replayed } }
    var errors: Int { outcomes.reduce(0) { $0 + $1.errors } }
    var newErrors: [String] { outcomes.flatMap(\.newErrors) }
    var failures: [String] { outcomes.compactMap { o in o.failure.map { "\(o.source): \($0)" } } }
    var skipped: [String: Int] { outcomes.reduce(into: [:]) { acc, o in o.skipped.forEach { acc[$0.key, default: 0] += $0.value } } }

    /// Nearest-rank percentiles in microseconds.
    static func percentiles(_ values: [UInt64]) -> [String: UInt64] {
        guard !values.isEmpty else { return [:] }
        let sorted = values.sorted()
        func p(_ q: Double) -> UInt64 { sorted[min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))] }
        return ["p50": p(0.5), "p90": p(0.9), "p99": p(0.99), "max": sorted.last!]
    }

    var json: String {
        let recorded = Self.percentiles(outcomes.flatMap(\.recordedMicros)), replayedP = Self.percentiles(outcomes.flatMap(\.replayedMicros))
        let object: [String: Any] = [
            "target": target,
            "sessions": outcomes.map { o -> [String: Any] in
                var s: [String: Any] = ["source": o.source, "session": o.sessionID, "replayed": o.replayed, "errors": o.errors,
                                        "new_errors": o.newErrors, "skipped": o.skipped, "withheld": o.withheld,
                                        "prepared_statement_parses": o.parses]
                if let c = o.capture { s["capture"] = c }
                if let f = o.failure { s["failure"] = f }
                return s
            },
            "replayed": replayed, "errors": errors, "new_errors": newErrors.count, "skipped": skipped,
            "latency_us": ["recorded": recorded, "replayed": replayedP],
            "seconds": seconds, "statements_per_second": seconds > 0 ? Double(replayed) / seconds : 0,
            "damage": damage, "failures": failures,
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    func text(_ terminal: Terminal) -> String {
        var lines: [String] = []
        lines.append("replayed \(replayed) request(s) from \(outcomes.count) session(s) against \(target) in \(String(format: "%.2f", seconds)) s"
                     + (seconds > 0 ? String(format: " (%.0f statements/s)", Double(replayed) / seconds) : ""))
        let errorsText = "errors: \(errors), of which \(newErrors.count) where the recording succeeded"
        lines.append(newErrors.isEmpty ? errorsText : terminal.paint(errorsText, .bad))
        for e in newErrors.prefix(20) { lines.append("  \(e)") }
        if newErrors.count > 20 { lines.append("  … \(newErrors.count - 20) more") }
        let skips = skipped.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
        lines.append("skipped: " + (skips.isEmpty ? "none" : skips.joined(separator: ", ")))
        let withheld = outcomes.flatMap { o in o.withheld.map { "\(o.sessionID): \($0)" } }
        for w in withheld.prefix(20) { lines.append(terminal.paint("  withheld in the recording, not replayed: \(w)", .warn)) }
        if withheld.count > 20 { lines.append("  … \(withheld.count - 20) more withheld") }
        let recorded = Self.percentiles(outcomes.flatMap(\.recordedMicros)), replayedP = Self.percentiles(outcomes.flatMap(\.replayedMicros))
        func row(_ name: String, _ p: [String: UInt64]) -> String {
            p.isEmpty ? "  \(name): -" : "  \(name): p50 \(p["p50"]!) µs, p90 \(p["p90"]!) µs, p99 \(p["p99"]!) µs, max \(p["max"]!) µs"
        }
        lines.append("latency (at the gate when recorded; at sessreplay when replayed):")
        lines.append(row("recorded", recorded))
        lines.append(row("replayed", replayedP))
        for o in outcomes { if let c = o.capture { lines.append("replay of \(o.sessionID): \(c)") } }
        for d in damage { lines.append(terminal.paint("damaged capture: \(d)", .bad)) }
        for f in failures { lines.append(terminal.paint("failed: \(f)", .bad)) }
        return lines.joined(separator: "\n")
    }
}
