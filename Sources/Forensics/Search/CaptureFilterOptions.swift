import ArgumentParser
import CaptureFormat

/// The field filters of `sessgrep`, as one option group, so that every tool that selects sessions
/// (`sessexport`) takes the same options: `@OptionGroup(title: "Filters") var filters: CaptureFilterOptions`,
/// then `try filters.query()`. Different options AND, a repeated option ORs its values.
public struct CaptureFilterOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: ArgumentHelp("Session id, or a prefix of one.", valueName: "ID"))
    public var session: [String] = []

    @Option(name: .long, help: ArgumentHelp("Subject (the verified identity); a glob: '*@contractors.example.com'.", valueName: "GLOB"))
    public var subject: [String] = []

    @Option(name: .long, help: ArgumentHelp("A group of the subject (glob).", valueName: "GLOB"))
    public var group: [String] = []

    @Option(name: .long, help: ArgumentHelp("Target name from the gate's config (glob).", valueName: "GLOB"))
    public var target: [String] = []

    @Option(name: .customLong("protocol"), help: ArgumentHelp("postgres, http or kubernetes.", valueName: "NAME"))
    public var protocolName: [String] = []

    @Option(name: .long, help: ArgumentHelp("Exchanges from this time on: 2026-11-20T09:00:00Z, '2026-11-20 09:00', 2026-11-20, today, yesterday, or back from now: 2h, 7d, 1h30m (UTC).", valueName: "TIME"))
    public var since: String?

    @Option(name: .long, help: ArgumentHelp("Exchanges before this time (same forms as --since).", valueName: "TIME"))
    public var until: String?

    @Option(name: .long, help: ArgumentHelp("allow, deny, review, or an approval's outcome: approved, denied, expired, withdrawn, abandoned, reused (a grant reused).", valueName: "OUTCOME"))
    public var decision: [String] = []

    @Option(name: .long, help: ArgumentHelp("An event kind the exchange has: \(EventKind.allCases.map(\.name).joined(separator: ", ")). session-start and session-end are found on their own.", valueName: "KIND"))
    public var kind: [String] = []

    @Option(name: .long, help: ArgumentHelp("A table the statement touches: 'schema.table' glob ('pii.*'); without a dot, the table in any schema.", valueName: "GLOB"))
    public var table: [String] = []

    @Option(name: .long, help: ArgumentHelp("Statement kind: select, insert, update, delete, truncate, create, alter, drop, grant, copy, …", valueName: "KIND"))
    public var statement: [String] = []

    @Option(name: .long, help: ArgumentHelp("A function the statement calls (glob); unqualified names also match qualified calls.", valueName: "NAME"))
    public var function: [String] = []

    @Option(name: .long, help: ArgumentHelp("HTTP method (HTTP and Kubernetes requests).", valueName: "METHOD"))
    public var method: [String] = []

    @Option(name: .long, help: ArgumentHelp("HTTP status, or a class: 404, 5xx.", valueName: "CODE"))
    public var status: [String] = []

    @Option(name: .long, help: ArgumentHelp("HTTP request path without its query (glob): '/api/v1/namespaces/*/secrets*'.", valueName: "GLOB"))
    public var path: [String] = []

    @Option(name: .long, help: ArgumentHelp("Kubernetes verb: get, list, watch, create, update, patch, delete…", valueName: "VERB"))
    public var verb: [String] = []

    @Option(name: .long, help: ArgumentHelp("Kubernetes namespace.", valueName: "NS"))
    public var namespace: [String] = []

    @Option(name: .long, help: ArgumentHelp("Kubernetes resource: pods, secrets, deployments…", valueName: "RESOURCE"))
    public var resource: [String] = []

    @Option(name: .long, help: ArgumentHelp("Kubernetes subresource: exec, attach, portforward, log…", valueName: "NAME"))
    public var subresource: [String] = []

    @Option(name: .long, help: ArgumentHelp("A masking detector fired on the response: --masked (any) or --masked=DETECTOR (glob: credit_card, 'column:*').", valueName: "DETECTOR"))
    public var masked: [String] = []

    @Option(name: .long, help: ArgumentHelp("Prompt id from the assistant's annotation.", valueName: "ID"))
    public var prompt: [String] = []

    @Option(name: .long, help: ArgumentHelp("W3C trace id (32 hex digits) or a whole traceparent.", valueName: "ID"))
    public var trace: [String] = []

    public init() {}

    /// `--masked` takes an optional value, like GNU's `--color[=WHEN]`: bare, it means any detector.
    /// ArgumentParser has no optional values, so the bare form is rewritten before parsing; the
    /// value must then be attached (`--masked=email`), as GNU getopt requires for optional values.
    public static func expandingOptionalValues(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var operandsOnly = false
        for a in arguments {
            if a == "--" { operandsOnly = true }
            out.append(!operandsOnly && a == "--masked" ? "--masked=*" : a)
        }
        return out
    }

    public func validate() throws {
        _ = try query(now: nowMicros())
    }

    /// The query these options describe; relative times count back from `now` (µs since the epoch).
    public func query(now: Int64 = nowMicros()) throws -> CaptureQuery {
        var q = CaptureQuery()
        q.sessions = session
        q.subjects = subject.map { Glob($0) }
        q.groups = group.map { Glob($0) }
        q.targets = target.map { Glob($0) }
        for p in protocolName where !["postgres", "http", "kubernetes"].contains(p.lowercased()) {
            throw ValidationError("unknown protocol '\(p)': use postgres, http or kubernetes")
        }
        q.protocols = protocolName.map { $0.lowercased() }
        func time(_ option: String, _ text: String?) throws -> Int64? {
            guard let text else { return nil }
            guard let t = TimeSpec.parse(text, now: now) else {
                throw ValidationError("cannot read \(option) '\(text)': use 2026-11-20T09:00:00Z, '2026-11-20 09:00', 2026-11-20, today, or a duration back from now such as 2h or 7d")
            }
            return t
        }
        q.since = try time("--since", since)
        q.until = try time("--until", until)
        if let s = q.since, let u = q.until, u <= s {
            throw ValidationError("--until (\(isoTime(micros: u))) is not after --since (\(isoTime(micros: s)))")
        }
        q.decisions = try decision.map { d in
            guard let o = DecisionOutcome(name: d) else {
                throw ValidationError("unknown decision '\(d)': use \(DecisionOutcome.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return o
        }
        q.kinds = try kind.map { k in
            guard let e = EventKind(name: k) else {
                throw ValidationError("unknown event kind '\(k)': use \(EventKind.allCases.map(\.name).joined(separator: ", "))")
            }
            return e
        }
        q.request.tables = table.map { Glob($0) }
        q.request.statementKinds = statement
        q.request.functions = function.map { Glob($0.lowercased()) }
        q.request.methods = method
        q.request.paths = path.map { Glob($0) }
        q.request.verbs = verb
        q.request.namespaces = namespace
        q.request.resources = resource
        q.request.subresources = subresource
        q.statuses = try status.map { s in
            guard let f = StatusFilter(s) else { throw ValidationError("bad status '\(s)': use a code such as 404 or a class such as 5xx") }
            return f
        }
        q.masked = masked.map { Glob($0.isEmpty ? "*" : $0) }
        q.prompts = prompt
        q.traces = trace.map(CaptureQuery.traceID)
        return q
    }
}
