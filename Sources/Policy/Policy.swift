// The policy model and its evaluation. Pure: no I/O, no clock. Given who is asking,
// which target, and the inspected facts of a request, it returns a decision naming the
// rule that made it. Deny beats review beats allow; nothing matched is denied; a request
// of several statements takes its strictest statement's decision.

import CaptureFormat

/// What a policy decides: the capture's own decision action (one enum for the policy and the record).
public typealias Action = Decision.Action

/// The identity a decision is about (from the verified token, never from the client's claims).
public struct Principal: Sendable, Hashable {
    public var subject: String
    public var groups: [String]
    public init(subject: String, groups: [String]) { self.subject = subject; self.groups = groups }
}

/// The protocol-neutral facts of one action a request asks for: a SQL statement, an HTTP
/// request, a Kubernetes API call. `kind` is its verb (select, delete; get, post; list, exec),
/// `resources` what it touches and how, `attributes` what else a rule may name.
public struct StatementInfo: Sendable, Hashable {
    /// Lowercase kind: select, insert, update, delete, …; "unparseable" when inspection failed.
    public var kind: String
    /// For wrappers (explain, prepare, execute of a known prepared statement, cursor declarations):
    /// the kind of the statement inside. A `statement:` condition matches either kind.
    public var innerKind: String?
    public var resources: [Resource]
    public var functions: [String]
    /// Functions PostgreSQL does not ship (user-defined, from extensions): see `Policy.unknownFunctions`.
    public var unknownFunctions: [String]
    public var writes: Bool
    public var sideEffects: [String]
    /// The parser's message when the statement could not be inspected.
    public var parseError: String?
    /// Set when the gate cannot follow what the statement does to the session (it changes how the
    /// server reads later statements): denied whatever the rules say, like an unparseable statement.
    public var refusal: String?
    /// What else a rule may name, by `RequestAttribute` (an HTTP request's method and path, a
    /// Kubernetes call's API group, resource, namespace…). SQL statements have none.
    public var attributes: [RequestAttribute: String] = [:]

    public init(kind: String, innerKind: String? = nil, resources: [Resource] = [], functions: [String] = [],
                unknownFunctions: [String] = [], writes: Bool = false, sideEffects: [String] = [], parseError: String? = nil) {
        self.kind = kind; self.innerKind = innerKind; self.resources = resources; self.functions = functions
        self.unknownFunctions = unknownFunctions
        self.writes = writes; self.sideEffects = sideEffects; self.parseError = parseError
    }

    public static func unparseable(_ message: String) -> StatementInfo {
        StatementInfo(kind: "unparseable", writes: true, parseError: message)
    }
}

/// Conditions of a rule; every condition given must hold. Lists hold globs (`*`, `?`).
public struct Condition: Sendable, Hashable {
    /// The statement's kind is one of these.
    public var statements: [String]?
    /// Every relation the statement touches is in one of these schemas.
    public var schemas: [String]?
    /// Every relation is one of these (`schema.table` globs; a pattern without a dot matches the table name).
    public var tables: [String]?
    /// Every function called is one of these.
    public var functions: [String]?
    /// At least one relation matches one of these (for deny rules: "touches").
    public var anyTables: [String]?
    /// At least one function called matches one of these.
    public var anyFunctions: [String]?
    /// The statement can (true) or cannot (false) change anything.
    public var writes: Bool?
    /// The protocol path: simple, extended, function-call.
    public var paths: [String]?
    /// Each attribute named has a value matching one of these globs (a request without the
    /// attribute, a SQL statement for an HTTP method, does not match).
    public var attributes: [RequestAttribute: [String]] = [:]

    /// Name lists (schemas, tables, functions) are folded as PostgreSQL folds identifiers (see `NamePattern`).
    public init(statements: [String]? = nil, schemas: [String]? = nil, tables: [String]? = nil, functions: [String]? = nil,
                anyTables: [String]? = nil, anyFunctions: [String]? = nil, writes: Bool? = nil, paths: [String]? = nil) {
        let fold = { (list: [String]?) in list?.map(NamePattern.fold) }
        self.statements = statements; self.schemas = fold(schemas); self.tables = fold(tables); self.functions = fold(functions)
        self.anyTables = fold(anyTables); self.anyFunctions = fold(anyFunctions); self.writes = writes; self.paths = paths
    }

    func matches(_ s: StatementInfo, path: String) -> Bool {
        if let statements, !statements.contains(where: { p in glob(p, s.kind) || s.innerKind.map { glob(p, $0) } == true }) { return false }
        if let schemas, !s.resources.allSatisfy({ r in schemas.contains { nameGlob($0, r.schema) } }) { return false }
        if let tables, !s.resources.allSatisfy({ r in tables.contains { tableGlob($0, r) } }) { return false }
        if let functions, !s.functions.allSatisfy({ f in functions.contains { nameGlob($0, f) } }) { return false }
        if let anyTables, !s.resources.contains(where: { r in anyTables.contains { tableGlob($0, r) } }) { return false }
        if let anyFunctions, !s.functions.contains(where: { f in anyFunctions.contains { nameGlob($0, f) } }) { return false }
        if let writes, s.writes != writes { return false }
        if let paths, !paths.contains(path) { return false }
        for (attribute, patterns) in attributes {
            guard let value = s.attributes[attribute], patterns.contains(where: { attribute.matches($0, value) }) else { return false }
        }
        return true
    }
}

public struct Rule: Sendable, Hashable {
    public var name: String
    public var when: Condition
    public var then: Action
    /// What a `review` needs: approvers from which groups, how many, how long it waits, and the grant it opens.
    public var approval: ApprovalRequirement?
    /// Shown to the client when the rule denies or holds a request.
    public var message: String

    /// `approvers`: one approver from any of these groups, with the default timeout and no grant
    /// (`approval` says more).
    public init(name: String, when: Condition, then: Action, approvers: [String] = [], approval: ApprovalRequirement? = nil,
                message: String = "") {
        self.name = name; self.when = when; self.then = then; self.message = message
        self.approval = approval ?? (approvers.isEmpty ? nil : ApprovalRequirement(anyOf: approvers))
    }

    /// Groups whose members may approve a `review`.
    public var approvers: [String] { approval?.groups ?? [] }
}

/// A mask applied to responses: a built-in detector or family by name (`credit_card`, `secrets`),
/// a column rule (a glob over `column`, `table.column` or `schema.table.column`), or a named
/// custom regular expression. Pure data: the gate's masking library compiles and applies it.
public enum MaskSpec: Sendable, Hashable {
    case detector(String)
    case column(String)
    case pattern(name: String, regex: String)
    /// A JSON field-name rule (`{json_field: "*.password"}`): the values of the members it names in HTTP JSON bodies.
    case jsonField(String)
}

/// What a policy does with a statement that calls a function PostgreSQL does not ship: its code
/// is not visible to the gate and may write, so by default the statement counts as a write.
public enum UnknownFunctions: String, Sendable, Hashable, CaseIterable {
    /// The statement is a write (`writes: false` rules no longer match it).
    case write
    case allow, review, deny
}

public struct Policy: Sendable, Hashable {
    public var name: String
    /// Applies to members of any of these groups, or to any of these subjects; both empty: nobody.
    public var groups: [String]
    public var subjects: [String]
    /// The targets it covers; empty: every target.
    public var targets: [String]
    public var rules: [Rule]
    /// Masks applied to every response in sessions this policy applies to.
    public var masks: [MaskSpec]
    public var unknownFunctions: UnknownFunctions
    /// Kubernetes Secret values in responses: masked unless every applicable policy reveals them.
    public var kubernetesSecrets: KubernetesSecrets

    public init(name: String, groups: [String] = [], subjects: [String] = [], targets: [String] = [], rules: [Rule],
                masks: [MaskSpec] = [], unknownFunctions: UnknownFunctions = .write, kubernetesSecrets: KubernetesSecrets = .mask) {
        self.name = name; self.groups = groups; self.subjects = subjects; self.targets = targets; self.rules = rules
        self.masks = masks; self.unknownFunctions = unknownFunctions; self.kubernetesSecrets = kubernetesSecrets
    }

    /// Who may approve a statement held because of `unknown_functions: review`: one approver from
    /// any group the policy's review rules name, with the shortest of their timeouts.
    public var reviewApproval: ApprovalRequirement? {
        let reviews = rules.compactMap { $0.then == .review ? $0.approval : nil }
        guard let first = reviews.first else { return nil }
        var groups: [String] = []
        for r in reviews { for g in r.groups where !groups.contains(g) { groups.append(g) } }
        return ApprovalRequirement(anyOf: groups, timeout: reviews.map(\.timeout).min() ?? first.timeout)
    }

    func applies(to who: Principal, target: String) -> Bool {
        let member = who.groups.contains { g in groups.contains(g) } || subjects.contains { glob($0, who.subject) }
        return member && (targets.isEmpty || targets.contains(target))
    }
}

/// What the policy decided for one statement, and why.
public struct StatementDecision: Sendable, Hashable {
    public var action: Action
    public var policy: String
    public var rule: String
    public var reason: String
    /// For `review`: what approving it takes.
    public var approval: ApprovalRequirement?
}

public struct PolicyDecision: Sendable, Hashable {
    public var action: Action
    /// The policy and rule of the deciding (strictest) statement.
    public var policy: String
    public var rule: String
    public var reason: String
    /// For `review`: what every held statement of the request needs, together.
    public var approval: ApprovalRequirement?
    public var statements: [StatementDecision]

    /// Groups whose members may approve it.
    public var approvers: [String] { approval?.groups ?? [] }
}

public struct PolicySet: Sendable, Hashable {
    public var policies: [Policy]
    public init(policies: [Policy]) { self.policies = policies }

    static let defaultDeny = "default-deny"
    public static let unknownFunctionsRule = "unknown-functions"
    /// Names the decision on a statement the gate refuses because it changes how statements are read.
    public static let parserSettingsRule = "parser-settings"

    /// The policies that apply to `who` on `target`, in order.
    public func applicable(to who: Principal, target: String) -> [Policy] {
        policies.filter { $0.applies(to: who, target: target) }
    }

    /// The masks of every policy that applies to `who` on `target`, in order, without repeats.
    /// Masks add up: a session gets the union, so one policy cannot loosen another's masking.
    public func masks(for who: Principal, target: String) -> [MaskSpec] {
        var out: [MaskSpec] = []
        for p in policies where p.applies(to: who, target: target) {
            for m in p.masks where !out.contains(m) { out.append(m) }
        }
        return out
    }

    /// Decides a request. Within a statement the strictest matching rule wins (deny > review > allow);
    /// no match denies; the request takes its strictest statement.
    public func decide(_ statements: [StatementInfo], who: Principal, target: String, path: String) -> PolicyDecision {
        let applicable = policies.filter { $0.applies(to: who, target: target) }
        var decisions: [StatementDecision] = []
        for s in statements {
            if let error = s.parseError {
                decisions.append(StatementDecision(action: .deny, policy: "", rule: "unparseable",
                                                   reason: "the statement cannot be parsed: \(error)"))
                continue
            }
            if let refusal = s.refusal {
                // Named as the gate's own: no configured policy made it, and none can change it.
                decisions.append(StatementDecision(action: .deny, policy: "tollgate", rule: Self.parserSettingsRule, reason: refusal))
                continue
            }
            var best: StatementDecision?
            func consider(_ d: StatementDecision) { if best == nil || d.action > best!.action { best = d } }
            for p in applicable {
                var s = s
                if !s.unknownFunctions.isEmpty {
                    let list = s.unknownFunctions.joined(separator: ", ")
                    switch p.unknownFunctions {
                    case .write:
                        s.writes = true
                        s.sideEffects.append("calls functions PostgreSQL does not ship: \(list)")
                    case .allow:
                        break
                    case .review, .deny:
                        consider(StatementDecision(action: p.unknownFunctions == .deny ? .deny : .review, policy: p.name,
                                                   rule: Self.unknownFunctionsRule,
                                                   reason: "calls functions PostgreSQL does not ship: \(list)",
                                                   approval: p.unknownFunctions == .review ? p.reviewApproval : nil))
                    }
                }
                for r in p.rules where r.when.matches(s, path: path) {
                    consider(StatementDecision(action: r.then, policy: p.name, rule: r.name,
                                               reason: r.message.isEmpty ? "\(s.kind) matched rule \(r.name)" : r.message,
                                               approval: r.then == .review ? r.approval : nil))
                }
            }
            decisions.append(best ?? StatementDecision(
                action: .deny, policy: applicable.first?.name ?? "", rule: Self.defaultDeny,
                reason: applicable.isEmpty ? "no policy applies to \(who.subject) on \(target)" : "no rule allows \(s.kind) here"))
        }
        if decisions.isEmpty {
            // An empty request (only comments) changes nothing.
            return PolicyDecision(action: .allow, policy: "", rule: "empty", reason: "no statement", approval: nil, statements: [])
        }
        let strictest = decisions.max { $0.action < $1.action }!
        var approval: ApprovalRequirement?
        if strictest.action == .review {
            for d in decisions where d.action == .review {
                if let a = d.approval { approval = approval.map { $0.merged(with: a) } ?? a }
            }
        }
        return PolicyDecision(action: strictest.action, policy: strictest.policy, rule: strictest.rule, reason: strictest.reason,
                              approval: approval, statements: decisions)
    }
}

/// Glob with `*` (any run) and `?` (one character), case-insensitive: for statement kinds and subjects.
func glob(_ pattern: String, _ text: String) -> Bool {
    nameGlob(caseFolded(pattern), caseFolded(text))
}

/// `lowercased()`, skipped for what is lowercase ASCII already (statement kinds, most patterns):
/// it walks Unicode tables and builds a new string on every rule of every decision.
private func caseFolded(_ s: String) -> String {
    s.utf8.contains { $0 >= UInt8(ascii: "A") && ($0 <= UInt8(ascii: "Z") || $0 >= 0x80) } ? s.lowercased() : s
}

/// `schema.table` patterns match the qualified name; a pattern without a dot matches the table name.
func tableGlob(_ pattern: String, _ r: Resource) -> Bool {
    // "schema.name" even when the schema is unknown (""), which no schema pattern matches.
    // A byte scan: `contains(".")` resolves to Foundation's substring search once Foundation is
    // visible here (through CaptureFormat), a CFString call per table per rule per decision.
    pattern.utf8.contains(UInt8(ascii: ".")) ? nameGlob(pattern, "\(r.schema).\(r.name)") : nameGlob(pattern, r.name)
}

/// Object names compare as PostgreSQL compares them. The parser reports unquoted identifiers
/// folded to lower case and quoted ones as written, so `"ANALYTICS".events` is not
/// `analytics.events`: a pattern is folded like an unquoted identifier, except the parts in
/// double quotes, which keep their case (`'"Sales".*'`), and the comparison is exact.
public enum NamePattern {
    public static func fold(_ pattern: String) -> String {
        var out = "", quoted = false
        for c in pattern {
            if c == "\"" { quoted.toggle(); continue }
            out.append(quoted ? c : Character(c.lowercased()))
        }
        return out
    }
}

/// Glob with `*` and `?`, case-sensitive: for folded name patterns.
/// Object names and patterns are nearly always ASCII: then bytes are scalars and the match runs
/// over the strings' own UTF-8 storage, with no array built or index validated per comparison.
func nameGlob(_ pattern: String, _ text: String) -> Bool {
    let ascii = pattern.utf8.withContiguousStorageIfAvailable { p in
        text.utf8.withContiguousStorageIfAvailable { t -> Bool? in
            p.allSatisfy { $0 < 0x80 } && t.allSatisfy { $0 < 0x80 } ? globMatch(p, t, any: UInt8(ascii: "?"), run: UInt8(ascii: "*")) : nil
        } ?? nil
    } ?? nil
    return ascii ?? globMatch(pattern.unicodeScalars, text.unicodeScalars, any: "?", run: "*")
}

/// `*` and `?` over any sequence of scalars (or ASCII bytes), backtracking to the last `*`.
private func globMatch<C: Collection>(_ p: C, _ t: C, any: C.Element, run: C.Element) -> Bool where C.Element: Equatable {
    var pi = p.startIndex, ti = t.startIndex, star: C.Index?, mark = t.startIndex
    while ti < t.endIndex {
        if pi < p.endIndex && (p[pi] == any || p[pi] == t[ti]) { p.formIndex(after: &pi); t.formIndex(after: &ti) }
        else if pi < p.endIndex && p[pi] == run { star = pi; mark = ti; p.formIndex(after: &pi) }
        else if let star { pi = p.index(after: star); t.formIndex(after: &mark); ti = mark }
        else { return false }
    }
    while pi < p.endIndex && p[pi] == run { p.formIndex(after: &pi) }
    return pi == p.endIndex
}
