import CaptureFormat
import Foundation

/// `statements.sql`: a session's PostgreSQL statements in order, as a commented record.
///
/// Decisions, and why:
/// - It is a record, not a migration. A `\quit` line right after the header stops psql before
///   the first statement, so running the file by accident repeats no write; someone who
///   means to replay it (against a copy) removes that line.
/// - Statements the gate did not forward (denied, or held for review and not granted) are
///   commented out line by line: replaying a record must never run what the policy refused.
/// - Bound parameters (extended protocol) are listed in comments above their statement as SQL
///   literals (`E'…'` escapes for control characters, `NULL`, binary values as `'\x…'::bytea`),
///   and the statement keeps its `$n` placeholders. Substituting them into the text would need
///   a full SQL lexer to stay correct around strings, comments and dollar quotes.
/// - Every value that goes into a comment (subject, rule, reason, parameters) has CR and LF
///   escaped, so no recorded value can end a comment and become SQL.
public enum SQLScript {
    public static func render(_ exchanges: [Exchange], header h: SessionHeader, capturePath: String) -> String? {
        let statements = exchanges.filter { $0.postgres != nil }
        guard !statements.isEmpty else { return nil }
        var out = """
            -- Tollgate session record: the PostgreSQL statements of session \(comment(h.sessionID)), in order.
            -- Subject \(comment(h.subject)), target \(comment(h.target)), session start \(isoTime(micros: h.startMicros)).
            -- Rendered by sessexport \(BundleFormat.toolVersion) from \(comment(capturePath)).
            --
            -- This is a record of what was sent, not a script to run. Statements the gate did not
            -- forward (denied, or held for review and not granted) are commented out. Bound
            -- parameters are listed as SQL literals in comments above their statement, which keeps
            -- its $n placeholders.
            -- psql stops at the next line; remove it only to replay on purpose, against a copy.
            \\quit

            """
        for x in statements {
            let p = x.postgres!
            out += "\n"
            var facts = ["exchange \(x.id)"]
            if let s = x.requestSequence { facts.append("seq \(s)") }
            if let t = x.requestMicros { facts.append(isoTime(micros: t)) }
            facts.append(p.path.name)
            if let d = x.decision {
                var s = d.action.name
                if !d.policy.isEmpty || !d.rule.isEmpty { s += " \(d.policy)/\(d.rule)" }
                facts.append(s)
            } else {
                facts.append("no decision recorded")
            }
            if let a = x.approval {
                facts.append("approval \(a.state.name)" + (a.by.isEmpty ? "" : " by \(a.by)"))
            }
            out += "-- " + comment(facts.joined(separator: " · ")) + "\n"
            if let d = x.decision, !d.reason.isEmpty { out += "-- reason: \(comment(d.reason))\n" }
            if !p.statementName.isEmpty { out += "-- prepared statement \(comment(p.statementName))\n" }
            for (i, prm) in p.parameters.enumerated() {
                out += "-- $\(i + 1) = \(comment(literal(prm)))\n"
            }
            switch x.response {
            case .postgres(let r):
                if let e = r.error {
                    out += "-- failed: \(comment("\(e.sqlState) \(e.message)"))\n"
                } else if !r.commandTag.isEmpty {
                    out += "-- result: \(comment(r.commandTag))\n"
                }
            default:
                break
            }
            let text = terminated(p.text)
            if x.forwarded && p.path != .functionCall {
                out += text + "\n"
            } else {
                out += "-- NOT FORWARDED" + (p.path == .functionCall ? " (a function call, not SQL)" : "") + ":\n"
                for line in lines(text) { out += "-- " + line + "\n" }
            }
        }
        return out
    }

    /// Ends a statement with `;`, on a new line when its last line holds a `--` comment.
    static func terminated(_ text: String) -> String {
        var t = text
        while let last = t.unicodeScalars.last, CharacterSet.whitespacesAndNewlines.contains(last) { t.unicodeScalars.removeLast() }
        if t.hasSuffix(";") { return t }
        return lines(t).last?.contains("--") == true ? t + "\n;" : t + ";"
    }

    /// Splits on LF, CR LF and CR: PostgreSQL ends a `--` comment at either.
    static func lines(_ text: String) -> [String] {
        text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// Text safe inside a `--` comment: CR, LF and other control characters escaped.
    static func comment(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\t"
            case _ where u.value < 0x20 || u.value == 0x7F || u.value == 0x85 || u.value == 0x2028 || u.value == 0x2029:
                out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// A parameter as a PostgreSQL literal, with its type when the client named one.
    static func literal(_ p: Parameter) -> String {
        var s: String
        if let value = p.value {
            if p.format == 1 || String(validating: value, as: UTF8.self) == nil || value.contains(0) {
                s = "'\\x" + hex(value) + "'::bytea" + (p.format == 1 ? " (binary format)" : " (not UTF-8 text)")
            } else {
                s = quoted(String(decoding: value, as: UTF8.self))
            }
        } else {
            s = "NULL"
        }
        if p.typeOID != 0 { s += " -- type \(typeNames[p.typeOID] ?? "oid \(p.typeOID)")" }
        return s
    }

    /// `'…'` with quotes doubled; `E'…'` when the value holds a backslash or a control character.
    static func quoted(_ s: String) -> String {
        let needsEscapes = s.unicodeScalars.contains { $0 == "\\" || $0.value < 0x20 || $0.value == 0x7F }
        guard needsEscapes else { return "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }
        var out = "E'"
        for u in s.unicodeScalars {
            switch u {
            case "'": out += "''"
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F: out += String(format: "\\x%02x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "'"
    }

    static let typeNames: [UInt32: String] = [
        16: "bool", 17: "bytea", 20: "int8", 21: "int2", 23: "int4", 25: "text", 114: "json", 700: "float4", 701: "float8",
        1043: "varchar", 1082: "date", 1114: "timestamp", 1184: "timestamptz", 1186: "interval", 1700: "numeric", 2950: "uuid", 3802: "jsonb",
    ]
}
