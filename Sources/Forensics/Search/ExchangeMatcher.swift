import CaptureFormat

/// Decides whether a complete exchange satisfies the query. One per task (it owns a PatternMatcher).
struct ExchangeMatcher {
    let query: CaptureQuery
    let conditions: [Condition]
    let pattern: PatternMatcher?
    var texts = EventTexts()

    init(query: CaptureQuery) throws {
        self.query = query
        conditions = query.conditions
        pattern = try query.pattern.map(PatternMatcher.init)
    }

    mutating func matches(_ x: ExchangeEvents) -> Bool {
        var model: Exchange?
        for c in conditions where !satisfies(c.field, x, &model) { return false }
        return true
    }

    /// The exchange's model, assembled once, when the first condition that reads it is judged.
    func model(_ x: ExchangeEvents, _ cache: inout Exchange?) -> Exchange {
        if let m = cache { return m }
        let m = x.conditionModel()
        cache = m
        return m
    }

    mutating func satisfies(_ field: Condition.Field, _ x: ExchangeEvents, _ cache: inout Exchange?) -> Bool {
        let q = query
        switch field {
        case .time:
            if let since = q.since, x.time < since { return false }
            if let until = q.until, x.time >= until { return false }
            return true
        case .kind:
            return x.events.contains { e in e.envelope.kind.map(q.kinds.contains) ?? false }
        case .decision:
            let m = model(x, &cache)
            return m.decisions.contains { d in q.decisions.contains { $0.rawValue == d.action.name } }
                || m.approvals.contains { a in
                    switch a.state {
                    case .granted: return q.decisions.contains(.approved)
                    case .denied: return q.decisions.contains(.denied)
                    case .expired: return q.decisions.contains(.expired)
                    case .withdrawn: return q.decisions.contains(.withdrawn)
                    case .abandoned: return q.decisions.contains(.abandoned)
                    case .reused: return q.decisions.contains(.reused)
                    case .requested: return false
                    }
                }
        case .request:
            return model(x, &cache).request.map { ExchangeMatcher.request($0, matches: q.request) } ?? false
        case .status:
            return x.events.contains { e in
                guard e.envelope.kind == .response,
                      let status = e.block.raw.withUnsafeBytes({ try? e.envelope.httpStatus(in: $0) }) ?? nil else { return false }
                return q.statuses.contains { $0.matches(status) }
            }
        case .masked:
            return model(x, &cache).masks.contains { e in e.count > 0 && q.masked.contains { $0.matches(e.detector) } }
        case .prompt:
            return model(x, &cache).annotations.contains { q.prompts.contains($0.promptID) }
        case .trace:
            return model(x, &cache).annotations.contains { a in
                guard let t = a.traceID else { return false }
                return q.traces.contains { lower($0).contains(t) }
            }
        case .pattern:
            guard let pattern, let spec = q.pattern else { return true }
            let found = textMatches(x, pattern, spec)
            return spec.invert ? !found : found
        }
    }

    mutating func textMatches(_ x: ExchangeEvents, _ pattern: PatternMatcher, _ spec: TextPattern) -> Bool {
        for e in x.events {
            // A block without the pattern's required bytes holds no matching text.
            guard e.block.mayMatchPattern else { continue }
            let hit = e.block.raw.withUnsafeBytes { buffer in
                (try? texts.search(kind: e.envelope.kind, payload: e.envelope.payload, in: buffer,
                                   requests: spec.searchesRequests, responses: spec.searchesResponses) { text, whole in
                    pattern.matches(text, asLines: !whole)
                }) ?? false
            }
            if hit { return true }
        }
        return false
    }

    static func request(_ r: Request, matches f: RequestFilter) -> Bool {
        let wantsPostgres = !f.tables.isEmpty || !f.statementKinds.isEmpty || !f.functions.isEmpty
        let wantsHTTP = !f.methods.isEmpty || !f.paths.isEmpty
        let wantsKubernetes = !f.verbs.isEmpty || !f.namespaces.isEmpty || !f.resources.isEmpty || !f.subresources.isEmpty
        func http(_ h: HTTPRequest) -> Bool {
            if !f.methods.isEmpty && !f.methods.contains(where: { upper($0).contains(h.method) }) { return false }
            let path = RequestFilter.path(of: h.target)
            if !f.paths.isEmpty && !f.paths.contains(where: { $0.matches(path) }) { return false }
            return true
        }
        switch r {
        case .postgres(let p):
            guard !wantsHTTP && !wantsKubernetes else { return false }
            if !f.tables.isEmpty && !f.tables.contains(where: { g in p.resources.contains { RequestFilter.tableMatches(g, schema: $0.schema, name: $0.name) } }) {
                return false
            }
            if !f.statementKinds.isEmpty && !f.statementKinds.contains(where: { k in p.statementKinds.contains { lower(k).contains($0) } }) {
                return false
            }
            if !f.functions.isEmpty && !f.functions.contains(where: { g in p.functions.contains { RequestFilter.functionMatches(g, $0) } }) {
                return false
            }
            return true
        case .http(let h):
            guard !wantsPostgres && !wantsKubernetes else { return false }
            return http(h)
        case .kubernetes(let k):
            guard !wantsPostgres, http(k.http) else { return false }
            if !f.verbs.isEmpty && !f.verbs.contains(where: { lower($0).contains(k.verb) }) { return false }
            if !f.namespaces.isEmpty && !f.namespaces.contains(k.namespace) { return false }
            if !f.resources.isEmpty && !f.resources.contains(where: { lower($0).contains(k.resource) }) { return false }
            if !f.subresources.isEmpty && !f.subresources.contains(where: { lower($0).contains(k.subresource) }) { return false }
            return true
        case .unknown:
            // A protocol this reader does not know matches only criteria that name no protocol's fields.
            return !wantsPostgres && !wantsHTTP && !wantsKubernetes
        }
    }
}
