import CaptureFormat
import Policy

/// Who is on the other end of a session, and where from.
public struct SessionContext: Sendable {
    /// The fields, in one immutable object: a session's context is passed (copied) several times
    /// per request and changed almost never, so a copy is one retain rather than six (issue 18).
    final class Fields: Sendable {
        let sessionID, target, subject: String
        let groups: [String]
        let clientAddress, applicationName: String

        init(sessionID: String, target: String, subject: String, groups: [String], clientAddress: String, applicationName: String) {
            self.sessionID = sessionID; self.target = target; self.subject = subject; self.groups = groups
            self.clientAddress = clientAddress; self.applicationName = applicationName
        }
    }
    var fields: Fields

    public var sessionID: String {
        get { fields.sessionID }
        set { change { $0.sessionID = newValue } }
    }
    public var target: String {
        get { fields.target }
        set { change { $0.target = newValue } }
    }
    /// The verified subject and groups (from the identity token), never the token.
    public var subject: String {
        get { fields.subject }
        set { change { $0.subject = newValue } }
    }
    public var groups: [String] {
        get { fields.groups }
        set { change { $0.groups = newValue } }
    }
    public var clientAddress: String {
        get { fields.clientAddress }
        set { change { $0.clientAddress = newValue } }
    }
    public var applicationName: String {
        get { fields.applicationName }
        set { change { $0.applicationName = newValue } }
    }

    public init(sessionID: String, target: String, subject: String, groups: [String], clientAddress: String, applicationName: String) {
        fields = Fields(sessionID: sessionID, target: target, subject: subject, groups: groups, clientAddress: clientAddress,
                        applicationName: applicationName)
    }

    /// A change makes new fields (the old ones may be shared by copies).
    private mutating func change(_ edit: (inout (sessionID: String, target: String, subject: String, groups: [String],
                                                 clientAddress: String, applicationName: String)) -> Void) {
        var f = (sessionID: fields.sessionID, target: fields.target, subject: fields.subject, groups: fields.groups,
                 clientAddress: fields.clientAddress, applicationName: fields.applicationName)
        edit(&f)
        fields = Fields(sessionID: f.sessionID, target: f.target, subject: f.subject, groups: f.groups, clientAddress: f.clientAddress,
                        applicationName: f.applicationName)
    }
}

/// How a streamed row result lays out its fields (PostgreSQL COPY … TO STDOUT), so masking
/// can find columns in the data.
public struct RowStreamLayout: Sendable, Hashable {
    public enum Format: Sendable, Hashable { case text, csv, binary }
    public var format: Format
    public var delimiter: UInt8
    public var header: Bool
    /// The table copied (nil when the rows come from a query) and the explicit column list, if any.
    public var table: TableName?
    public var columns: [String]
    /// CSV QUOTE and ESCAPE (ESCAPE defaults to QUOTE).
    public var quote: UInt8 = UInt8(ascii: "\"")
    public var escape: UInt8 = UInt8(ascii: "\"")
    /// The NULL string as the server writes it (`\N` in text, empty in CSV, unless NULL says otherwise).
    public var null: [UInt8]
    /// Why the masker cannot follow this layout (the gate refuses it while masks apply); nil when it can.
    public var unfollowable: String?
    public init(format: Format, delimiter: UInt8, header: Bool, table: TableName?, columns: [String],
                quote: UInt8 = UInt8(ascii: "\""), escape: UInt8? = nil, null: [UInt8]? = nil, unfollowable: String? = nil) {
        self.format = format; self.delimiter = delimiter; self.header = header; self.table = table; self.columns = columns
        self.quote = quote; self.escape = escape ?? quote
        self.null = null ?? (format == .csv ? [] : Array("\\N".utf8))
        self.unfollowable = unfollowable
    }
}

/// A request with what inspection found: the facts recorded with it, the per-statement facts
/// the policy decides on, and what response masking needs.
public struct InspectedRequest: Sendable {
    public var request: Request
    public var statements: [StatementInfo]
    public var projections: [Projection]
    /// One per statement that streams rows to the client (COPY TO STDOUT), in order.
    public var rowStreams: [RowStreamLayout]
    /// The text holds a credential (CREATE ROLE … PASSWORD): it is recorded normalized, never as sent.
    public var carriesSecret: Bool
    /// The text to record in place of the text as sent, when the inspector could not read it (its
    /// literals are withheld: they cannot be known to hold no credential).
    public var withheldText: String?

    public init(request: Request, statements: [StatementInfo], projections: [Projection] = [], rowStreams: [RowStreamLayout] = [],
                carriesSecret: Bool = false, withheldText: String? = nil) {
        self.request = request; self.statements = statements; self.projections = projections
        self.rowStreams = rowStreams; self.carriesSecret = carriesSecret; self.withheldText = withheldText
    }
}

/// Fills a request's facts (statement kinds, resources, fingerprint…) from real parsing. One
/// `SessionInspector` per session keeps what earlier requests changed (prepared statements,
/// the search path).
public protocol RequestInspector: Sendable {
    func makeSession(target: String, parameters: [KeyValue]) -> any SessionInspector
}

/// Per-session inspection, confined to the session's event loop.
public protocol SessionInspector: AnyObject {
    /// Consuming: an inspector fills the request's facts in place, without copying what it holds.
    func inspect(_ request: consuming Request, in session: SessionContext) -> InspectedRequest
    /// Changes whenever what a request would be found to be can change (the search path, the
    /// prepared statements, the catalog): a decision made under one generation holds for it.
    var generation: Int { get }
    /// The request was allowed and sent on: remember what it changes for later requests.
    func forwarded(_ request: InspectedRequest)
}

/// Decides a request from its inspected facts. Pure: no I/O, no clock.
public protocol RequestPolicy: Sendable {
    func decide(_ request: InspectedRequest, in session: SessionContext) -> Decision
    /// The decision with who may approve it, when it is `review`.
    func ruling(_ request: InspectedRequest, in session: SessionContext) -> Ruling
}

/// A decision and, for `review`, what approving it takes.
public struct Ruling: Sendable, Equatable {
    public var decision: Decision
    public var approval: ApprovalRequirement?
    public init(decision: Decision, approval: ApprovalRequirement? = nil) { self.decision = decision; self.approval = approval }
}

extension RequestPolicy {
    public func ruling(_ request: InspectedRequest, in session: SessionContext) -> Ruling { Ruling(decision: decide(request, in: session)) }
}

/// Leaves requests as they come: for a gate without policies or masks, where nothing is decided on facts.
public struct NoInspection: RequestInspector {
    public init() {}
    public func makeSession(target: String, parameters: [KeyValue]) -> any SessionInspector { Session() }

    final class Session: SessionInspector {
        var generation: Int { 0 }
        func inspect(_ request: consuming Request, in session: SessionContext) -> InspectedRequest {
            InspectedRequest(request: request, statements: [])
        }
        func forwarded(_ request: InspectedRequest) {}
    }
}

/// Allows everything, naming itself in every decision so the capture shows that no policy applied;
/// except what the gate cannot follow (a change to how statements are read), which no policy may
/// allow: masking reads statements too.
public struct AllowAll: RequestPolicy {
    public init() {}
    public func decide(_ request: InspectedRequest, in session: SessionContext) -> Decision {
        if let refusal = request.statements.lazy.compactMap(\.refusal).first {
            return Decision(action: .deny, policy: "none", rule: PolicySet.parserSettingsRule, reason: refusal)
        }
        return Decision(action: .allow, policy: "none", rule: "allow-all", reason: "no policy configured")
    }
}

/// The configured policies, applied to the inspected statements of each request.
public struct PolicyEnforcement: RequestPolicy {
    public let policies: PolicySet
    public init(_ policies: PolicySet) { self.policies = policies }

    public func decide(_ request: InspectedRequest, in session: SessionContext) -> Decision { ruling(request, in: session).decision }

    public func ruling(_ request: InspectedRequest, in session: SessionContext) -> Ruling {
        let path: String
        switch request.request {
        case .postgres(let p): path = p.path.name
        case .http, .kubernetes: path = "http"
        case .unknown(let u):
            // Only a capture reader meets one; a request the gate cannot name is refused.
            return Ruling(decision: Decision(action: .deny, policy: "none", rule: "unknown-protocol", reason: "\(u.name) is not decided by this gate"))
        }
        let d = policies.decide(request.statements, who: Principal(subject: session.subject, groups: session.groups),
                                target: session.target, path: path)
        return Ruling(decision: Decision(action: d.action, policy: d.policy, rule: d.rule, reason: d.reason), approval: d.approval)
    }
}

/// The steps every exchange takes: identify (done at session start) → inspect → decide →
/// forward → mask → record. Protocol adapters take its parts (a session inspector, the policy,
/// the masks); they never decide themselves.
public struct ExchangePipeline: Sendable {
    public var inspector: any RequestInspector
    public var policy: any RequestPolicy
    public var masking: MaskingSetup

    public init(inspector: any RequestInspector = NoInspection(), policy: any RequestPolicy = AllowAll(),
                masking: MaskingSetup = MaskingSetup(targetMasks: [:], policies: PolicySet(policies: []))) {
        self.inspector = inspector; self.policy = policy; self.masking = masking
    }
}

/// sqlcommenter-style comments (`/*traceparent='00-…',prompt_id='…'*/`) that tie a
/// statement to the prompt and trace that produced it.
public enum SQLCommenter {
    public static func annotation(in statement: String) -> Annotation? {
        // Most statements carry no comment: a byte scan for "/*" keeps them off the slow path.
        var previous: UInt8 = 0
        guard statement.utf8.contains(where: { b in defer { previous = b }; return previous == UInt8(ascii: "/") && b == UInt8(ascii: "*") }) else {
            return nil
        }
        var annotation = Annotation()
        var found = false
        var rest = Substring(statement)
        while let open = rest.range(of: "/*"), let close = rest[open.upperBound...].range(of: "*/") {
            for pair in rest[open.upperBound..<close.lowerBound].split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                guard kv.count == 2 else { continue }
                let key = kv[0].trimmingCharacters(in: .whitespaces)
                var value = kv[1].trimmingCharacters(in: .whitespaces)
                guard value.count >= 2, value.hasPrefix("'"), value.hasSuffix("'") else { continue }
                value = String(value.dropFirst().dropLast()).removingPercentEncoding ?? String(value.dropFirst().dropLast())
                switch key {
                case "traceparent": annotation.traceparent = value; found = true
                case "prompt_id", "promptid": annotation.promptID = value; found = true
                default:
                    if key.count <= 64, value.count <= 256 { annotation.attributes.append(KeyValue(key, value)) }
                }
            }
            rest = rest[close.upperBound...]
        }
        return found || !annotation.attributes.isEmpty ? annotation : nil
    }
}
