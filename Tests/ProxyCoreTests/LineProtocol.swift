import CaptureFormat
import Policy
import ProxyCore

/// The tests' adapter speaks a protocol of one line per request: `VERB schema.table`, where
/// `read` reads and anything else writes; `use SCHEMA` changes what unqualified names mean (the
/// session state a decision depends on). Carried as PostgreSQL simple queries, the one request
/// kind the capture model has text for: the core sees only requests and facts.
final class LineInspector: RequestInspector {
    func makeSession(target: String, parameters: [KeyValue]) -> any SessionInspector { Session() }

    final class Session: SessionInspector {
        var schema = "public"
        var generation = 0
        /// How many requests were inspected: a cached decision is still inspected, never re-decided.
        var inspected = 0
        var forwardedTexts: [String] = []

        func inspect(_ request: consuming Request, in session: SessionContext) -> InspectedRequest {
            inspected += 1
            guard case .postgres(let p) = request else { return InspectedRequest(request: request, statements: [.unparseable("not a line")]) }
            let words = p.text.split(separator: " ").map(String.init)
            guard words.count == 2 else { return InspectedRequest(request: request, statements: [.unparseable("expected VERB NAME")]) }
            if words[0] == "use" { return InspectedRequest(request: request, statements: [StatementInfo(kind: "set")]) }
            let parts = words[1].split(separator: ".").map(String.init)
            let (schema, table) = parts.count == 2 ? (parts[0], parts[1]) : (self.schema, parts[0])
            let reads = words[0] == "read"
            let resource = Resource(schema: schema, name: table, access: reads ? .read : .write)
            return InspectedRequest(request: request, statements: [StatementInfo(kind: reads ? "select" : "delete", resources: [resource],
                                                                                  writes: !reads)],
                                    carriesSecret: words[0] == "password")
        }

        func forwarded(_ request: InspectedRequest) {
            guard case .postgres(let p) = request.request else { return }
            forwardedTexts.append(p.text)
            let words = p.text.split(separator: " ")
            if words.first == "use", words.count == 2 {
                schema = String(words[1])
                generation += 1
            }
        }
    }
}
