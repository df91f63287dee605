import CaptureFormat
import Foundation

/// sessgrep's query as an export filter: a session is selected when one of its exchanges
/// matches (what `sessgrep -l` lists), found with sessgrep's engine, which answers from the
/// header, the footer and the block index where it can. A query on the session alone (subject,
/// group, target, protocol, session id) is answered from the header without reading events.
public struct QueryFilter: SessionFilter {
    public let query: CaptureQuery
    public let summary: String
    let parallelism: Int

    public init(_ query: CaptureQuery, parallelism: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.query = query
        self.summary = QueryFilter.describe(query)
        self.parallelism = parallelism
    }

    public func selects(path: String, capture: CaptureFile) async throws -> FilterVerdict {
        if query.isSessionOnly { return FilterVerdict(selected: query.admits(header: capture.header)) }
        let outcome = await CaptureSearch.search(path: path, query: query, options: SearchOptions(mode: .files, parallelism: parallelism))
        return FilterVerdict(selected: outcome.matches > 0, warnings: outcome.errors)
    }

    /// The query in the words of sessgrep's options, with relative times resolved (the manifest
    /// records when `7d` was meant from).
    public static func describe(_ q: CaptureQuery) -> String {
        var parts: [String] = []
        func add(_ option: String, _ values: [String]) { for v in values { parts.append("--\(option) \(v)") } }
        add("session", q.sessions)
        add("subject", q.subjects.map(\.pattern))
        add("group", q.groups.map(\.pattern))
        add("target", q.targets.map(\.pattern))
        add("protocol", q.protocols)
        if let s = q.since { add("since", [isoTime(micros: s)]) }
        if let u = q.until { add("until", [isoTime(micros: u)]) }
        add("decision", q.decisions.map(\.rawValue))
        add("kind", q.kinds.map(\.name))
        add("table", q.request.tables.map(\.pattern))
        add("statement", q.request.statementKinds)
        add("function", q.request.functions.map(\.pattern))
        add("method", q.request.methods)
        add("path", q.request.paths.map(\.pattern))
        add("verb", q.request.verbs)
        add("namespace", q.request.namespaces)
        add("resource", q.request.resources)
        add("subresource", q.request.subresources)
        add("status", q.statuses.map(\.description))
        add("masked", q.masked.map(\.pattern))
        add("prompt", q.prompts)
        add("trace", q.traces)
        return parts.joined(separator: " ")
    }
}
