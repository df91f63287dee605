/// A Bloom filter over the search terms of a block's events, so a search can
/// skip a block without decompressing it. No false negatives; about 1% false
/// positives at the default sizing. Hashing (specified in docs/capture-format.md):
/// FNV-1a 64 with two offset bases gives h1 and h2 (h2 forced odd); bit i of k
/// is (h1 + i*h2) mod m.
public struct TermFilter: Sendable, Equatable {
    public private(set) var bits: [UInt8]
    public let hashCount: UInt8

    static let bitsPerTerm = 10
    static let defaultHashCount: UInt8 = 7

    public init(bits: [UInt8], hashCount: UInt8) {
        self.bits = bits
        self.hashCount = hashCount
    }

    /// A filter sized for `terms`, holding all of them.
    public init<S: Collection>(terms: S) where S.Element == String {
        let bytes = max(8, (terms.count * TermFilter.bitsPerTerm + 7) / 8)
        bits = [UInt8](repeating: 0, count: min(bytes, Int(UInt16.max)))
        hashCount = TermFilter.defaultHashCount
        for t in terms { insert(t) }
    }

    static func hashes(_ term: String) -> (UInt64, UInt64) {
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325
        var h2: UInt64 = 0x8422_2325_cbf2_9ce4
        let prime: UInt64 = 0x0000_0100_0000_01b3
        for b in term.utf8 {
            h1 = (h1 ^ UInt64(b)) &* prime
            h2 = (h2 ^ UInt64(b)) &* prime
        }
        return (h1, h2 | 1)
    }

    mutating func insert(_ term: String) {
        let m = UInt64(bits.count * 8)
        let (h1, h2) = TermFilter.hashes(term)
        for i in 0..<UInt64(hashCount) {
            let bit = (h1 &+ i &* h2) % m
            bits[Int(bit / 8)] |= 1 << (bit % 8)
        }
    }

    /// False only when the term is certainly absent. An empty filter (no bits) is "unknown": true.
    public func mayContain(_ term: String) -> Bool {
        guard !bits.isEmpty, hashCount > 0 else { return true }
        let m = UInt64(bits.count * 8)
        let (h1, h2) = TermFilter.hashes(term)
        for i in 0..<UInt64(hashCount) {
            let bit = (h1 &+ i &* h2) % m
            if bits[Int(bit / 8)] & (1 << (bit % 8)) == 0 { return false }
        }
        return true
    }
}

/// The search terms an event contributes to its block's filter. The vocabulary
/// is part of the format (docs/capture-format.md, "Term filter").
public enum SearchTerms {
    public static func of(_ event: Event, into terms: inout Set<String>) {
        switch event.payload {
        case .request(.postgres(let p)):
            for r in p.resources {
                terms.insert("table:\(r.name)")
                if !r.schema.isEmpty { terms.insert("table:\(r.schema).\(r.name)"); terms.insert("schema:\(r.schema)") }
                if r.access == .write { terms.insert("write:\(r.qualifiedName)") }
            }
            if !p.fingerprint.isEmpty { terms.insert("fp:\(p.fingerprint)") }
            for k in p.statementKinds { terms.insert("stmt:\(k)") }
            for f in p.functions { terms.insert("fn:\(f)") }
        case .request(.http(let h)):
            terms.insert("method:\(h.method)")
            if !h.host.isEmpty { terms.insert("host:\(h.host)") }
        case .request(.kubernetes(let k)):
            terms.insert("method:\(k.http.method)")
            terms.insert("k8s.verb:\(k.verb)")
            terms.insert("k8s.resource:\(k.resource)")
            if !k.namespace.isEmpty { terms.insert("k8s.ns:\(k.namespace)") }
            if !k.subresource.isEmpty { terms.insert("k8s.sub:\(k.subresource)") }
        case .decision(let d):
            terms.insert("decision:\(d.action.name)")
            if !d.policy.isEmpty { terms.insert("policy:\(d.policy)") }
            if !d.rule.isEmpty { terms.insert("rule:\(d.rule)") }
        case .approval(let a):
            // The 1.2 state: a 1.2 reader recomputes the same filter (its `verify` holds).
            terms.insert("approval:\(a.state.legacy.name)")
            if !a.by.isEmpty { terms.insert("approver:\(a.by)") }
        case .response(.postgres(let p)):
            if let e = p.error { terms.insert("sqlstate:\(e.sqlState)"); terms.insert("error") }
        case .response(.http(let h)):
            terms.insert("status:\(h.status)")
            if h.status >= 400 { terms.insert("error") }
        case .maskSummary(let m):
            for e in m.entries { terms.insert("mask:\(e.detector)") }
        case .annotation(let a):
            if !a.promptID.isEmpty { terms.insert("prompt:\(a.promptID)") }
            if let t = a.traceID { terms.insert("trace:\(t)") }
        case .sessionStart(let s):
            if !s.applicationName.isEmpty { terms.insert("app:\(s.applicationName)") }
        case .sessionEnd, .streamChunk, .divergence, .unknown, .request(.unknown), .response(.unknown):
            break
        }
    }
}
