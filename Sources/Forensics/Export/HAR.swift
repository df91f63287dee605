import CaptureFormat
import Foundation

/// `http.har`: the HTTP exchanges of a session (plain HTTP and the Kubernetes API) as HAR 1.2
/// (http://www.softwareishard.com/blog/har-12-spec/), so browser tools and HAR viewers open them.
///
/// What HAR cannot say is kept in underscore fields, which the spec reserves for extensions:
/// `_tollgate` on each entry holds the exchange id, the decision with its rule, the approval and
/// the mask summary. A request the gate refused without recording a response gets status 0 (as
/// browsers record a blocked request). Bodies are as recorded (masked, and capped): a capped body's
/// true size is `content.size`, and the entry's comment gives the SHA-256 of the part not kept.
/// Bodies that are not UTF-8 are base64 (`content.encoding`; for request bodies, which HAR gives
/// no encoding field, `postData._encoding`).
public enum HAR {
    public static func render(_ exchanges: [Exchange], header h: SessionHeader, casts: [UInt64: String]) -> String? {
        let entries = exchanges.filter { $0.http != nil }
        guard !entries.isEmpty else { return nil }
        var w = JSONWriter()
        w.object { root in
            root.object("log") { log in
                log.string("version", "1.2")
                log.object("creator") { $0.string("name", "sessexport"); $0.string("version", BundleFormat.toolVersion) }
                log.array("pages") { pages in
                    pages.object { p in
                        p.string("startedDateTime", isoTime(micros: h.startMicros))
                        p.string("id", h.sessionID)
                        p.string("title", "\(h.subject) on \(h.target) (\(h.protocolName))")
                        p.object("pageTimings") { _ in }
                    }
                }
                log.array("entries") { list in
                    for x in entries { entry(x, header: h, cast: casts[x.id], into: &list) }
                }
                log.string("comment", "Tollgate session \(h.sessionID); values as recorded by the gate, after masking; credentials removed before recording.")
            }
        }
        return w.text + "\n"
    }

    static func entry(_ x: Exchange, header h: SessionHeader, cast: String?, into list: inout JSONWriter) {
        let req = x.http!
        let started = x.requestMicros ?? h.startMicros
        var response: HTTPResponse?
        if case .http(let r) = x.response { response = r }
        // Wait is the gate's measured duration; without one, the time between request and response events.
        let waitMicros: Int64 = response.map { r in
            r.durationMicros > 0 ? Int64(clamping: r.durationMicros) : max(0, (x.responseMicros ?? started) - started)
        } ?? 0
        let waitMS = Double(waitMicros) / 1000
        list.object { e in
            e.string("pageref", h.sessionID)
            e.string("startedDateTime", isoTime(micros: started))
            e.raw("time", milliseconds(waitMS))
            e.object("request") { r in
                r.string("method", req.method)
                r.string("url", url(req, header: h))
                r.string("httpVersion", "HTTP/1.1")
                r.array("cookies") { _ in }
                r.array("headers") { a in for kv in req.headers { a.object { $0.string("name", kv.key); $0.string("value", kv.value) } } }
                r.array("queryString") { a in
                    for (name, value) in query(req.target) { a.object { $0.string("name", name); $0.string("value", value) } }
                }
                if req.body.totalSize > 0 {
                    r.object("postData") { p in
                        p.string("mimeType", header("Content-Type", req.headers) ?? "application/octet-stream")
                        bodyText(req.body, encodingKey: "_encoding", into: &p)
                        if let note = capNote(req.body) { p.string("comment", note) }
                    }
                }
                r.number("headersSize", -1)
                r.raw("bodySize", String(req.body.totalSize))
            }
            e.object("response") { r in
                r.number("status", response.map { Int($0.status) } ?? 0)
                r.string("statusText", response.map { reason(Int($0.status)) } ?? "")
                r.string("httpVersion", response == nil ? "" : "HTTP/1.1")
                r.array("cookies") { _ in }
                r.array("headers") { a in
                    for kv in response?.headers ?? [] { a.object { $0.string("name", kv.key); $0.string("value", kv.value) } }
                }
                r.object("content") { c in
                    let body = response?.body ?? CappedBytes(data: [])
                    c.raw("size", String(body.totalSize))
                    c.string("mimeType", response.flatMap { header("Content-Type", $0.headers) } ?? "")
                    if body.totalSize > 0 { bodyText(body, encodingKey: "encoding", into: &c) }
                    if let note = capNote(body) { c.string("comment", note) }
                }
                r.string("redirectURL", response.flatMap { header("Location", $0.headers) } ?? "")
                r.number("headersSize", -1)
                r.raw("bodySize", response.map { String($0.body.totalSize) } ?? "-1")
                if response == nil { r.string("comment", x.forwarded ? "no response recorded" : "not forwarded by the gate; no response recorded") }
            }
            e.object("cache") { _ in }
            e.object("timings") { t in
                t.raw("send", "0"); t.raw("wait", milliseconds(waitMS)); t.raw("receive", "0")
            }
            e.object("_tollgate") { t in
                t.number("exchange", x.id)
                if let s = x.requestSequence { t.number("request_seq", s) }
                if let d = x.decision {
                    t.string("decision", d.action.name); t.field("policy", d.policy); t.field("rule", d.rule); t.field("reason", d.reason)
                    t.strings("masks_applied", d.masks)
                }
                if !x.approvals.isEmpty {
                    t.array("approvals") { a in
                        for ap in x.approvals {
                            a.object { $0.string("state", ap.state.name); $0.field("approval_id", ap.approvalID); $0.field("by", ap.by); $0.field("reason", ap.reason); $0.field("grant_id", ap.grantID) }
                        }
                    }
                }
                if !x.masks.isEmpty {
                    t.array("masked") { a in
                        for m in x.masks { a.object { $0.string("detector", m.detector); $0.number("count", m.count); $0.field("location", m.location) } }
                    }
                }
                if let k = x.kubernetes {
                    t.object("k8s") { o in
                        o.string("verb", k.verb); o.field("group", k.apiGroup); o.field("version", k.apiVersion); o.field("resource", k.resource)
                        o.field("namespace", k.namespace); o.field("name", k.name); o.field("subresource", k.subresource)
                        o.strings("command", k.command); o.field("container", k.container)
                    }
                }
                if let cast { t.string("asciicast", cast) }
            }
        }
    }

    /// Milliseconds with at most three decimals, as a JSON number.
    static func milliseconds(_ ms: Double) -> String {
        let s = String(format: "%.3f", ms)
        var t = Substring(s)
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return String(t)
    }

    /// An absolute URL: HAR requires one. The gate terminates TLS, so the client's scheme was https.
    static func url(_ r: HTTPRequest, header h: SessionHeader) -> String {
        let host = r.host.isEmpty ? h.target : r.host
        let target = r.target.hasPrefix("/") ? r.target : "/" + r.target
        return "https://\(host)\(target)"
    }

    static func query(_ target: String) -> [(String, String)] {
        guard let q = target.firstIndex(of: "?") else { return [] }
        var query = target[target.index(after: q)...]
        if let hash = query.firstIndex(of: "#") { query = query[..<hash] }
        return query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (s: Substring) in String(s).removingPercentEncoding ?? String(s) }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    static func header(_ name: String, _ headers: [KeyValue]) -> String? {
        headers.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    static func bodyText(_ body: CappedBytes, encodingKey: String, into o: inout JSONWriter) {
        if let s = String(validating: body.data, as: UTF8.self) {
            o.string("text", s)
        } else {
            o.string("text", Data(body.data).base64EncodedString())
            o.string(encodingKey, "base64")
        }
    }

    static func capNote(_ body: CappedBytes) -> String? {
        guard body.isTruncated else { return nil }
        var s = "recorded the first \(body.data.count) of \(body.totalSize) bytes"
        if let d = body.cutSHA256 { s += "; SHA-256 of the rest: \(hex(d))" }
        return s
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 0: ""
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 409: "Conflict"
        case 422: "Unprocessable Entity"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        default: ""
        }
    }
}
