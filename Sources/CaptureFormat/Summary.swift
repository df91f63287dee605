/// Accumulates a `SessionSummary` from events. The writer, recovery and
/// verification all use this one builder, so a footer can be checked by recomputing it.
public struct SummaryBuilder: Sendable {
    public static let maxResources = 10_000
    var summary = SessionSummary()
    /// Counted by kind code and action code (no hashing per event), named in `build`.
    var kindsByCode = [UInt64](repeating: 0, count: 256)
    var decisionsByCode = [UInt64](repeating: 0, count: 256)
    /// Resource lists of recent requests: a session repeats its statements, so most requests add nothing new.
    var recentResources = RecentValues<[Resource]>()
    var masked: [String: UInt64] = [:]
    var resources: Set<String> = []

    public init() {}

    public mutating func add(_ event: Event) {
        if summary.eventCount == 0 {
            summary.firstSequence = event.sequence
            summary.firstMicros = event.wallMicros
        }
        summary.eventCount += 1
        summary.lastSequence = event.sequence
        summary.lastMicros = event.wallMicros
        kindsByCode[Int(event.kindCode)] += 1
        switch event.payload {
        case .request(let r):
            summary.exchanges += 1
            switch r {
            case .postgres(let p):
                sat(&summary.requestBytes, UInt64(p.text.utf8.count))
                for param in p.parameters { sat(&summary.requestBytes, UInt64(param.value?.count ?? 0)) }
                if recentResources.insert(p.resources) {
                    for res in p.resources { addResource(res.qualifiedName) }
                }
            case .http(let h):
                sat(&summary.requestBytes, h.body.totalSize)
            case .kubernetes(let k):
                sat(&summary.requestBytes, k.http.body.totalSize)
                if k.resource.isEmpty {
                    // A non-resource URL (discovery: /api, /apis, /version): the path names it.
                    addResource("k8s:" + (k.http.target.split(separator: "?").first.map(String.init) ?? ""))
                } else {
                    var parts = [k.resource]
                    if !k.namespace.isEmpty { parts.insert(k.namespace, at: 0) }
                    if !k.name.isEmpty { parts.append(k.name) }
                    addResource("k8s:" + parts.joined(separator: "/"))
                }
            case .unknown:
                // A protocol added later adds to the exchanges only: what its bytes and errors
                // are, this reader cannot say, so a writer must not count them (capture-format.md).
                break
            }
        case .response(let r):
            switch r {
            case .postgres(let p):
                p.packedRows.forEach { sat(&summary.responseBytes, PostgresResponse.valueBytes(ofPacked: $0)) }
                sat(&summary.responseBytes, p.cut?.bytes ?? 0)
                if p.error != nil { summary.errors += 1 }
            case .http(let h):
                sat(&summary.responseBytes, h.body.totalSize)
                if h.status >= 400 { summary.errors += 1 }
            case .unknown:
                break
            }
        case .decision(let d):
            decisionsByCode[Int(d.action.rawValue)] += 1
        case .maskSummary(let m):
            for e in m.entries { sat(&masked[e.detector, default: 0], e.count) }
        case .streamChunk(let s):
            switch s.stream {
            case .stdin: sat(&summary.requestBytes, UInt64(s.data.count))
            case .stdout, .stderr: sat(&summary.responseBytes, UInt64(s.data.count))
            case .resize: break
            }
        case .sessionEnd(let e):
            summary.endReason = e.reason
        case .sessionStart, .approval, .annotation, .divergence, .unknown:
            break
        }
    }

    mutating func addResource(_ name: String) {
        if resources.count < SummaryBuilder.maxResources { resources.insert(name) }
    }

    public func build() -> SessionSummary {
        var s = summary
        let tally = { (d: [String: UInt64]) in d.sorted { $0.key < $1.key }.map { NamedCount($0.key, $0.value) } }
        var kinds: [String: UInt64] = [:], decisions: [String: UInt64] = [:]
        for (code, n) in kindsByCode.enumerated() where n > 0 {
            kinds[EventKind(rawValue: UInt8(code))?.summaryName ?? "kind-\(code)", default: 0] += n
        }
        for (code, n) in decisionsByCode.enumerated() where n > 0 {
            decisions[Decision.Action(rawValue: UInt8(code))?.name ?? "action-\(code)", default: 0] += n
        }
        s.kindCounts = tally(kinds)
        s.decisionCounts = tally(decisions)
        s.maskedCounts = tally(masked)
        s.resources = resources.sorted()
        return s
    }
}

/// Sizes and counts come from event fields a damaged or hostile file controls: saturate, never trap.
private func sat(_ total: inout UInt64, _ value: UInt64) {
    let (sum, overflow) = total.addingReportingOverflow(value)
    total = overflow ? .max : sum
}
