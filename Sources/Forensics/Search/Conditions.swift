import CaptureFormat

/// What a block's index (kinds bitmap, term filter, time range) can say about a condition:
/// false only when no event in the block can satisfy it.
indirect enum BlockTest: Sendable {
    case any
    case kinds(UInt32)
    /// An event of one of `kinds` whose block filter holds one of `terms`.
    case terms(kinds: UInt32, [String])
    case time(since: Int64?, until: Int64?)
    case all([BlockTest])

    func admits(_ b: BlockInfo) -> Bool {
        switch self {
        case .any: return true
        case .kinds(let k): return b.kinds & k != 0
        case .terms(let k, let terms): return b.kinds & k != 0 && terms.contains { b.filter.mayContain($0) }
        case .time(let since, let until):
            if let since, b.lastMicros < since { return false }
            if let until, b.firstMicros >= until { return false }
            return true
        case .all(let tests): return tests.allSatisfy { $0.admits(b) }
        }
    }

    static func bit(_ k: EventKind) -> UInt32 { 1 << UInt32(k.rawValue) }
    static func bits(_ ks: [EventKind]) -> UInt32 { ks.reduce(0) { $0 | bit($1) } }

    /// Kinds only, or kinds and terms when every value yields terms (one value without them makes
    /// the disjunction unknowable from the filter).
    static func from(kinds: UInt32, terms: [[String]?]) -> BlockTest {
        if terms.isEmpty || terms.contains(where: { $0 == nil }) { return .kinds(kinds) }
        return .terms(kinds: kinds, terms.flatMap { $0! })
    }
}

/// One field of a query (several values OR), or the request filter (its fields on one request).
/// An exchange matches a query when it satisfies every condition.
struct Condition: Sendable {
    enum Field: Sendable { case time, decision, kind, request, status, masked, prompt, trace, pattern }
    let field: Field
    let test: BlockTest
    /// False when the condition is universal (an inverted pattern): it cannot anchor a search.
    let existential: Bool
}

extension CaptureQuery {
    var conditions: [Condition] {
        var out: [Condition] = []
        if since != nil || until != nil {
            out.append(Condition(field: .time, test: .time(since: since, until: until), existential: true))
        }
        if !decisions.isEmpty {
            out.append(Condition(field: .decision, test: .terms(kinds: BlockTest.bits(decisions.map(\.eventKind)), decisions.map(\.term)),
                                 existential: true))
        }
        if !kinds.isEmpty {
            out.append(Condition(field: .kind, test: .kinds(BlockTest.bits(kinds)), existential: true))
        }
        if !request.isEmpty {
            let r = request
            let k = BlockTest.bit(.request)
            var parts: [BlockTest] = []
            if !r.tables.isEmpty { parts.append(.from(kinds: k, terms: r.tables.map(RequestFilter.tableTerms))) }
            // Terms are exact strings; a value matches as typed or in its usual case (both are tried).
            if !r.statementKinds.isEmpty { parts.append(.terms(kinds: k, r.statementKinds.flatMap { lower($0).map { "stmt:\($0)" } })) }
            if !r.functions.isEmpty { parts.append(.from(kinds: k, terms: r.functions.map(RequestFilter.functionTerms))) }
            if !r.methods.isEmpty { parts.append(.terms(kinds: k, r.methods.flatMap { upper($0).map { "method:\($0)" } })) }
            if !r.verbs.isEmpty { parts.append(.terms(kinds: k, r.verbs.flatMap { lower($0).map { "k8s.verb:\($0)" } })) }
            if !r.namespaces.isEmpty { parts.append(.terms(kinds: k, r.namespaces.map { "k8s.ns:\($0)" })) }
            if !r.resources.isEmpty { parts.append(.terms(kinds: k, r.resources.flatMap { lower($0).map { "k8s.resource:\($0)" } })) }
            if !r.subresources.isEmpty { parts.append(.terms(kinds: k, r.subresources.flatMap { lower($0).map { "k8s.sub:\($0)" } })) }
            if !r.paths.isEmpty { parts.append(.kinds(k)) }
            out.append(Condition(field: .request, test: parts.count == 1 ? parts[0] : .all(parts), existential: true))
        }
        if !statuses.isEmpty {
            out.append(Condition(field: .status, test: .terms(kinds: BlockTest.bit(.response), statuses.flatMap(\.terms)), existential: true))
        }
        if !masked.isEmpty {
            let terms: [[String]?] = masked.map { g in g.literal.map { ["mask:\($0)"] } }
            out.append(Condition(field: .masked, test: .from(kinds: BlockTest.bit(.maskSummary), terms: terms), existential: true))
        }
        if !prompts.isEmpty {
            out.append(Condition(field: .prompt, test: .terms(kinds: BlockTest.bit(.annotation), prompts.map { "prompt:\($0)" }), existential: true))
        }
        if !traces.isEmpty {
            out.append(Condition(field: .trace, test: .terms(kinds: BlockTest.bit(.annotation), traces.flatMap { lower($0).map { "trace:\($0)" } }), existential: true))
        }
        if let pattern {
            let k: UInt32 = switch pattern.scope {
            case .requests: BlockTest.bits([.request, .streamChunk])
            case .responses: BlockTest.bits([.response, .streamChunk])
            case .all: BlockTest.bits([.request, .response, .streamChunk])
            }
            out.append(pattern.invert ? Condition(field: .pattern, test: .any, existential: false)
                                      : Condition(field: .pattern, test: .kinds(k), existential: true))
        }
        return out
    }

    /// Whether a sealed file's summary leaves any chance of a match (false: skip the file unread).
    func admits(summary s: SessionSummary, header h: SessionHeader) -> Bool {
        if s.exchanges == 0 && s.eventCount == 0 { return false }
        let first = min(h.startMicros, s.firstMicros), last = s.lastMicros
        if let since, last < since { return false }
        if let until, first >= until { return false }
        if !decisions.isEmpty {
            let possible = decisions.contains { d in
                switch d {
                case .allow: s.count(of: Decision.Action.allow) > 0
                case .deny: s.count(of: Decision.Action.deny) > 0
                case .review: s.count(of: Decision.Action.review) > 0
                case .approved, .denied, .expired, .withdrawn, .abandoned, .reused: s.count(of: EventKind.approval) > 0
                }
            }
            if !possible { return false }
        }
        return admitsRest(s)
    }

    private func admitsRest(_ s: SessionSummary) -> Bool {
        if !kinds.isEmpty && !kinds.contains(where: { s.count(of: $0) > 0 }) { return false }
        if !masked.isEmpty && !s.maskedCounts.contains(where: { c in c.count > 0 && masked.contains { $0.matches(c.name) } }) {
            return false
        }
        // The resource list is complete unless it reached its cap.
        if !request.tables.isEmpty && s.resources.count < SummaryBuilder.maxResources {
            let any = s.resources.contains { r in
                guard !r.hasPrefix("k8s:") else { return false }
                return request.tables.contains { g in
                    if g.pattern.contains(".") { return g.matches(r) }
                    // Any suffix after a dot may be the table name (schemas may be absent).
                    if g.matches(r) { return true }
                    var rest = Substring(r)
                    while let dot = rest.firstIndex(of: ".") {
                        rest = rest[rest.index(after: dot)...]
                        if g.matches(String(rest)) { return true }
                    }
                    return false
                }
            }
            if !any { return false }
        }
        return true
    }
}

/// A value as typed and in lower (or upper) case: the forms a filter value matches.
func lower(_ s: String) -> [String] { s == s.lowercased() ? [s] : [s, s.lowercased()] }
func upper(_ s: String) -> [String] { s == s.uppercased() ? [s] : [s, s.uppercased()] }
