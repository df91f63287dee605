import CaptureFormat

/// RFC 4180 CSV: CRLF between records; a field is quoted when it holds a comma, a double
/// quote, CR or LF, and quotes inside it are doubled. Values are written as recorded: a
/// statement that begins with `=` or `-` is not altered, because the file is evidence (the
/// man page tells auditors to import it as text rather than open it in a spreadsheet).
public enum CSV {
    public static func field(_ s: String) -> String {
        let needsQuotes = s.utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0D || $0 == 0x0A }
        guard needsQuotes else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public static func record(_ fields: [String]) -> String {
        fields.map(field).joined(separator: ",") + "\r\n"
    }

    public static let exchangeColumns = [
        "session", "exchange", "request_seq", "time", "protocol", "request", "path", "parameters", "statement_kinds", "resources",
        "decision", "policy", "rule", "reason", "masks_applied", "approval", "approved_by", "approval_reason",
        "status", "rows", "rows_recorded", "error", "duration_us", "masked", "annotation",
    ]

    /// `exchanges.csv`: a header, then one record per exchange.
    public static func exchanges(_ list: [Exchange], session: String) -> String {
        var out = record(exchangeColumns)
        for x in list { out += record(row(x, session: session)) }
        return out
    }

    static func row(_ x: Exchange, session: String) -> [String] {
        var protocolName = "", request = "", path = "", parameters = "", kinds = "", resources = ""
        switch x.request {
        case .postgres(let p):
            protocolName = "postgres"
            request = p.text
            path = p.path.name
            if !p.parameters.isEmpty {
                var w = JSONWriter()
                w.array { a in for prm in p.parameters { a.bytes(nil, prm.value) } }
                parameters = w.text
            }
            kinds = p.statementKinds.joined(separator: ";")
            resources = p.resources.map { "\($0.qualifiedName):\($0.access == .read ? "read" : "write")" }.joined(separator: ";")
        case .http(let h):
            protocolName = "http"
            request = "\(h.method) \(h.host)\(h.target)"
            path = h.method
        case .kubernetes(let k):
            protocolName = "kubernetes"
            request = "\(k.http.method) \(k.http.target)"
            path = k.verb
            kinds = [k.verb, k.subresource].filter { !$0.isEmpty }.joined(separator: ";")
            var r = k.resource
            if !k.namespace.isEmpty { r = "\(k.namespace)/\(r)" }
            if !k.name.isEmpty { r += "/\(k.name)" }
            if !k.subresource.isEmpty { r += "/\(k.subresource)" }
            resources = r
            if !k.command.isEmpty { parameters = k.command.joined(separator: " ") }
        case .unknown(let u):
            protocolName = u.name
        case nil:
            break
        }
        var status = "", rows = "", recorded = "", error = "", duration = ""
        switch x.response {
        case .postgres(let p):
            status = p.commandTag
            rows = String(p.rowCount)
            recorded = String(x.recordedRows)
            if let e = p.error { error = "\(e.sqlState): \(e.message)" }
            if p.durationMicros > 0 { duration = String(p.durationMicros) }
        case .http(let h):
            status = String(h.status)
            if h.status >= 400 { error = String(h.status) }
            if h.durationMicros > 0 { duration = String(h.durationMicros) }
        case .unknown:
            break
        case nil:
            break
        }
        let d = x.decision
        let a = x.approval
        return [
            session, String(x.id), x.requestSequence.map(String.init) ?? "", x.requestMicros.map { isoTime(micros: $0) } ?? "",
            protocolName, request, path, parameters, kinds, resources,
            d?.action.name ?? "", d?.policy ?? "", d?.rule ?? "", d?.reason ?? "", d?.masks.joined(separator: ";") ?? "",
            a?.state.name ?? "", a?.by ?? "", a?.reason ?? "",
            status, rows, recorded, error, duration,
            x.masks.map { "\($0.detector)=\($0.count)" + ($0.location.isEmpty ? "" : "@\($0.location)") }.joined(separator: ";"),
            x.annotations.map { [$0.promptID.isEmpty ? "" : "prompt=\($0.promptID)", $0.traceparent.isEmpty ? "" : "traceparent=\($0.traceparent)", $0.text]
                .filter { !$0.isEmpty }.joined(separator: " ") }.joined(separator: "; "),
        ]
    }
}
