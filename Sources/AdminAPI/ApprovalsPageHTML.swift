import Approvals
import Foundation
import Identity
import ProxyCore

/// The approvals page's HTML: plain server-rendered markup, every value from a request or a token
/// HTML-escaped here and nowhere else. Styles and script are separate files (ApprovalsPageAssets)
/// so that the CSP needs no inline code.
enum ApprovalsPageHTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static let keywords: Set<String> = [
        "SELECT", "FROM", "WHERE", "UPDATE", "SET", "INSERT", "INTO", "VALUES", "DELETE", "RETURNING", "AND", "OR", "NOT",
        "NULL", "IS", "IN", "LIKE", "ILIKE", "BETWEEN", "JOIN", "LEFT", "RIGHT", "INNER", "OUTER", "FULL", "CROSS", "ON", "USING",
        "GROUP", "BY", "ORDER", "HAVING", "LIMIT", "OFFSET", "AS", "DISTINCT", "UNION", "ALL", "EXCEPT", "INTERSECT", "WITH",
        "CASE", "WHEN", "THEN", "ELSE", "END", "CREATE", "ALTER", "DROP", "TABLE", "INDEX", "VIEW", "TRUNCATE", "GRANT",
        "REVOKE", "BEGIN", "COMMIT", "ROLLBACK", "CASCADE", "EXISTS", "TRUE", "FALSE", "DEFAULT", "CONFLICT", "DO", "NOTHING",
        "COPY", "TO", "FOR", "PRIMARY", "KEY", "REFERENCES", "ASC", "DESC", "FUNCTION", "SCHEMA", "DATABASE", "ROLE", "USER",
    ]

    /// The statement, escaped, with keywords, string literals, numbers and comments in spans.
    static func highlight(_ sql: String) -> String {
        let s = Array(sql.unicodeScalars)
        var out = ""
        var i = 0
        func span(_ cls: String, _ from: Int, _ to: Int) {
            out += "<span class=\"\(cls)\">" + escape(String(String.UnicodeScalarView(s[from..<to]))) + "</span>"
        }
        while i < s.count {
            let c = s[i]
            if c == "'" {
                var j = i + 1
                while j < s.count {
                    if s[j] == "'" { if j + 1 < s.count, s[j + 1] == "'" { j += 2; continue }; j += 1; break }
                    j += 1
                }
                span("str", i, min(j, s.count)); i = min(j, s.count)
            } else if c == "-", i + 1 < s.count, s[i + 1] == "-" {
                var j = i
                while j < s.count, s[j] != "\n" { j += 1 }
                span("cm", i, j); i = j
            } else if c.properties.isAlphabetic || c == "_" {
                var j = i
                while j < s.count, s[j].properties.isAlphabetic || s[j] == "_" || s[j] == "$" || ("0"..."9").contains(s[j]) { j += 1 }
                let word = String(String.UnicodeScalarView(s[i..<j]))
                if keywords.contains(word.uppercased()) { span("kw", i, j) } else { out += escape(word) }
                i = j
            } else if ("0"..."9").contains(c) {
                var j = i
                while j < s.count, ("0"..."9").contains(s[j]) || s[j] == "." { j += 1 }
                span("num", i, j); i = j
            } else {
                out += escape(String(c)); i += 1
            }
        }
        return out
    }

    static func duration(_ seconds: TimeInterval) -> String {
        let total = max(0, Int(seconds.rounded(.down)))
        let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60)
        if h > 0 { return "\(h)h \(m)m" }
        return m > 0 ? "\(m)m \(s)s" : "\(s)s"
    }

    static func iso(_ date: Date) -> String { date.formatted(Date.ISO8601FormatStyle()) }

    /// A whole page around `main`.
    static func page(title: String, main: String, who: VerifiedIdentity? = nil, csrf: String? = nil, refresh: Bool = false) -> String {
        var head = """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · Tollgate</title>
            <link rel="stylesheet" href="/page/app.css">
            <script src="/page/app.js" defer></script>

            """
        // Without JavaScript the list still follows: the browser reloads it.
        if refresh { head += "<noscript><meta http-equiv=\"refresh\" content=\"15\"></noscript>\n" }
        var header = "<header><p class=\"brand\"><a href=\"/approvals\">Tollgate approvals</a></p>"
        if let who, let csrf {
            header += "<form method=\"post\" action=\"/logout\" class=\"logout\"><p>Signed in as <strong>\(escape(who.subject))</strong>"
                + (who.groups.isEmpty ? "" : " (\(escape(who.groups.joined(separator: ", "))))")
                + " <input type=\"hidden\" name=\"csrf\" value=\"\(escape(csrf))\"><button type=\"submit\">Log out</button></p></form>"
        }
        header += "</header>"
        return head + "</head>\n<body>\n<a class=\"skip\" href=\"#main\">Skip to content</a>\n" + header
            + "\n<main id=\"main\" tabindex=\"-1\">\n" + main + "\n</main>\n</body>\n</html>\n"
    }

    /// A page that says one thing (an error, a refusal, a logout).
    static func message(title: String, _ text: String, who: VerifiedIdentity? = nil, csrf: String? = nil, link: (String, String)? = ("/approvals", "Back to the approvals")) -> String {
        var main = "<h1>\(escape(title))</h1>\n<p role=\"alert\" class=\"message\">\(escape(text))</p>"
        if let link { main += "\n<p><a href=\"\(escape(link.0))\">\(escape(link.1))</a></p>" }
        return page(title: title, main: main, who: who, csrf: csrf)
    }

    /// One held request: what, who, where, which rule, how long; the decisions so far; context;
    /// and, for someone who may decide, the form.
    static func approval(_ r: ApprovalRecord, who: VerifiedIdentity, csrf: String, context: [RecentExchanges.Entry], now: Date, heading: String = "h3") -> String {
        let id = escape(r.id)
        var html = "<article class=\"approval state-\(r.state.rawValue)\" id=\"approval-\(id)\" aria-labelledby=\"approval-\(id)-title\">\n"
        html += "<\(heading) id=\"approval-\(id)-title\"><a href=\"/approvals/\(id)\">\(id)</a> <span class=\"state\">\(r.state.rawValue)</span></\(heading)>\n"
        html += "<pre class=\"sql\" aria-label=\"statement\"><code>\(highlight(r.statement))</code></pre>\n<dl>\n"
        html += "<dt>Subject</dt><dd class=\"subject\">\(escape(r.subject))\(r.subjectGroups.isEmpty ? "" : " <span class=\"groups\">(\(escape(r.subjectGroups.joined(separator: ", "))))</span>")</dd>\n"
        html += "<dt>Target</dt><dd class=\"target\">\(escape(r.target))</dd>\n"
        html += "<dt>Rule</dt><dd class=\"rule\">\(escape(r.policy)) / \(escape(r.rule))</dd>\n"
        html += "<dt>Approvers</dt><dd class=\"requirement\">\(escape(r.requirement.description))</dd>\n"
        html += "<dt>Age</dt><dd><time class=\"age\" datetime=\"\(iso(r.createdAt))\">\(duration(now.timeIntervalSince(r.createdAt)))</time></dd>\n"
        if r.state == .pending {
            html += "<dt>Time left</dt><dd><time class=\"time-left\" datetime=\"\(iso(r.deadline))\" data-deadline=\"\(iso(r.deadline))\">\(duration(r.deadline.timeIntervalSince(now)))</time></dd>\n"
        } else if !r.outcomeReason.isEmpty {
            html += "<dt>Outcome</dt><dd class=\"outcome\">\(escape(r.outcomeReason))</dd>\n"
        }
        html += "</dl>\n"
        if !r.decisions.isEmpty {
            html += "<ul class=\"decisions\" aria-label=\"decisions\">\n"
            for d in r.decisions {
                html += "<li>\(escape(d.verdict.rawValue)) by <strong>\(escape(d.approver))</strong>: \(escape(d.reason)) <time datetime=\"\(iso(d.at))\">\(iso(d.at))</time></li>\n"
            }
            html += "</ul>\n"
        }
        if !context.isEmpty {
            html += "<details class=\"context\" open><summary>Earlier in this session (last \(context.count), as recorded)</summary>\n<ol>\n"
            for c in context {
                html += "<li><code>\(highlight(c.text))</code> <span class=\"state\">\(escape(c.decision)) (\(escape(c.rule)))"
                    + (c.outcome.isEmpty ? "" : ": \(escape(c.outcome))") + "</span></li>\n"
            }
            html += "</ol></details>\n"
        }
        if r.state == .pending {
            if r.subject == who.subject {
                html += "<p class=\"note\">Your own request: another approver must decide.</p>\n"
            } else if !who.groups.contains(where: r.requirement.groups.contains) {
                html += "<p class=\"note\">You are not in this rule's approver groups.</p>\n"
            } else {
                html += """
                    <form method="post" action="/approvals/\(id)/decision" class="decide">
                    <input type="hidden" name="csrf" value="\(escape(csrf))">
                    <label for="reason-\(id)">Reason</label>
                    <input type="text" id="reason-\(id)" name="reason" required maxlength="500" autocomplete="off">
                    <button type="submit" name="verdict" value="approve" class="approve">Approve</button>
                    <button type="submit" name="verdict" value="deny" class="deny">Deny</button>
                    </form>

                    """
            }
        }
        return html + "</article>\n"
    }

    /// The pending list's inside (also what the script fetches to update it).
    static func pendingList(_ pending: [ApprovalRecord], who: VerifiedIdentity, csrf: String, contexts: [String: [RecentExchanges.Entry]], now: Date) -> String {
        guard !pending.isEmpty else {
            return "<p class=\"empty\">Nothing is waiting for you. You see the requests your groups (\(escape(who.groups.joined(separator: ", ")))) may decide on, and your own.</p>\n"
        }
        return pending.map { approval($0, who: who, csrf: csrf, context: contexts[$0.id] ?? [], now: now) }.joined()
    }

    static func recentTable(_ decided: [ApprovalRecord]) -> String {
        guard !decided.isEmpty else { return "<p class=\"empty\">No decisions yet.</p>\n" }
        var html = "<table>\n<thead><tr><th scope=\"col\">Approval</th><th scope=\"col\">Outcome</th><th scope=\"col\">Who</th><th scope=\"col\">Why</th><th scope=\"col\">When</th><th scope=\"col\">Statement</th></tr></thead>\n<tbody>\n"
        for r in decided {
            let who = r.decisions.map(\.approver).joined(separator: ", ")
            let why = r.decisions.isEmpty ? r.outcomeReason : r.decisions.map(\.reason).joined(separator: "; ")
            html += "<tr><td><a href=\"/approvals/\(escape(r.id))\">\(escape(r.id))</a></td><td>\(r.state.rawValue)</td><td>\(escape(who))</td><td>\(escape(why))</td>"
                + "<td>\(r.decidedAt.map { "<time datetime=\"\(iso($0))\">\(iso($0))</time>" } ?? "")</td><td><code>\(highlight(String(r.statement.prefix(200))))</code></td></tr>\n"
        }
        return html + "</tbody>\n</table>\n"
    }
}
