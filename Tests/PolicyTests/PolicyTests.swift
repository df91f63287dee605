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
}
