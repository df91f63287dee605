import CaptureFormat
import Policy
import Testing

@Suite("policy decisions")
struct PolicyTests {
    let policies = PolicySet(policies: [
        Policy(name: "copilot", groups: ["ai-assistants"], targets: ["analytics-db"], rules: [
            Rule(name: "read-analytics", when: Condition(statements: ["select"], schemas: ["analytics"], writes: false), then: .allow),
            Rule(name: "writes-review", when: Condition(statements: ["insert", "update"]), then: .review, approvers: ["dba"]),
            Rule(name: "no-kill", when: Condition(anyFunctions: ["pg_terminate_*", "lo_*"]), then: .deny, message: "no backend control"),
            Rule(name: "no-ddl", when: Condition(statements: ["drop", "truncate", "alter_*"]), then: .deny),
        ]),
        Policy(name: "dba", subjects: ["*@dba.example.com"], rules: [
            Rule(name: "anything-extended", when: Condition(paths: ["extended"]), then: .allow),
        ]),
    ])
    let assistant = Principal(subject: "bot@example.com", groups: ["ai-assistants"])

    func select(_ schema: String, _ table: String, functions: [String] = []) -> StatementInfo {
        StatementInfo(kind: "select", resources: [Resource(schema: schema, name: table, access: .read)], functions: functions)
    }

    @Test func allowsOnlyWhatARuleAllows() {
        let ok = policies.decide([select("analytics", "events")], who: assistant, target: "analytics-db", path: "simple")
        #expect(ok.action == .allow)
        #expect(ok.policy == "copilot")
        #expect(ok.rule == "read-analytics")
        let outside = policies.decide([select("public", "customers")], who: assistant, target: "analytics-db", path: "simple")
        #expect(outside.action == .deny)
        #expect(outside.rule == "default-deny")
    }

    @Test func denyBeatsReviewBeatsAllow() {
        let killer = select("analytics", "events", functions: ["pg_terminate_backend"])
        let d = policies.decide([killer], who: assistant, target: "analytics-db", path: "simple")
        #expect(d.action == .deny)
        #expect(d.rule == "no-kill")
        #expect(d.reason == "no backend control")
        let insert = StatementInfo(kind: "insert", resources: [Resource(schema: "analytics", name: "events", access: .write)], writes: true)
        let r = policies.decide([insert], who: assistant, target: "analytics-db", path: "simple")
        #expect(r.action == .review)
        #expect(r.approvers == ["dba"])
    }

    @Test func aRequestTakesItsStrictestStatement() {
        let drop = StatementInfo(kind: "drop", resources: [Resource(schema: "analytics", name: "events", access: .write)], writes: true)
        let d = policies.decide([select("analytics", "events"), drop], who: assistant, target: "analytics-db", path: "simple")
        #expect(d.action == .deny)
        #expect(d.rule == "no-ddl")
        #expect(d.statements.map(\.action) == [.allow, .deny])
    }

    @Test func policiesApplyOnlyToTheirPeopleAndTargets() {
        let stranger = Principal(subject: "eve@example.com", groups: ["marketing"])
        let d = policies.decide([select("analytics", "events")], who: stranger, target: "analytics-db", path: "simple")
        #expect(d.action == .deny)
        #expect(d.reason.contains("no policy applies"))
        let elsewhere = policies.decide([select("analytics", "events")], who: assistant, target: "orders-db", path: "simple")
        #expect(elsewhere.action == .deny)
        let dba = Principal(subject: "ann@dba.example.com", groups: [])
        #expect(policies.decide([select("public", "customers")], who: dba, target: "orders-db", path: "extended").action == .allow)
        #expect(policies.decide([select("public", "customers")], who: dba, target: "orders-db", path: "simple").action == .deny)
    }

    @Test func unparseableStatementsAreDeniedWithTheParserMessage() {
        let d = policies.decide([.unparseable("syntax error at or near \"SELEC\"")], who: assistant, target: "analytics-db", path: "simple")
        #expect(d.action == .deny)
        #expect(d.rule == "unparseable")
        #expect(d.reason.contains("SELEC"))
    }

    @Test func tableAndSchemaConditionsRequireEveryRelation() {
        let join = StatementInfo(kind: "select", resources: [Resource(schema: "analytics", name: "events", access: .read),
                                                             Resource(schema: "public", name: "customers", access: .read)])
        #expect(policies.decide([join], who: assistant, target: "analytics-db", path: "simple").action == .deny)
        let tables = PolicySet(policies: [Policy(name: "p", groups: ["g"], rules: [
            Rule(name: "t", when: Condition(tables: ["analytics.*", "customers"]), then: .allow),
        ])])
        #expect(tables.decide([join], who: Principal(subject: "s", groups: ["g"]), target: "x", path: "simple").action == .allow)
    }

    @Test func unknownFunctionsFollowThePolicySetting() {
        let call = StatementInfo(kind: "select", resources: [Resource(schema: "analytics", name: "events", access: .read)],
                                 functions: ["count", "refresh_stats"], unknownFunctions: ["refresh_stats"])
        func policy(_ setting: UnknownFunctions) -> PolicySet {
            PolicySet(policies: [Policy(name: "p", groups: ["g"], rules: [
                Rule(name: "read", when: Condition(statements: ["select"], writes: false), then: .allow),
                Rule(name: "writes", when: Condition(writes: true), then: .review, approvers: ["dba"]),
            ], unknownFunctions: setting)])
        }
        let who = Principal(subject: "s", groups: ["g"])
        // Default: the call may write, so the read-only rule no longer matches.
        let asWrite = policy(.write).decide([call], who: who, target: "t", path: "simple")
        #expect(asWrite.action == .review && asWrite.rule == "writes")
        #expect(policy(.allow).decide([call], who: who, target: "t", path: "simple").action == .allow)
        let denied = policy(.deny).decide([call], who: who, target: "t", path: "simple")
        #expect(denied.action == .deny && denied.rule == PolicySet.unknownFunctionsRule && denied.reason.contains("refresh_stats"))
        let held = policy(.review).decide([call], who: who, target: "t", path: "simple")
        #expect(held.action == .review && held.approvers == ["dba"])
        // Builtins only: nothing changes.
        let builtin = StatementInfo(kind: "select", functions: ["count"])
        #expect(policy(.deny).decide([builtin], who: who, target: "t", path: "simple").action == .allow)
    }

    @Test func masksAddUpOverTheApplicablePolicies() {
        let set = PolicySet(policies: [
            Policy(name: "a", groups: ["g"], rules: [], masks: [.detector("email"), .column("*.ssn")]),
            Policy(name: "b", groups: ["h"], targets: ["db"], rules: [], masks: [.detector("email"), .pattern(name: "emp", regex: "E-\\d+")]),
            Policy(name: "c", groups: ["h"], targets: ["other"], rules: [], masks: [.detector("iban")]),
        ])
        #expect(set.masks(for: Principal(subject: "s", groups: ["g", "h"]), target: "db")
                == [.detector("email"), .column("*.ssn"), .pattern(name: "emp", regex: "E-\\d+")])
        #expect(set.masks(for: Principal(subject: "s", groups: ["x"]), target: "db").isEmpty)
    }

    @Test func statementConditionsMatchTheInnerKindOfWrappers() {
        let set = PolicySet(policies: [Policy(name: "p", groups: ["g"], rules: [
            Rule(name: "read", when: Condition(statements: ["select"], writes: false), then: .allow),
            Rule(name: "no-delete", when: Condition(statements: ["delete"]), then: .deny),
        ])])
        let who = Principal(subject: "s", groups: ["g"])
        #expect(set.decide([StatementInfo(kind: "execute", innerKind: "select")], who: who, target: "t", path: "simple").action == .allow)
        let explainDelete = StatementInfo(kind: "explain", innerKind: "delete", writes: true)
        #expect(set.decide([explainDelete], who: who, target: "t", path: "simple").rule == "no-delete")
    }

    @Test func namesCompareAsPostgreSQLFoldsThem() {
        let set = PolicySet(policies: [Policy(name: "p", groups: ["g"], rules: [
            Rule(name: "read", when: Condition(statements: ["select"], schemas: ["Analytics"], writes: false), then: .allow),
            Rule(name: "sales", when: Condition(tables: [#""Sales".*"#]), then: .allow),
        ])])
        let who = Principal(subject: "s", groups: ["g"])
        func select(_ schema: String) -> StatementInfo { StatementInfo(kind: "select", resources: [Resource(schema: schema, name: "t", access: .read)]) }
        // An unquoted pattern is folded: it means analytics, and not the quoted "ANALYTICS" schema.
        #expect(set.decide([select("analytics")], who: who, target: "x", path: "simple").rule == "read")
        #expect(set.decide([select("ANALYTICS")], who: who, target: "x", path: "simple").action == .deny)
        // A quoted part keeps its case.
        #expect(set.decide([select("Sales")], who: who, target: "x", path: "simple").rule == "sales")
        #expect(set.decide([select("sales")], who: who, target: "x", path: "simple").action == .deny)
        #expect(NamePattern.fold(#"Public."Orders_*""#) == "public.Orders_*")
    }

    /// Globs compare bytes when both sides are ASCII and scalars otherwise: `?` is one character
    /// of a non-ASCII name (é is two bytes), and kinds compare without case either way.
    @Test func globsMatchNonASCIINamesByCharacter() {
        let set = PolicySet(policies: [Policy(name: "p", groups: ["g"], rules: [
            Rule(name: "cafe", when: Condition(statements: ["select"], tables: ["public.caf?_*s"]), then: .allow),
            Rule(name: "vacuum", when: Condition(statements: ["VACUUM"]), then: .allow),
        ])])
        let who = Principal(subject: "s", groups: ["g"])
        func rule(_ schema: String, _ table: String) -> String {
            let s = StatementInfo(kind: "select", resources: [Resource(schema: schema, name: table, access: .read)])
            return set.decide([s], who: who, target: "x", path: "simple").rule
        }
        #expect(rule("public", "café_orders") == "cafe")
        #expect(rule("public", "cafe_orders") == "cafe")
        #expect(rule("public", "caféé_orders") == "default-deny")
        #expect(rule("public", "café_order") == "default-deny")
        #expect(rule("other", "cafe_orders") == "default-deny")
        #expect(set.decide([StatementInfo(kind: "vacuum")], who: who, target: "x", path: "simple").rule == "vacuum")
    }
}

/// A statement the gate cannot follow is denied even by a policy that allows everything.
@Suite struct ParserSettingsRefusalTests {
    @Test func aRefusalBeatsAnAllowRule() {
        let set = PolicySet(policies: [Policy(name: "all", groups: ["dba"], rules: [Rule(name: "any", when: Condition(), then: .allow)])])
        var s = StatementInfo(kind: "set")
        s.refusal = "SET standard_conforming_strings = off is refused"
        let d = set.decide([s, StatementInfo(kind: "select")], who: Principal(subject: "a", groups: ["dba"]), target: "db", path: "simple")
        #expect(d.action == .deny)
        #expect(d.rule == PolicySet.parserSettingsRule && d.policy == "tollgate")
        #expect(d.reason == "SET standard_conforming_strings = off is refused")
        #expect(set.decide([StatementInfo(kind: "set")], who: Principal(subject: "a", groups: ["dba"]), target: "db", path: "simple").action == .allow)
    }
}

/// HTTP conditions: method without case, paths where `*` crosses `/`, query keys where any key may match.
@Suite("HTTP request conditions")
struct HTTPConditionTests {
    func request(_ method: String, _ path: String, queryKeys: String? = nil) -> StatementInfo {
        var s = StatementInfo(kind: method.lowercased(), writes: method != "GET")
        s.attributes[.method] = method
        s.attributes[.path] = path
        if let queryKeys { s.attributes[.query] = queryKeys }
        return s
    }

    @Test func queryKeysMatchAnyKeyAndARequestWithoutAQueryMatchesNoSuchRule() {
        var noDebug = Condition()
        noDebug.attributes[.query] = ["debug", "*token*"]
        var reads = Condition()
        reads.attributes[.method] = ["get"]
        reads.attributes[.path] = ["/api/*"]
        let set = PolicySet(policies: [Policy(name: "api", groups: ["agents"], rules: [
            Rule(name: "no-debug", when: noDebug, then: .deny),
            Rule(name: "reads", when: reads, then: .allow),
        ])])
        let who = Principal(subject: "a", groups: ["agents"])
        func decide(_ s: StatementInfo) -> String { set.decide([s], who: who, target: "api", path: "http").rule }
        #expect(decide(request("GET", "/api/v1/items")) == "reads")
        #expect(decide(request("GET", "/api/v1/items", queryKeys: "page&limit")) == "reads")
        #expect(decide(request("GET", "/api/v1/items", queryKeys: "page&debug")) == "no-debug")
        #expect(decide(request("GET", "/api/v1/items", queryKeys: "access_token")) == "no-debug")
        #expect(decide(request("POST", "/api/v1/items")) == "default-deny")
    }
}

