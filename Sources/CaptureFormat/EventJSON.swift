// JSON renderings of events, headers and summaries (JSON Lines for `--json`
// and for evidence exports). Keys keep a fixed order so output diffs cleanly.
// Bytes render as a string when they are valid UTF-8, else as {"base64": "..."}.

import Foundation

/// Builds one JSON value into a string. Keys are written in call order.
public struct JSONWriter {
    public private(set) var text = ""
    var needsComma: [Bool] = [false]

    public init() {}

    mutating func separator() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }

    mutating func keyed(_ key: String?) {
        separator()
        if let key { JSONWriter.quote(key, into: &text); text += ":" }
    }

    public mutating func object(_ key: String? = nil, _ body: (inout JSONWriter) -> Void) {
        keyed(key)
        text += "{"
        needsComma.append(false)
        body(&self)
        needsComma.removeLast()
        text += "}"
    }

    public mutating func array(_ key: String? = nil, _ body: (inout JSONWriter) -> Void) {
        keyed(key)
        text += "["
        needsComma.append(false)
        body(&self)
        needsComma.removeLast()
        text += "]"
    }

    public mutating func string(_ key: String?, _ value: String) {
        keyed(key)
        JSONWriter.quote(value, into: &text)
    }

    /// Omitted when empty, to keep lines short.
    public mutating func field(_ key: String, _ value: String) {
        if !value.isEmpty { string(key, value) }
    }

    public mutating func number<T: BinaryInteger>(_ key: String?, _ value: T) {
        keyed(key)
        text += String(value)
    }

    public mutating func bool(_ key: String?, _ value: Bool) {
        keyed(key)
        text += value ? "true" : "false"
    }

    /// A value that is already JSON text, such as a number with a fraction; the caller vouches for it.
    public mutating func raw(_ key: String?, _ json: String) {
        keyed(key)
        text += json
    }

    public mutating func null(_ key: String?) {
        keyed(key)
        text += "null"
    }

    public mutating func bytes(_ key: String?, _ value: [UInt8]?) {
        guard let value else { return null(key) }
        if let s = String(validating: value, as: UTF8.self) {
            string(key, s)
        } else {
            object(key) { $0.string("base64", Data(value).base64EncodedString()) }
        }
    }

    public mutating func strings(_ key: String, _ values: [String]) {
        if values.isEmpty { return }
        array(key) { a in for v in values { a.string(nil, v) } }
    }

    public mutating func pairs(_ key: String, _ values: [KeyValue]) {
        if values.isEmpty { return }
        object(key) { o in for kv in values { o.string(kv.key, kv.value) } }
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F || u.value == 0x2028 || u.value == 0x2029:
                out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}

/// RFC 3339 UTC with microseconds, e.g. 2026-11-25T19:02:05.123456Z.
public func isoTime(micros: Int64) -> String {
    var seconds = time_t(micros.floorDiv(1_000_000))
    let fraction = micros - Int64(seconds) * 1_000_000
    var t = tm()
    gmtime_r(&seconds, &t)
    func pad(_ v: Int32, _ n: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, n - s.count)) + s }
    let frac = String(fraction)
    return "\(pad(t.tm_year + 1900, 4))-\(pad(t.tm_mon + 1, 2))-\(pad(t.tm_mday, 2))T\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):\(pad(t.tm_sec, 2))."
        + String(repeating: "0", count: 6 - frac.count) + frac + "Z"
}

extension Int64 {
    func floorDiv(_ d: Int64) -> Int64 { self >= 0 ? self / d : -((-self + d - 1) / d) }
}

extension Event {
    /// One JSON object on one line: the envelope, then the payload's fields.
    public func jsonLine() -> String {
        var w = JSONWriter()
        w.object { o in writeJSON(&o) }
        return w.text
    }

    public func writeJSON(_ o: inout JSONWriter) {
        o.number("seq", sequence)
        o.string("time", isoTime(micros: wallMicros))
        o.number("mono_ns", monotonicNanos)
        if exchangeID != 0 { o.number("exchange", exchangeID) }
        o.string("kind", payload.kind?.name ?? "kind-\(kindCode)")
        switch payload {
        case .sessionStart(let s):
            o.field("client", s.clientAddress)
            o.field("application_name", s.applicationName)
            if let t = s.tls {
                o.object("tls") { $0.field("version", t.version); $0.field("cipher", t.cipher); $0.field("server_name", t.serverName) }
            }
            o.pairs("parameters", s.parameters)
        case .sessionEnd(let e):
            o.string("reason", e.reason)
            o.field("detail", e.detail)
            if let c = e.counts {
                o.object("counts") {
                    $0.number("requests", c.requests); $0.number("refused", c.refused); $0.number("errors", c.errors)
                    $0.number("rows", c.rows); $0.number("bytes_from_client", c.bytesFromClient); $0.number("bytes_to_client", c.bytesToClient)
                }
            }
        case .request(let r):
            r.writeJSON(&o)
        case .decision(let d):
            o.string("decision", d.action.name)
            o.field("policy", d.policy); o.field("rule", d.rule); o.field("reason", d.reason)
            o.strings("masks", d.masks)
        case .approval(let a):
            o.string("state", a.state.name)
            o.field("approval_id", a.approvalID); o.field("by", a.by); o.field("reason", a.reason)
            o.strings("approver_groups", a.approverGroups)
            o.field("grant_id", a.grantID)
        case .response(let r):
            r.writeJSON(&o)
        case .streamChunk(let s):
            o.string("stream", s.stream.name)
            if !s.data.isEmpty { o.bytes("data", s.data) }
            if s.columns != 0 || s.rows != 0 { o.number("cols", s.columns); o.number("rows", s.rows) }
        case .maskSummary(let m):
            o.array("masked") { a in
                for e in m.entries {
                    a.object { $0.string("detector", e.detector); $0.number("count", e.count); $0.field("location", e.location) }
                }
            }
        case .annotation(let a):
            o.field("prompt_id", a.promptID); o.field("traceparent", a.traceparent); o.field("text", a.text)
            o.pairs("attributes", a.attributes)
        case .divergence(let d):
            o.number("statement", d.statement); o.string("expected", d.expected); o.string("actual", d.actual)
        case .unknown(_, let bytes):
            o.object("raw") { $0.string("base64", Data(bytes).base64EncodedString()) }
        }
    }
}

extension CappedBytes {
    func writeJSON(_ key: String, _ o: inout JSONWriter) {
        o.bytes(key, data)
        if isTruncated {
            o.number("\(key)_size", totalSize)
            if let cutSHA256 { o.string("\(key)_cut_sha256", hex(cutSHA256)) }
        }
    }
}

extension Request {
    func writeJSON(_ o: inout JSONWriter) {
        switch self {
        case .postgres(let p):
            o.string("protocol", "postgres")
            o.string("path", p.path.name)
            o.string("statement", p.text)
            o.field("statement_name", p.statementName); o.field("portal", p.portalName)
            if !p.parameters.isEmpty {
                o.array("parameters") { a in for prm in p.parameters { a.bytes(nil, prm.value) } }
                // Since 1.4 (as arrays beside the values, so the values' shape stays as it was).
                if p.parameters.contains(where: { $0.typeOID != 0 }) {
                    o.array("parameter_types") { a in for prm in p.parameters { a.number(nil, prm.typeOID) } }
                }
                if p.parameters.contains(where: { $0.format != 0 }) {
                    o.array("parameter_formats") { a in for prm in p.parameters { a.number(nil, prm.format) } }
                }
                if p.parameters.contains(where: { !$0.flags.isEmpty }) {
                    o.array("parameter_flags") { a in for prm in p.parameters { a.array { f in for n in prm.flags.names { f.string(nil, n) } } } }
                }
            }
            if !p.textFlags.isEmpty { o.strings("statement_flags", p.textFlags.names) }
            o.field("fingerprint", p.fingerprint); o.field("normalized", p.normalized)
            o.strings("statement_kinds", p.statementKinds)
            if !p.resources.isEmpty {
                o.array("resources") { a in
                    for r in p.resources {
                        a.object { $0.field("schema", r.schema); $0.string("name", r.name); $0.string("access", r.access == .read ? "read" : "write") }
                    }
                }
            }
            o.strings("functions", p.functions)
        case .http(let h):
            o.string("protocol", "http")
            h.writeJSON(&o)
        case .kubernetes(let k):
            o.string("protocol", "kubernetes")
            k.http.writeJSON(&o)
            o.object("k8s") { w in
                w.string("verb", k.verb); w.field("group", k.apiGroup); w.field("version", k.apiVersion)
                w.string("resource", k.resource); w.field("namespace", k.namespace); w.field("name", k.name)
                w.field("subresource", k.subresource); w.strings("command", k.command); w.field("container", k.container)
            }
        case .unknown(let u):
            o.string("protocol", u.name)
            o.number("payload_bytes", UInt64(u.bytes.count))
        }
    }
}

extension HTTPRequest {
    func writeJSON(_ o: inout JSONWriter) {
        o.string("method", method); o.string("target", target); o.field("host", host)
        o.pairs("headers", headers)
        if body.totalSize > 0 { body.writeJSON("body", &o) }
    }
}

extension PostgresNotice {
    func writeJSON(_ key: String?, _ o: inout JSONWriter) {
        o.object(key) { e in
            e.field("severity", severity); e.field("sqlstate", sqlState); e.field("message", message)
            e.field("detail", detail); e.field("hint", hint)
            if !flags.isEmpty { e.strings("flags", flags.names) }
        }
    }
}

extension Response {
    func writeJSON(_ o: inout JSONWriter) {
        switch self {
        case .postgres(let p):
            o.string("protocol", "postgres")
            if !p.columns.isEmpty {
                o.array("columns") { a in for c in p.columns { a.string(nil, c.name) } }
                o.array("rows") { a in
                    for row in p.rows { a.array { r in for v in row { r.bytes(nil, v) } } }
                }
            }
            o.number("row_count", p.rowCount)
            o.field("command_tag", p.commandTag)
            if let e = p.error { e.writeJSON("error", &o) }
            if !p.notices.isEmpty { o.array("notices") { a in for n in p.notices { n.writeJSON(nil, &a) } } }
            if p.durationMicros != 0 { o.number("duration_us", p.durationMicros) }
            if let c = p.cut {
                o.object("cut") { $0.number("rows", c.rows); $0.number("bytes", c.bytes); $0.string("sha256", hex(c.sha256)) }
            }
            if !p.valueFlags.isEmpty {
                o.array("value_flags") { a in
                    for v in p.valueFlags {
                        a.object { $0.number("row", v.row); $0.number("column", v.column); $0.strings("flags", v.flags.names) }
                    }
                }
            }
        case .http(let h):
            o.string("protocol", "http")
            o.number("status", h.status)
            o.pairs("headers", h.headers)
            if h.body.totalSize > 0 { h.body.writeJSON("body", &o) }
            if h.durationMicros != 0 { o.number("duration_us", h.durationMicros) }
        case .unknown(let u):
            o.string("protocol", u.name)
            o.number("payload_bytes", UInt64(u.bytes.count))
        }
    }
}
