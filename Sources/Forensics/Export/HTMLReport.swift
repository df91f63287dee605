import CaptureFormat
import Foundation

/// `report.html`: the bundle for people. Self-contained (inline CSS, no scripts, no external
/// assets; a Content-Security-Policy that forbids loading anything), readable offline.
///
/// Every value that comes from a capture (statements, subjects, reasons, stream output) is
/// hostile until escaped: `HTML.escape` escapes `& < > " '` for text and attribute values alike,
/// and shows control characters as visible symbols (a terminal escape sequence in exec output
/// becomes `␛[31m`, not an invisible byte). Links go only to files inside the bundle, under
/// names sessexport chose.
public enum HTML {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\n", "\t": out.unicodeScalars.append(u)
            case _ where u.value < 0x20: out.unicodeScalars.append(Unicode.Scalar(0x2400 + u.value)!)  // ␀…␟
            case _ where u.value == 0x7F: out += "␡"
            case _ where (0x80...0x9F).contains(u.value): out += "\u{FFFD}"
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }
}

/// What the report shows about one session: its manifest entry, and its section already
/// rendered, so that an export holds one session's exchanges at a time, not every session's.
public struct ReportSession: Sendable {
    public var entry: SessionEntry
    /// The session's directory in the bundle.
    public var directory: String
    public var section: String

    public init(entry: SessionEntry, directory: String, rendering: SessionRendering, limits: ReportLimits) {
        self.entry = entry; self.directory = directory
        section = SessionSection(entry: entry, directory: directory, rendering: rendering, limits: limits).render()
    }
}

/// How much of each session the report lists: a report must stay small enough to open in a
/// browser, so the budget is shared among the sessions. Everything is in the open formats.
public struct ReportLimits: Sendable {
    /// Timeline events per session.
    public var timeline: Int
    /// Rows of the refused/reviewed and approvals tables per session.
    public var rows: Int

    public init(timeline: Int, rows: Int) { self.timeline = timeline; self.rows = rows }

    /// About 20,000 timeline rows and 10,000 table rows for the whole report, at least 100 and 50 per session.
    public static func forSessions(_ n: Int) -> ReportLimits {
        let n = max(1, n)
        return ReportLimits(timeline: min(2000, max(100, 20_000 / n)), rows: min(1000, max(50, 10_000 / n)))
    }
}

/// The helpers both the report and its sections write with.
protocol HTMLWriting {}

extension HTMLWriting {
    func e(_ s: String) -> String { HTML.escape(s) }
    func keyValues(_ rows: [(String, String)]) -> String {
        "<table class=\"kv\">\n" + rows.map { "<tr><th>\(e($0.0))</th><td>\(e($0.1))</td></tr>\n" }.joined() + "</table>\n"
    }
    func table(_ head: [String], _ rows: [[String]], raw: Set<Int> = []) -> String {
        var t = "<table>\n<tr>" + head.map { "<th>\(e($0))</th>" }.joined() + "</tr>\n"
        for r in rows {
            t += "<tr>" + r.enumerated().map { raw.contains($0.offset) ? "<td>\($0.element)</td>" : "<td>\(e($0.element))</td>" }.joined() + "</tr>\n"
        }
        return t + "</table>\n"
    }
    func badge(_ i: Integrity) -> String {
        switch i.state {
        case .clean: "<span class=\"ok\">clean close</span>"
        case .recovered: "<span class=\"warn\">recovered copy</span>"
        case .truncated: "<span class=\"warn\">truncated (declared)</span>"
        }
    }
    func counts(_ d: [String: UInt64]) -> String {
        d.isEmpty ? "none" : d.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
    func requestText(_ x: Exchange) -> String {
        switch x.request {
        case .postgres(let p): return p.text
        case .http(let h): return "\(h.method) \(h.host)\(h.target)"
        case .kubernetes(let k):
            var s = "\(k.http.method) \(k.http.target)"
            if !k.command.isEmpty { s += "  — " + k.command.joined(separator: " ") }
            return s
        case .unknown(let u): return "(\(u.name), \(u.bytes.count) bytes)"
        case nil: return "(no request recorded)"
        }
    }
    func time(_ micros: Int64?) -> String { micros.map { isoTime(micros: $0) } ?? "" }
    func anchor(_ directory: String) -> String { "s-" + directory.split(separator: "/").last.map(String.init)! }
}

/// One session's section of the report.
struct SessionSection: HTMLWriting {
    let entry: SessionEntry
    let directory: String
    let rendering: SessionRendering
    let limits: ReportLimits

    public func render() -> String {
        let x = entry
        let r = rendering
        var h = "<section id=\"\(anchor(directory))\">\n<h2>Session \(e(x.session))</h2>\n"
        h += keyValues([
            ("Subject", x.subject + (x.groups.isEmpty ? "" : " (groups: \(x.groups.joined(separator: ", ")))")),
            ("Issuer", x.issuer), ("Target", "\(x.target) (\(x.protocol))"), ("Proxy", x.proxy), ("Recorded by", x.writer),
            ("Start", x.start), ("Last event", x.lastEvent ?? "-"), ("End reason", x.endReason.isEmpty ? "none recorded" : x.endReason),
            ("Events", "\(x.events) (" + counts(x.kinds) + ")"), ("Exchanges", String(x.exchanges)), ("Errors", String(x.errors)),
            ("Decisions", counts(x.decisions)), ("Approvals", counts(x.approvals)), ("Masked values", counts(x.masked)),
            ("Resources", x.resources.isEmpty ? "none" : x.resources.joined(separator: ", ")),
            ("Integrity", x.integrity.summaryText),
        ].filter { !$0.1.isEmpty })
        h += "<p class=\"files\">Files: <a href=\"\(e(x.capture))\">capture</a>"
        for f in r.files { h += " · <a href=\"\(e(directory + "/" + f.name))\">\(e(f.name))</a>" }
        h += "</p>\n"

        // Decisions: every rule with its count, then every request that was not simply allowed.
        var byRule: [String: (String, String, String, Int)] = [:]
        for ex in r.exchanges { for d in ex.decisions {
            let key = "\(d.action.name)\u{0}\(d.policy)\u{0}\(d.rule)"
            byRule[key, default: (d.action.name, d.policy, d.rule, 0)].3 += 1
        } }
        h += "<h3>Decisions by rule</h3>\n"
        h += byRule.isEmpty ? "<p>No decisions recorded.</p>\n" : table(["Decision", "Policy", "Rule", "Requests"], byRule.keys.sorted().map { k in
            let v = byRule[k]!
            return [v.0, v.1, v.2, String(v.3)]
        })
        let allNotAllowed = r.exchanges.filter { ($0.decision.map { $0.action != .allow } ?? false) }
        let notAllowed = allNotAllowed.prefix(limits.rows)
        h += "<h3>Refused and reviewed requests</h3>\n"
        h += more(allNotAllowed.count, shown: notAllowed.count, in: "exchanges.csv")
        h += notAllowed.isEmpty ? "<p>None: every request was allowed.</p>\n" : table(
            ["Exchange", "Time", "Request", "Decision", "Rule", "Reason", "Outcome"], notAllowed.map { ex in
                let d = ex.decision!
                var outcome = ex.forwarded ? "forwarded" : "not forwarded"
                if let a = ex.approval { outcome += "; approval \(a.state.name)" + (a.by.isEmpty ? "" : " by \(a.by)") }
                return ["<span class=\"mono\">x\(ex.id)</span>", e(time(ex.requestMicros)), "<pre>\(e(String(requestText(ex).prefix(4000))))</pre>",
                        "<span class=\"\(d.action == .deny ? "bad" : "warn")\">\(e(d.action.name))</span>", e("\(d.policy)/\(d.rule)"), e(d.reason), e(outcome)]
            }, raw: Set(0..<7))

        let allApprovals = r.exchanges.flatMap { ex in ex.approvals.map { (ex, $0) } }
        let approvals = allApprovals.prefix(limits.rows)
        h += "<h3>Approvals</h3>\n"
        h += more(allApprovals.count, shown: approvals.count, in: "events.jsonl")
        h += approvals.isEmpty ? "<p>No approvals recorded.</p>\n" : table(["Exchange", "State", "Approval", "By", "Reason", "Approver groups", "Request"], approvals.map { ex, a in
            ["x\(ex.id)", a.state.name, a.approvalID, a.by, a.reason, a.approverGroups.joined(separator: ", "), String(requestText(ex).prefix(300))]
        })

        var masked: [String: (UInt64, Set<String>)] = [:]
        for ex in r.exchanges { for m in ex.masks {
            masked[m.detector, default: (0, [])].0 += m.count
            if !m.location.isEmpty { masked[m.detector]!.1.insert(m.location) }
        } }
        h += "<h3>What was masked</h3>\n"
        h += "<p>Responses are recorded after masking: the capture never held the clear values. Counts per detector, from the mask summaries of each response.</p>\n"
        h += masked.isEmpty ? "<p>Nothing was masked.</p>\n" : table(["Detector", "Values masked", "Where"], masked.keys.sorted().map { k in
            [k, String(masked[k]!.0), masked[k]!.1.sorted().joined(separator: ", ")]
        })

        h += "<h3>Timeline</h3>\n"
        if r.timelineOmitted > 0 {
            h += "<p>The first \(r.timeline.count) events; \(r.timelineOmitted) more are in <a href=\"\(e(directory))/events.jsonl\">events.jsonl</a>.</p>\n"
        }
        let start = r.timeline.first?.micros ?? 0
        h += table(["Seq", "Time", "+s", "Exchange", "Kind", "Event"], r.timeline.map { t in
            [String(t.sequence), t.micros == 0 ? "" : isoTime(micros: t.micros), String(format: "%.3f", Double(t.micros - start) / 1_000_000),
             t.exchange == 0 ? "" : "x\(t.exchange)", t.kind, t.text]
        })
        return h + "</section>\n"
    }

    /// A note when a table lists only the first rows.
    func more(_ total: Int, shown: Int, in file: String) -> String {
        total > shown ? "<p>The first \(shown) of \(total); all are in <a href=\"\(e(directory))/\(file)\">\(file)</a>.</p>\n" : ""
    }
}

public struct HTMLReport: Sendable, HTMLWriting {
    public var created: String
    public var exporter: ExporterInfo
    public var caseInfo: CaseInfo?
    public var selection: [String]
    public var sessions: [ReportSession]

    public init(created: String, exporter: ExporterInfo, caseInfo: CaseInfo?, selection: [String], sessions: [ReportSession]) {
        self.created = created; self.exporter = exporter; self.caseInfo = caseInfo; self.selection = selection; self.sessions = sessions
    }

    public func render() -> String {
        var h = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(e(title))</title>
            <style>\(HTMLReport.css)</style>
            </head>
            <body>

            """
        h += "<h1>\(e(title))</h1>\n"
        h += keyValues([
            ("Case", caseInfo?.id ?? "none given"),
            ("Note", caseInfo?.note ?? ""),
            ("Exported", created),
            ("Exported by", "\(exporter.name) (account \(exporter.user), uid \(exporter.uid), host \(exporter.host))"),
            ("Exporter key", exporter.keyId),
            ("Tool", "sessexport \(BundleFormat.toolVersion)"),
            ("Selection", selection.joined(separator: " ")),
            ("Sessions", String(sessions.count)),
        ].filter { !$0.1.isEmpty })
        h += """
            <p class="note">This report is a reading aid. The evidence is the capture files under <code>captures/</code>, \
            listed with their SHA-256 in <code>manifest.json</code>, which <code>manifest.sig</code> signs. Check the whole \
            bundle offline with <code>sessexport verify --key EXPORTER.pem --capture-key PROXY.pem BUNDLE</code>, \
            or the signature alone with <code>openssl pkeyutl -verify -pubin -inkey exporter-public.pem -rawin -in manifest.json -sigfile manifest.sig</code>.</p>

            """
        h += integrity()
        h += overview()
        for s in sessions { h += s.section }
        h += "</body>\n</html>\n"
        return h
    }

    var title: String { "Evidence bundle" + (caseInfo?.id.map { " — case \($0)" } ?? "") }

    func integrity() -> String {
        var h = "<h2>Integrity at export</h2>\n"
        h += "<p>Each capture was checked with the capture format's verifier before it was bundled: CRCs, the SHA-256 hash chain, the Ed25519 signature of every block and of the trailer, sequence numbers from 1 without gaps, and the footer against the blocks.</p>\n"
        h += table(["Capture", "Session", "State", "Blocks", "Events", "Signer key", "Detail"], sessions.map { s in
            let i = s.entry.integrity
            var detail = ""
            if let cut = i.cut { detail = "complete blocks end at byte \(i.completeLength ?? 0) of \(i.fileLength): \(cut)" }
            if let r = i.recovery { detail = "recovered \(r.recovered) from \(r.originalLength) bytes, kept \(r.keptLength): \(r.reason)" }
            return [e(s.entry.capture), "<a href=\"#\(anchor(s.directory))\">\(e(s.entry.session))</a>", badge(i), e(String(i.blocks)),
                    e("\(i.events) (1–\(i.lastSequence))"), e(i.signerKeyId + (i.keyPinned ? " (pinned)" : " (not pinned)")), e(detail)]
        }, raw: Set(0..<7))
        return h
    }

    func overview() -> String {
        "<h2>Sessions</h2>\n" + table(["Session", "Subject", "Target", "Start", "Last event", "Exchanges", "Decisions", "Masked"], sessions.map { s in
            let x = s.entry
            return ["<a href=\"#\(anchor(s.directory))\">\(e(x.session))</a>", e(x.subject), e("\(x.target) (\(x.protocol))"), e(x.start),
                    e(x.lastEvent ?? "-"), e(String(x.exchanges)), e(counts(x.decisions)), e(counts(x.masked))]
        }, raw: Set(0..<8))
    }

    static let css = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:78em;padding:0 1em;color:#1b1b1b}\
        h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}h3{margin-top:1.4em}\
        table{border-collapse:collapse;margin:.5em 0;width:100%}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}\
        th{background:#f4f4f4}table.kv{width:auto}table.kv th{width:12em}\
        td pre,pre{margin:0;white-space:pre-wrap;word-break:break-word;font:12px/1.4 ui-monospace,monospace}\
        .mono,code{font-family:ui-monospace,monospace}.ok{color:#176d2c;font-weight:600}.warn{color:#8a5a00;font-weight:600}\
        .bad{color:#b00020;font-weight:600}.note{background:#f7f7f0;border-left:4px solid #c9c28a;padding:.5em 1em}
        """
}
