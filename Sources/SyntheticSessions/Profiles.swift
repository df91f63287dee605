import CaptureFormat

/// Who is connected, to what, and under which policy: the shape of a synthetic session.
public enum SessionProfile: String, CaseIterable, Sendable {
    /// An AI assistant (over MCP) exploring the analytics database for an analyst:
    /// mostly SELECTs, prompt annotations, writes held for review, DDL denied.
    case analyticsAssistant = "analytics-assistant"
    /// An on-call developer on the orders database: reads with masked personal data,
    /// writes in transactions, deletes held for review.
    case ordersOncall = "orders-oncall"
    /// A contractor with a narrow policy: many denials and reviews.
    case restricted = "restricted"
    /// An SRE with kubectl on the production cluster: get, logs, exec with streams.
    case kubernetes = "kubernetes"

    public var summary: String {
        switch self {
        case .analyticsAssistant: "AI assistant on analytics-db: SELECTs with joins, prompt annotations, writes reviewed, DDL denied"
        case .ordersOncall: "on-call developer on orders-db: masked reads, writes in transactions, deletes reviewed"
        case .restricted: "contractor on orders-db: personal data denied, writes reviewed, DDL denied"
        case .kubernetes: "SRE with kubectl on prod-cluster: list, get, logs, exec with stdin/stdout streams"
        }
    }

    /// The share of each profile in a mixed corpus.
    static let mixWeights: [(SessionProfile, Double)] = [
        (.analyticsAssistant, 0.45), (.ordersOncall, 0.35), (.restricted, 0.10), (.kubernetes, 0.10),
    ]

    static func mixed(_ rng: inout SyntheticRandom) -> SessionProfile {
        mixWeights[rng.weighted(mixWeights.map(\.1))].0
    }

    var isPostgres: Bool { self != .kubernetes }
}

/// What a policy rule decided for one kind of statement.
struct Outcome {
    var action: Decision.Action
    var rule: String
    var masks: [String] = []
    var approvers: [String] = []
    var reason: String = ""
}

struct SyntheticPolicy {
    let name: String
    let outcomes: [StatementClass: Outcome]
    let weights: [StatementClass: Double]

    func decide(_ shape: StatementShape) -> Decision {
        let o = outcomes[shape.klass] ?? Outcome(action: .deny, rule: "default-deny", reason: "no rule matched")
        var reason = o.reason
        if reason.isEmpty && o.action != .allow {
            reason = "statement kind \(shape.kinds.joined(separator: ",")) on \(shape.resources.first?.qualifiedName ?? "-") matched rule \(o.rule)"
        }
        return Decision(action: o.action, policy: name, rule: o.rule, reason: reason, masks: o.masks)
    }

    func approvers(_ shape: StatementShape) -> [String] { outcomes[shape.klass]?.approvers ?? [] }

    static let piiMasks = ["email", "credit_card", "column:*.phone"]

    static func forProfile(_ p: SessionProfile) -> SyntheticPolicy {
        switch p {
        case .analyticsAssistant:
            return SyntheticPolicy(name: "copilot-analytics", outcomes: [
                .readAnalytics: Outcome(action: .allow, rule: "read-analytics"),
                .readPII: Outcome(action: .allow, rule: "read-shop-masked", masks: piiMasks),
                .readOps: Outcome(action: .allow, rule: "read-shop-masked", masks: piiMasks),
                .catalog: Outcome(action: .allow, rule: "catalog"),
                .session: Outcome(action: .allow, rule: "session-control"),
                .mistake: Outcome(action: .allow, rule: "read-analytics"),
                .write: Outcome(action: .review, rule: "writes-need-approval", approvers: ["dba"]),
                .destructive: Outcome(action: .deny, rule: "no-destructive"),
                .ddl: Outcome(action: .deny, rule: "no-ddl"),
            ], weights: [.readAnalytics: 52, .readPII: 12, .readOps: 6, .catalog: 7, .session: 4, .mistake: 6,
                         .write: 7, .destructive: 1.5, .ddl: 1.5])
        case .ordersOncall:
            return SyntheticPolicy(name: "orders-oncall", outcomes: [
                .readAnalytics: Outcome(action: .allow, rule: "oncall-read"),
                .readPII: Outcome(action: .allow, rule: "oncall-read", masks: piiMasks),
                .readOps: Outcome(action: .allow, rule: "oncall-read", masks: piiMasks),
                .catalog: Outcome(action: .allow, rule: "session-control"),
                .session: Outcome(action: .allow, rule: "session-control"),
                .mistake: Outcome(action: .allow, rule: "oncall-read", masks: piiMasks),
                .write: Outcome(action: .allow, rule: "oncall-writes"),
                .destructive: Outcome(action: .review, rule: "deletes-need-dba", approvers: ["dba"]),
                .ddl: Outcome(action: .deny, rule: "no-ddl-in-prod"),
            ], weights: [.readAnalytics: 6, .readPII: 22, .readOps: 30, .catalog: 4, .session: 4, .mistake: 2,
                         .write: 22, .destructive: 3, .ddl: 1.5])
        case .restricted:
            return SyntheticPolicy(name: "contractors", outcomes: [
                .readAnalytics: Outcome(action: .allow, rule: "aggregates-only"),
                .readPII: Outcome(action: .deny, rule: "no-personal-data"),
                .readOps: Outcome(action: .allow, rule: "ops-read"),
                .catalog: Outcome(action: .allow, rule: "session-control"),
                .session: Outcome(action: .allow, rule: "session-control"),
                .mistake: Outcome(action: .allow, rule: "aggregates-only"),
                .write: Outcome(action: .review, rule: "writes-need-approval", approvers: ["dba", "orders-owners"]),
                .destructive: Outcome(action: .deny, rule: "no-destructive"),
                .ddl: Outcome(action: .deny, rule: "no-ddl"),
            ], weights: [.readAnalytics: 25, .readPII: 25, .readOps: 15, .catalog: 3, .session: 3, .mistake: 2,
                         .write: 15, .destructive: 7, .ddl: 5])
        case .kubernetes:
            return SyntheticPolicy(name: "sre-prod", outcomes: [:], weights: [:])
        }
    }
}

/// Identities and clients per profile.
struct Persona {
    let subject: String
    let groups: [String]
    let target: String
    let database: String
    let upstreamUser: String
    let application: String
    /// Share of statements sent through the extended protocol (Parse/Bind/Execute).
    let extendedShare: Double
    /// Whether the client names its prepared statements (a JDBC driver after a few uses).
    let namesStatements: Bool
    let annotates: Bool

    static func pick(_ p: SessionProfile, _ rng: inout SyntheticRandom) -> Persona {
        switch p {
        case .analyticsAssistant:
            let app = rng.pick([("copilot-mcp", 0.85), ("claude-mcp-postgres", 0.9), ("psql", 0.0)])
            return Persona(subject: rng.pick(["alice@example.com", "priya@example.com", "marco@example.com", "aiko@example.com"]),
                           groups: ["ai-assistants", "analysts"], target: "analytics-db", database: "analytics", upstreamUser: "copilot_ro",
                           application: app.0, extendedShare: app.1, namesStatements: false, annotates: app.0 != "psql")
        case .ordersOncall:
            let app = rng.pick([("psql", 0.0, false), ("DBeaver 24.2.3 - SQLEditor <orders-db>", 1.0, true), ("pgcli", 0.0, false),
                                ("orders-admin (psycopg 3.2.3)", 1.0, false)])
            return Persona(subject: rng.pick(["bob@example.com", "dana@example.com", "li@example.com", "kwame@example.com"]),
                           groups: ["developers", "oncall"], target: "orders-db", database: "orders", upstreamUser: "oncall_rw",
                           application: app.0, extendedShare: app.1, namesStatements: app.2, annotates: false)
        case .restricted:
            return Persona(subject: rng.pick(["erin@contractors.example.com", "tomasz@contractors.example.com"]),
                           groups: ["contractors"], target: "orders-db", database: "orders", upstreamUser: "contractor_ro",
                           application: rng.pick(["psql", "DBeaver 24.2.3 - SQLEditor <orders-db>"]), extendedShare: 0.3,
                           namesStatements: false, annotates: false)
        case .kubernetes:
            return Persona(subject: rng.pick(["sam@example.com", "bob@example.com", "fatima@example.com"]),
                           groups: ["sre", "oncall"], target: "prod-cluster", database: "", upstreamUser: "tollgate-sre",
                           application: "kubectl", extendedShare: 0, namesStatements: false, annotates: false)
        }
    }
}
