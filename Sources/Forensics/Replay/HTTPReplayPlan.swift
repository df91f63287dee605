import CaptureFormat

/// One recorded HTTP or Kubernetes request of a session, as `sessreplay` will treat it: replayed
/// (with the fields and body it re-sends) or skipped with the reason. Built from the one exchange
/// model, so what was forwarded is the gate's recorded decision, never re-derived.
public struct HTTPReplayStep: Sendable, Equatable {
    /// The exchange id in the original capture (kept in the replay's capture, for `sessdiff`).
    public var exchangeID: UInt64
    /// The request as recorded (`.http` or `.kubernetes`): the replay's capture records it so.
    public var request: Request
    public var http: HTTPRequest
    /// The end-to-end fields re-sent (no hop-by-hop field, no credential, no Host or framing).
    public var fields: [KeyValue]
    /// The request body as recorded (the stdin stream chunks of the exchange, in order).
    public var body: [UInt8]
    /// When the original request was recorded (µs since the epoch).
    public var recordedMicros: Int64
    /// The original response (the last one recorded), if any.
    public var recordedResponse: HTTPResponse?
    public var disposition: ReplayStep.Disposition

    public var replays: Bool { disposition == .replay }
}

/// The plan of an HTTP session's replay. The capture's HTTP bodies and fields carry no value flags
/// (format 1.4 flags PostgreSQL values only), so what the gate masked, withheld or cut is read from
/// the marks it leaves in the recorded text: `[REDACTED…]`, the stars of every built-in mask
/// (`***-**-****`, `a****@…`, `****-****-****-1111`, `+** …`), the cap's `…[tollgate: N bytes, cut]`
/// and the `(withheld)` of a credential field. A request holding any of them is skipped: a value
/// that merely contains `**` is skipped too (fail closed).
public enum HTTPReplayPlanner {
    /// Methods replayed without `--allow-writes`.
    public static let readMethods: Set<String> = ["GET", "HEAD", "OPTIONS"]
    /// Kubernetes verbs replayed without `--allow-writes` (watch is a stream: skipped as unsupported).
    public static let kubernetesReadVerbs: Set<String> = ["get", "list"]
    /// Subresources that open a stream or a tunnel: never replayed.
    static let streamSubresources: Set<String> = ["exec", "attach", "portforward", "proxy"]
    /// RFC 9110 §7.6.1 hop-by-hop fields, the credentials the gate withheld, and what the replay's
    /// client sets itself (Host for the target, the framing of the body it sends, the encodings it reads).
    static let notResent: Set<String> = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
                                         "authorization", "proxy-authorization", "cookie", "set-cookie",
                                         "host", "content-length", "expect", "accept-encoding"]
    /// Marks the gate leaves where it masked, withheld or cut a recorded value.
    public static let markers = ["[REDACTED", "…[tollgate:", "**", "(withheld)"]

    /// The steps of one session's exchanges in recorded order; `bodies`: the stdin stream chunks
    /// of each exchange, concatenated (the request bodies as recorded).
    public static func plan(_ exchanges: [Exchange], bodies: [UInt64: [UInt8]], options: ReplayOptions) -> [HTTPReplayStep] {
        exchanges.compactMap { x -> HTTPReplayStep? in
            guard let h = x.http, let request = x.request, let micros = x.requestMicros else { return nil }
            var body = bodies[x.id] ?? []
            if body.isEmpty, !h.body.data.isEmpty { body = h.body.data }
            let recorded: HTTPResponse? = if case .http(let r)? = x.response { r } else { nil }
            var step = HTTPReplayStep(exchangeID: x.id, request: request, http: h, fields: fields(h, kubernetes: x.kubernetes != nil),
                                      body: body, recordedMicros: micros, recordedResponse: recorded, disposition: .replay)
            if let reason = skipReason(x, h, body: body, options: options) { step.disposition = .skip(reason) }
            return step
        }
    }

    static func skipReason(_ x: Exchange, _ h: HTTPRequest, body: [UInt8], options: ReplayOptions) -> SkipReason? {
        if !x.forwarded {
            let why = x.decision.map { "\($0.action == .deny ? "denied" : "not approved") by \($0.policy)/\($0.rule)" } ?? "not forwarded"
            return .notForwarded(why)
        }
        if let from = options.fromMicros, x.requestMicros! < from { return .outsideWindow }
        if let to = options.toMicros, x.requestMicros! >= to { return .outsideWindow }
        let method = h.method.uppercased()
        if let stream = streamReason(x, h) { return .unsupported(stream) }
        if let reason = withheldReason(h, body: body) { return .withheld(reason) }
        if !options.allowWrites {
            if let k = x.kubernetes {
                if !kubernetesReadVerbs.contains(k.verb) { return .write("the Kubernetes verb \(k.verb) (\(method)) may write; give --allow-writes") }
            } else if !readMethods.contains(method) {
                return .write("\(method) may write (only GET, HEAD and OPTIONS are read-only); give --allow-writes")
            }
        }
        return nil
    }

    /// Upgrades, Kubernetes streams (exec, attach, port-forward, proxy, watch, follow): not replayed.
    static func streamReason(_ x: Exchange, _ h: HTTPRequest) -> String? {
        if h.method.uppercased() == "CONNECT" { return "CONNECT is not replayed" }
        if let up = h.headers.first(where: { $0.key.lowercased() == "upgrade" }) {
            return "an upgrade (\(up.value)) is not replayed"
        }
        if let k = x.kubernetes {
            if streamSubresources.contains(k.subresource) { return "Kubernetes \(k.subresource) is a stream: not replayed" }
            if k.verb == "watch" { return "a Kubernetes watch is a stream: not replayed" }
            if k.subresource == "log", queryValue(h.target, "follow").map({ $0 == "true" || $0 == "1" }) == true {
                return "a followed log (follow=true) is a stream: not replayed"
            }
        }
        return nil
    }

    /// What the recording says could not be kept of the request: a mark in its target, a re-sent
    /// field or its body; a body shorter or longer than its recorded Content-Length; a body the
    /// request event itself records as cut.
    public static func withheldReason(_ h: HTTPRequest, body: [UInt8]) -> String? {
        if let m = markers.first(where: { h.target.contains($0) }) { return "the recorded path or query holds \"\(m)\" (masked or withheld)" }
        for f in h.headers where !notResent.contains(f.key.lowercased()) {
            if let m = markers.first(where: { f.value.contains($0) }) { return "the recorded field \(f.key) holds \"\(m)\" (masked or withheld)" }
        }
        if h.body.isTruncated { return "the recorded body is cut (\(h.body.data.count) of \(h.body.totalSize) bytes)" }
        if let m = markers.first(where: { contains(body, Array($0.utf8)) }) { return "the recorded body holds \"\(m)\" (masked, withheld or cut)" }
        if let length = h.headers.last(where: { $0.key.lowercased() == "content-length" }).flatMap({ Int($0.value) }), length != body.count {
            return "the recorded body is \(body.count) bytes, its Content-Length \(length): not recorded whole"
        }
        if body.isEmpty, h.headers.contains(where: { $0.key.lowercased() == "transfer-encoding" }) {
            return "the request had a chunked body and none is recorded"
        }
        return nil
    }

    /// The fields re-sent, in recorded order: end-to-end ones only. A field the Connection field
    /// names is hop-by-hop too. For Kubernetes, Impersonate-* never (the gate removed them) and
    /// Accept without protobuf (the gate asked for JSON).
    public static func fields(_ h: HTTPRequest, kubernetes: Bool) -> [KeyValue] {
        let named = Set(h.headers.filter { $0.key.lowercased() == "connection" }
            .flatMap { $0.value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } })
        var out: [KeyValue] = []
        for f in h.headers {
            let name = f.key.lowercased()
            if notResent.contains(name) || named.contains(name) { continue }
            if kubernetes, name.hasPrefix("impersonate-") { continue }
            if kubernetes, name == "accept" {
                let kept = f.value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.contains("protobuf") }
                out.append(KeyValue(f.key, kept.isEmpty ? "application/json" : kept.joined(separator: ", ")))
                continue
            }
            out.append(f)
        }
        return out
    }

    static func queryValue(_ target: String, _ name: String) -> String? {
        guard let q = target.firstIndex(of: "?") else { return nil }
        for pair in target[target.index(after: q)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.first.map(String.init) == name { return parts.count > 1 ? String(parts[1]) : "" }
        }
        return nil
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        let first = needle[0]
        var i = 0
        while i <= haystack.count - needle.count {
            if haystack[i] == first, haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}
