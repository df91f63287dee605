import AdminAPI
import Forensics
import Foundation

/// The readable views of approvals and grants: a table for lists, a detail view for one. Every
/// text from the API goes through `Printable`; colour only as `Terminal` allows.
struct ApprovalViews {
    let terminal: Terminal
    let now: Date

    init(terminal: Terminal = Terminal(), now: Date = Date()) {
        self.terminal = terminal; self.now = now
    }

    func styled(state: String) -> String {
        switch state {
        case "pending": terminal.paint(state, .warn)
        case "approved", "live": terminal.paint(state, .ok)
        case "denied", "revoked": terminal.paint(state, .bad)
        default: terminal.paint(state, .dim)
        }
    }

    /// 45s, 3m12s, 2h05m, 3d04h.
    static func span(_ seconds: TimeInterval) -> String {
        let s = Int(max(0, seconds).rounded(.down))
        if s < 60 { return "\(s)s" }
        if s < 3600 { return String(format: "%ldm%02lds", s / 60, s % 60) }
        if s < 86400 { return String(format: "%ldh%02ldm", s / 3600, (s % 3600) / 60) }
        return String(format: "%ldd%02ldh", s / 86400, (s % 86400) / 3600)
    }

    func timeLeft(_ a: ApprovalDocument) -> String {
        guard a.state == "pending" else { return "-" }
        let left = a.deadline.timeIntervalSince(now)
        return left > 0 ? Self.span(left) : "due"
    }

    /// 2026-12-05T23:50:19Z
    enum Stamp { static func string(from date: Date) -> String { date.ISO8601Format() } }

    /// Columns padded to their widest cell (measured without colour).
    func table(_ header: [String], _ rows: [[(text: String, shown: String)]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.text.count) } }
        func render(_ cells: [(text: String, shown: String)]) -> String {
            cells.enumerated().map { i, cell in
                i == cells.count - 1 ? cell.shown : cell.shown + String(repeating: " ", count: widths[i] - cell.text.count)
            }.joined(separator: "  ")
        }
        let head = render(header.map { (text: $0, shown: terminal.paint($0, .bold)) })
        return ([head] + rows.map(render)).joined(separator: "\n")
    }

    func approvalTable(_ approvals: [ApprovalDocument]) -> String {
        let rows = approvals.map { a -> [(text: String, shown: String)] in
            let state = Printable.line(a.state)
            return [(Printable.line(a.id), Printable.line(a.id)), (state, styled(state: state)),
                    plain(Self.span(now.timeIntervalSince(a.created))), plain(timeLeft(a)),
                    plain(Printable.cut(Printable.line(a.subject), 28)), plain(Printable.line(a.target)),
                    plain(Printable.cut(Printable.line("\(a.policy)/\(a.rule)"), 40)),
                    plain(Printable.cut(Printable.cell(a.statement), 60))]
        }
        return table(["ID", "STATE", "AGE", "LEFT", "SUBJECT", "TARGET", "RULE", "STATEMENT"], rows)
    }

    func plain(_ text: String) -> (text: String, shown: String) { (text, text) }

    func approvalDetail(_ a: ApprovalDocument) -> String {
        var out: [String] = []
        func field(_ name: String, _ value: String) {
            out.append(terminal.paint(name.padding(toLength: 13, withPad: " ", startingAt: 0), .dim) + value)
        }
        out.append(terminal.paint("approval \(Printable.line(a.id))", .bold) + "  " + styled(state: Printable.line(a.state)))
        let statement = Printable.lines(a.statement)
        field("statement", statement.first ?? "")
        for more in statement.dropFirst() { out.append(String(repeating: " ", count: 13) + more) }
        let groups = a.subjectGroups.isEmpty ? "" : " (\(Printable.line(a.subjectGroups.joined(separator: ", "))))"
        field("subject", Printable.line(a.subject) + groups)
        field("target", "\(Printable.line(a.target)), session \(Printable.line(a.session)), exchange \(a.exchange)")
        field("rule", "policy \"\(Printable.line(a.policy))\" rule \"\(Printable.line(a.rule))\"")
        field("approvers", Printable.line(a.approverGroups.joined(separator: ", ")))
        field("requirement", Printable.line(a.requirement))
        field("requested", "\(Stamp.string(from: a.created)) (\(Self.span(now.timeIntervalSince(a.created))) ago)")
        if a.state == "pending" {
            field("deadline", "\(Stamp.string(from: a.deadline)) (\(timeLeft(a)) left)")
        } else {
            field("deadline", Stamp.string(from: a.deadline))
        }
        if let decided = a.decided { field("decided", Stamp.string(from: decided)) }
        if !a.outcomeReason.isEmpty { field("outcome", Printable.line(a.outcomeReason)) }
        if let grant = a.grant { field("grant", Printable.line(grant)) }
        field("fingerprint", Printable.line(a.fingerprint))
        if a.decisions.isEmpty {
            field("decisions", "none yet")
        } else {
            out.append(terminal.paint("decisions", .dim))
            for d in a.decisions {
                let verdict = d.verdict == "approve" ? terminal.paint("approved", .ok) : terminal.paint("denied", .bad)
                out.append("  \(verdict) by \(Printable.line(d.approver)) (\(Printable.line(d.groups.joined(separator: ", ")))) at \(Stamp.string(from: d.at)): \(Printable.line(d.reason))")
            }
        }
        return out.joined(separator: "\n")
    }

    func grantTable(_ grants: [GrantDocument]) -> String {
        let rows = grants.map { g -> [(text: String, shown: String)] in
            let status = g.status(at: now)
            let left = status == "live" ? Self.span(g.expires.timeIntervalSince(now)) : "-"
            return [plain(Printable.line(g.id)), (status, styled(state: status)), plain(left),
                    plain(Printable.cut(Printable.line(g.subject), 28)), plain(Printable.line(g.target)),
                    plain(Printable.cut(Printable.line("\(g.policy)/\(g.rule)"), 40)),
                    plain(Printable.line(g.grantedBy.joined(separator: ", "))), plain(Printable.line(g.approval))]
        }
        return table(["ID", "STATE", "LEFT", "SUBJECT", "TARGET", "RULE", "GRANTED BY", "APPROVAL"], rows)
    }

    func grantDetail(_ g: GrantDocument) -> String {
        var out = [terminal.paint("grant \(Printable.line(g.id))", .bold) + "  " + styled(state: g.status(at: now))]
        func field(_ name: String, _ value: String) {
            out.append(terminal.paint(name.padding(toLength: 13, withPad: " ", startingAt: 0), .dim) + value)
        }
        field("subject", Printable.line(g.subject))
        field("target", Printable.line(g.target))
        field("rule", "policy \"\(Printable.line(g.policy))\" rule \"\(Printable.line(g.rule))\"")
        field("fingerprint", Printable.line(g.fingerprint))
        field("approval", Printable.line(g.approval))
        field("granted by", Printable.line(g.grantedBy.joined(separator: ", ")))
        field("created", Stamp.string(from: g.created))
        field("expires", Stamp.string(from: g.expires))
        if let by = g.revokedBy, let at = g.revoked {
            field("revoked", "\(Stamp.string(from: at)) by \(Printable.line(by)): \(Printable.line(g.revokeReason ?? ""))")
        }
        return out.joined(separator: "\n")
    }
}
