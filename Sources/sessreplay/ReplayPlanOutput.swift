import CaptureFormat
import Forensics
import Foundation

/// `--dry-run`: every recorded request of every session, replayed (with its scheduled offset and
/// global order) or skipped (with why).
struct ReplayPlanOutput {
    let sources: [ReplaySource]
    let schedule: ReplaySchedule

    func render(json: Bool, terminal: Terminal) -> String {
        var lines: [String] = []
        var sessions: [[String: Any]] = []
        for (i, s) in sources.enumerated() {
            let entries = schedule.entries(ofSession: i)
            var next = 0
            var steps: [[String: Any]] = []
            lines.append(terminal.paint("session \(s.header.sessionID) (\(s.path))", .bold))
            for step in s.steps {
                let text = step.request.text.replacingOccurrences(of: "\n", with: " ")
                var item: [String: Any] = ["exchange": step.exchangeID, "text": step.request.text, "path": step.request.path.name]
                switch step.disposition {
                case .replay:
                    let e = entries[next]
                    next += 1
                    item["replay"] = true; item["order"] = e.order; item["offset_us"] = e.offsetMicros
                    lines.append(String(format: "  %6d  +%10.3f s  #%-6d ", step.exchangeID, Double(e.offsetMicros) / 1e6, e.order)
                                 + terminal.paint("replay", .ok) + "  " + String(text.prefix(100)))
                case .skip(let reason):
                    item["replay"] = false; item["skip"] = reason.kind; item["reason"] = reason.description
                    lines.append(String(format: "  %6d  %@  ", step.exchangeID, "                       ")
                                 + terminal.paint("skip \(reason.kind)", .warn) + "  " + String(text.prefix(100)) + "  (\(reason.description))")
                }
                steps.append(item)
            }
            var session: [String: Any] = ["source": s.path, "session": s.header.sessionID, "steps": steps]
            if let d = s.damage { session["damage"] = d }
            sessions.append(session)
        }
        if json {
            let data = try! JSONSerialization.data(withJSONObject: ["sessions": sessions, "replayed": schedule.entries.count], options: [.sortedKeys])
            return String(decoding: data, as: UTF8.self)
        }
        lines.append("\(schedule.entries.count) request(s) to replay")
        return lines.joined(separator: "\n")
    }
}
