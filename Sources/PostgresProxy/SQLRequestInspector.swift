import CaptureFormat
import NIOConcurrencyHelpers
import Policy
import ProxyCore
import SQLInspection

/// Inspects PostgreSQL requests with PostgreSQL's own parser and fills their recorded
/// facts. Results are cached by exact statement text — never by normalized text, since a
/// decision may depend on a literal (`set_config('role', …)`) — so prepared statements and
/// repeated queries are parsed once.
public final class SQLRequestInspector: RequestInspector {
    struct Entry {
        var statements: [StatementInfo]
        var kinds: [String]
        var resources: [CaptureFormat.Resource]
        var functions: [String]
        var fingerprint: String
        var normalized: String
    }

    let cache = NIOLockedValueBox<[String: Entry]>([:])
    let capacity: Int
    let searchPath: [String]

    public init(searchPath: [String] = ["public"], capacity: Int = 4096) {
        self.searchPath = searchPath
        self.capacity = capacity
    }

    public func inspect(_ request: Request, in session: SessionContext) -> InspectedRequest {
        guard case .postgres(var p) = request else { return InspectedRequest(request: request, statements: []) }
        if p.path == .functionCall {
            // A FunctionCall message carries an OID, not SQL: nothing to inspect, so it counts as a write.
            return InspectedRequest(request: request, statements: [StatementInfo(kind: "function_call", writes: true,
                                                                                sideEffects: ["FunctionCall message"])])
        }
        let entry = lookup(p.text)
        p.fingerprint = entry.fingerprint
        p.normalized = entry.normalized
        p.statementKinds = entry.kinds
        p.resources = entry.resources
        p.functions = entry.functions
        return InspectedRequest(request: .postgres(p), statements: entry.statements)
    }

    func lookup(_ text: String) -> Entry {
        if let hit = cache.withLockedValue({ $0[text] }) { return hit }
        let entry = Self.inspect(text, searchPath: searchPath)
        cache.withLockedValue { c in
            if c.count >= capacity { c.removeAll(keepingCapacity: true) }
            c[text] = entry
        }
        return entry
    }

    static func inspect(_ text: String, searchPath: [String]) -> Entry {
        do {
            let inspection = try SQLInspector.inspect(text, searchPath: searchPath)
            var kinds: [String] = [], resources: [CaptureFormat.Resource] = [], functions: [String] = []
            for s in inspection.statements {
                if !kinds.contains(s.kind) { kinds.append(s.kind) }
                for r in s.relations {
                    let res = CaptureFormat.Resource(schema: r.schema, name: r.name, access: r.access == .read ? .read : .write)
                    if !resources.contains(res) { resources.append(res) }
                }
                for f in s.functions where !functions.contains(f) { functions.append(f) }
            }
            let statements = inspection.statements.map { s in
                StatementInfo(kind: s.kind, resources: s.relations.map { PolicyResource(schema: $0.schema, name: $0.name, access: $0.access == .read ? .read : .write) },
                              functions: s.functions, writes: s.writes, sideEffects: s.sideEffects)
            }
            return Entry(statements: statements, kinds: kinds, resources: resources, functions: functions,
                         fingerprint: inspection.fingerprint, normalized: inspection.normalized)
        } catch {
            // Fail closed: what cannot be parsed is denied, with the parser's message.
            return Entry(statements: [.unparseable("\(error)")], kinds: ["unparseable"], resources: [], functions: [],
                         fingerprint: "", normalized: "")
        }
    }
}
