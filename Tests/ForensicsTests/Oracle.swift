import CaptureFormat
import Forensics
import Foundation

/// The search semantics written the slow, obvious way: decode every event of every block, group
/// by exchange id, and check each filter on the decoded structs. The engine must agree with it
/// on every query; it shares no code with the engine's planner, matcher or text walker.
enum Oracle {
    struct Hit: Hashable, CustomStringConvertible {
        var session: String
        /// Exchange id, or 0 for an event outside exchanges.
        var exchange: UInt64
        var firstSequence: UInt64
        var description: String { "\(session.prefix(8)):\(exchange == 0 ? "#\(firstSequence)" : "x\(exchange)")" }
    }

    static func search(_ paths: [String], _ q: CaptureQuery) throws -> [Hit] {
        var out: [Hit] = []
        for path in paths {
            let capture = try CaptureFile(path: path)
            let h = capture.header
            guard sessionMatches(h, q) else { continue }
            var events: [Event] = []
            for b in capture.blocks { events += try capture.events(in: b) }
            var groups: [(UInt64, [Event])] = []
            var index: [UInt64: Int] = [:]
            for e in events {
                if e.exchangeID == 0 {
                    if let k = e.payload.kind, q.kinds.contains(k) { groups.append((0, [e])) }
                } else if let i = index[e.exchangeID] {
                    groups[i].1.append(e)
                } else {
                    index[e.exchangeID] = groups.count
                    groups.append((e.exchangeID, [e]))
                }
            }
            for (id, es) in groups where matches(es, q) {
                out.append(Hit(session: h.sessionID, exchange: id, firstSequence: es[0].sequence))
            }
        }
        return out
    }

    static func sessionMatches(_ h: SessionHeader, _ q: CaptureQuery) -> Bool {
        (q.sessions.isEmpty || q.sessions.contains { h.sessionID.hasPrefix($0) })
            && (q.subjects.isEmpty || q.subjects.contains { $0.matches(h.subject) })
            && (q.groups.isEmpty || h.groups.contains { g in q.groups.contains { $0.matches(g) } })
            && (q.targets.isEmpty || q.targets.contains { $0.matches(h.target) })
            && (q.protocols.isEmpty || q.protocols.contains(h.protocolName))
    }

    static func matches(_ es: [Event], _ q: CaptureQuery) -> Bool {
        let t = es[0].wallMicros
        if let s = q.since, t < s { return false }
        if let u = q.until, t >= u { return false }
        if !q.kinds.isEmpty && !es.contains(where: { q.kinds.contains($0.payload.kind!) }) { return false }
        if !q.decisions.isEmpty {
            let outcomes: [String] = es.compactMap {
                switch $0.payload {
                case .decision(let d): return d.action.name
                case .approval(let a): return ["granted": "approved", "denied": "denied", "expired": "expired"][a.state.name]
                default: return nil
                }
            }
            if !q.decisions.contains(where: { outcomes.contains($0.rawValue) }) { return false }
        }
        let r = q.request
        let requestFiltered = !(r.tables.isEmpty && r.statementKinds.isEmpty && r.functions.isEmpty && r.methods.isEmpty && r.paths.isEmpty
            && r.verbs.isEmpty && r.namespaces.isEmpty && r.resources.isEmpty && r.subresources.isEmpty)
        if requestFiltered && !es.contains(where: { requestMatches($0.payload, r) }) { return false }
        if !q.statuses.isEmpty {
            let codes = es.compactMap { e -> UInt16? in if case .response(.http(let h)) = e.payload { return h.status } else { return nil } }
            if !codes.contains(where: { c in q.statuses.contains { f in
                let text = f.description
                return text.hasSuffix("xx") ? c / 100 == UInt16(text.prefix(1))! : String(c) == text
            } }) { return false }
        }
        if !q.masked.isEmpty {
            let fired = es.flatMap { e -> [String] in
                if case .maskSummary(let m) = e.payload { return m.entries.filter { $0.count > 0 }.map(\.detector) }
                return []
            }
            if !fired.contains(where: { d in q.masked.contains { $0.matches(d) } }) { return false }
        }
        let annotations = es.compactMap { e -> Annotation? in if case .annotation(let a) = e.payload { return a } else { return nil } }
        if !q.prompts.isEmpty && !annotations.contains(where: { q.prompts.contains($0.promptID) }) { return false }
        if !q.traces.isEmpty && !annotations.contains(where: { a in q.traces.contains { $0 == a.traceID || $0.lowercased() == a.traceID } }) { return false }
        if let p = q.pattern {
            let found = es.contains { e in texts(e.payload, p.scope).contains { textMatches($0.0, whole: $0.1, p) } }
            if found == p.invert { return false }
        }
        return true
    }

    static func requestMatches(_ p: Payload, _ f: RequestFilter) -> Bool {
        guard case .request(let r) = p else { return false }
        let pgFields = !f.tables.isEmpty || !f.statementKinds.isEmpty || !f.functions.isEmpty
        let httpFields = !f.methods.isEmpty || !f.paths.isEmpty
        let k8sFields = !f.verbs.isEmpty || !f.namespaces.isEmpty || !f.resources.isEmpty || !f.subresources.isEmpty
        func any<T>(_ values: [T], _ ok: (T) -> Bool) -> Bool { values.isEmpty || values.contains(where: ok) }
        func httpOK(_ h: HTTPRequest) -> Bool {
            let path = String(h.target.split(separator: "?", omittingEmptySubsequences: false)[0])
            return any(f.methods) { $0 == h.method || $0.uppercased() == h.method } && any(f.paths) { $0.matches(path) }
        }
        switch r {
        case .postgres(let pg):
            if httpFields || k8sFields { return false }
            return any(f.tables) { g in pg.resources.contains { res in
                    g.pattern.contains(".") ? g.matches(res.schema.isEmpty ? res.name : "\(res.schema).\(res.name)") : g.matches(res.name) } }
                && any(f.statementKinds) { k in pg.statementKinds.contains { $0 == k || $0 == k.lowercased() } }
                && any(f.functions) { g in pg.functions.contains { fn in
                    g.matches(fn) || (!g.pattern.contains(".") && fn.contains(".") && g.matches(String(fn.split(separator: ".").last!))) } }
        case .http(let h):
            if pgFields || k8sFields { return false }
            return httpOK(h)
        case .kubernetes(let k):
            if pgFields { return false }
            func eq(_ values: [String], _ v: String) -> Bool { any(values) { $0 == v || $0.lowercased() == v } }
            return httpOK(k.http) && eq(f.verbs, k.verb) && any(f.namespaces) { $0 == k.namespace }
                && eq(f.resources, k.resource) && eq(f.subresources, k.subresource)
        case .unknown:
            return !(pgFields || httpFields || k8sFields)
        }
    }

    /// (text, matched whole) pairs of an event in a scope, as documented for PATTERN.
    static func texts(_ p: Payload, _ scope: TextPattern.Scope) -> [(String, Bool)] {
        let requests = scope != .responses, responses = scope != .requests
        func s(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }
        var out: [(String, Bool)] = []
        switch p {
        case .request(let r) where requests:
            switch r {
            case .postgres(let pg):
                out.append((pg.text, true))
                for prm in pg.parameters { if let v = prm.value { out.append((s(v), false)) } }
            case .http(let h):
                out.append(("\(h.method) \(h.target)", true))
                if !h.body.data.isEmpty { out.append((s(h.body.data), false)) }
            case .kubernetes(let k):
                if !k.http.body.data.isEmpty { out.append((s(k.http.body.data), false)) }
                out.append(("\(k.http.method) \(k.http.target)", true))
                if !k.command.isEmpty { out.append((k.command.joined(separator: " "), true)) }
            case .unknown:
                break
            }
        case .response(let r) where responses:
            switch r {
            case .postgres(let pg):
                if !pg.rows.isEmpty { out.append((pg.rows.map { $0.map { s($0 ?? []) }.joined(separator: "\t") }.joined(separator: "\n"), false)) }
                if !pg.commandTag.isEmpty { out.append((pg.commandTag, true)) }
                for n in [pg.error].compactMap({ $0 }) + pg.notices {
                    out += [n.message, n.detail, n.hint].filter { !$0.isEmpty }.map { ($0, false) }
                }
            case .http(let h):
                if !h.body.data.isEmpty { out.append((s(h.body.data), false)) }
            case .unknown:
                break
            }
        case .streamChunk(let c):
            if (c.stream == .stdin && requests) || ((c.stream == .stdout || c.stream == .stderr) && responses) { out.append((s(c.data), false)) }
        default:
            break
        }
        return out
    }

    static func textMatches(_ text: String, whole: Bool, _ p: TextPattern) -> Bool {
        p.patterns.contains { pattern in
            if p.fixed {
                return p.ignoreCase ? text.lowercased().contains(pattern.lowercased()) : text.contains(pattern)
            }
            var options: NSRegularExpression.Options = whole ? [.dotMatchesLineSeparators] : [.anchorsMatchLines]
            if p.ignoreCase { options.insert(.caseInsensitive) }
            let re = try! NSRegularExpression(pattern: pattern, options: options)
            return re.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        }
    }
}
