import CaptureFormat
import Forensics
import Foundation

/// `--dry-run`: every recorded request of every session, replayed (with its scheduled offset and
/// global order) or skipped (with why), for either kind of target.
struct ReplayPlanOutput {
    struct Step {
        let exchangeID: UInt64
        /// The request in one line: a statement's text, or an HTTP method and target.
        let line: String
        /// What `--json` says of the request besides its place in the plan.
        let item: [String: Any]
        let disposition: ReplayStep.Disposition
    }

    struct Session {
        let path: String
        let sessionID: String
        let damage: String?
        let steps: [Step]
    }

    let sessions: [Session]
    let schedule: ReplaySchedule
    /// Named in the plan for an HTTP target.
    var target: String?

    func render(json: Bool, terminal: Terminal) -> String {
        var lines: [String] = []
        var rendered: [[String: Any]] = []
        for (i, s) in sessions.enumerated() {
            let entries = schedule.entries(ofSession: i)
            var next = 0
            var steps: [[String: Any]] = []
            lines.append(terminal.paint("session \(s.sessionID) (\(s.path))", .bold))
            for step in s.steps {
                var item = step.item
                item["exchange"] = step.exchangeID
                switch step.disposition {
                case .replay:
                    let e = entries[next]
                    next += 1
                    item["replay"] = true; item["order"] = e.order; item["offset_us"] = e.offsetMicros
                    lines.append(String(format: "  %6d  +%10.3f s  #%-6d ", step.exchangeID, Double(e.offsetMicros) / 1e6, e.order)
                                 + terminal.paint("replay", .ok) + "  " + String(step.line.prefix(100)))
                case .skip(let reason):
                    item["replay"] = false; item["skip"] = reason.kind; item["reason"] = reason.description
                    lines.append(String(format: "  %6d  %@  ", step.exchangeID, "                       ")
                                 + terminal.paint("skip \(reason.kind)", .warn) + "  " + String(step.line.prefix(100)) + "  (\(reason.description))")
                }
                steps.append(item)
            }
            var session: [String: Any] = ["source": s.path, "session": s.sessionID, "steps": steps]
            if let d = s.damage { session["damage"] = d }
            rendered.append(session)
        }
        if json {
            var all: [String: Any] = ["sessions": rendered, "replayed": schedule.entries.count]
            if let target { all["target"] = target }
            let data = try! JSONSerialization.data(withJSONObject: all, options: [.sortedKeys])
            return String(decoding: data, as: UTF8.self)
        }
        lines.append("\(schedule.entries.count) request(s) to replay" + (target.map { " against \($0)" } ?? ""))
        return lines.joined(separator: "\n")
    }
}

extension ReplayPlanOutput {
    /// The plan of PostgreSQL sessions.
    init(sources: [ReplaySource], schedule: ReplaySchedule) {
        sessions = sources.map { s in
            Session(path: s.path, sessionID: "\(s.header.sessionID)", damage: s.damage, steps: s.steps.map { step in
                Step(exchangeID: step.exchangeID, line: step.request.text.replacingOccurrences(of: "\n", with: " "),
                     item: ["text": step.request.text, "path": step.request.path.name], disposition: step.disposition)
            })
        }
        self.schedule = schedule
    }

    /// The plan of HTTP (and Kubernetes) sessions against `target`.
    init(sources: [HTTPReplaySource], schedule: ReplaySchedule, target: String) {
        sessions = sources.map { s in
            Session(path: s.path, sessionID: "\(s.header.sessionID)", damage: s.damage, steps: s.steps.map { step in
                Step(exchangeID: step.exchangeID, line: "\(step.http.method) \(step.http.target)",
                     item: ["method": step.http.method, "target": step.http.target], disposition: step.disposition)
            })
        }
        self.schedule = schedule
        self.target = target
    }
}
