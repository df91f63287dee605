import CaptureFormat
import Foundation

/// Three small captures with known content for search tests, written with tiny blocks so that
/// exchanges straddle block boundaries (the case exchange spans exist for):
///
/// - `a-analytics.sesscap`: alice (ai-assistants, analysts) on analytics-db, postgres, 2 hours ago:
///   x1 prompt p-1 / trace T1, SELECT on pii.users, allow, masked emails;
///   x2 DELETE FROM pii.users, deny (42501);
///   x3 UPDATE public.orders, review then approved, UPDATE 1;
///   x4 INSERT INTO public.orders, review then expired;
///   x5 SELECT pg_catalog.pg_sleep(2), allow; x6 a bound parameter 'secret-token-42', allow;
///   x7 payments with a masked card ****-****-****-4242 (credit_card); x8 SELECT 1/0, error 22012.
/// - `b-kubernetes.sesscap`: sam (sre) on prod-cluster, kubernetes, 30 minutes ago:
///   x1 GET /api (discovery, 200); x2 list pods -n payments (200); x3 list secrets -n payments (deny, 403);
///   x4 exec into payments-api (approved; stdin 'cat /etc/passwd', stdout 'root:x:0:0'); x5 get deployments -n search (404).
/// - `c-orders.sesscap`: bob (developers) on orders-db, postgres, 3 days ago: x1 SELECT on public.orders, allow;
///   x2 TRUNCATE public.orders, deny.
public struct SearchFixture {
    public let dir: URL
    public let key: SigningKey
    public let now: Int64

    public static let analytics = "a-analytics.sesscap"
    public static let kubernetes = "b-kubernetes.sesscap"
    public static let orders = "c-orders.sesscap"
    public static let traceT1 = "0af7651916cd43dd8448eb211c80319c"

    public init(blockBytes: Int = 700) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("sessgrep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        key = SigningKey()
        now = nowMicros()
        var o = WriterOptions()
        o.blockTargetBytes = blockBytes
        o.durability = .none
        o.maxBlockAge = .seconds(3600)
        try Self.analyticsSession(path(Self.analytics), key: key, start: now - 2 * 3_600_000_000, options: o)
        try Self.kubernetesSession(path(Self.kubernetes), key: key, start: now - 30 * 60_000_000, options: o)
        try Self.ordersSession(path(Self.orders), key: key, start: now - 3 * 86_400_000_000, options: o)
    }

    public func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    public var all: [String] { [Self.analytics, Self.kubernetes, Self.orders].map(path) }
    public func remove() { try? FileManager.default.removeItem(at: dir) }

    /// Appends events at 1 ms steps (10 s between exchanges).
    struct Script {
        let writer: CaptureWriter
        var t: Int64
        let start: Int64
        mutating func add(_ p: Payload, _ x: UInt64 = 0) throws {
            t += 1000
            try writer.append(Event(monotonicNanos: UInt64(t - start) * 1000, wallMicros: t, exchangeID: x, payload: p))
        }
        mutating func pause() { t += 10_000_000 }
    }

    static func writer(_ path: String, _ h: SessionHeader, _ key: SigningKey, _ o: WriterOptions) throws -> Script {
        Script(writer: try CaptureWriter(path: path, header: h, key: key, options: o), t: h.startMicros, start: h.startMicros)
    }

    static func pg(_ text: String, kinds: [String], _ resources: [Resource] = [], functions: [String] = [],
                   params: [String] = []) -> Payload {
        .request(.postgres(PostgresRequest(text: text, path: params.isEmpty ? .simple : .extended,
                                           parameters: params.map { Parameter(text: $0) }, fingerprint: "fp-\(kinds.first ?? "")",
                                           statementKinds: kinds, resources: resources, functions: functions)))
    }

    static func rows(_ columns: [String], _ rows: [[String]], tag: String) -> Payload {
        .response(.postgres(PostgresResponse(columns: columns.map { Column(name: $0, typeOID: 25) },
                                             rows: rows.map { $0.map { Array($0.utf8) } }, rowCount: UInt64(rows.count), commandTag: tag)))
    }

    static func error(_ state: String, _ message: String) -> Payload {
        .response(.postgres(PostgresResponse(error: PostgresNotice(severity: "ERROR", sqlState: state, message: message))))
    }

    static func analyticsSession(_ path: String, key: SigningKey, start: Int64, options: WriterOptions) throws {
        let h = SessionHeader(sessionID: "aaaaaaaa-0000-4000-8000-000000000001", target: "analytics-db", protocolName: "postgres",
                              subject: "alice@example.com", groups: ["ai-assistants", "analysts"], proxyID: "gate-1", startMicros: start)
        var s = try writer(path, h, key, options)
        let users = Resource(schema: "pii", name: "users", access: .read)
        try s.add(.sessionStart(SessionStart(clientAddress: "10.0.0.5:50000", applicationName: "copilot-mcp")))
        try s.add(.annotation(Annotation(promptID: "p-1", traceparent: "00-\(traceT1)-b7ad6b7169203331-01", text: "Who signed up?")), 1)
        try s.add(pg("SELECT id, email FROM pii.users WHERE created_at > now() - interval '1 day'", kinds: ["select"], [users]), 1)
        try s.add(.decision(Decision(action: .allow, policy: "copilot", rule: "read-masked", masks: ["email"])), 1)
        try s.add(rows(["id", "email"], [["1", "a****@example.com"], ["2", "b****@example.org"]], tag: "SELECT 2"), 1)
        try s.add(.maskSummary(MaskSummary(entries: [MaskCount(detector: "email", count: 2, location: "email")])), 1)
        s.pause()
        try s.add(pg("DELETE FROM pii.users WHERE id = 7", kinds: ["delete"], [Resource(schema: "pii", name: "users", access: .write)]), 2)
        try s.add(.decision(Decision(action: .deny, policy: "copilot", rule: "no-writes", reason: "writes are not allowed")), 2)
        try s.add(error("42501", "tollgate: denied by policy \"copilot\" rule \"no-writes\""), 2)
        s.pause()
        try s.add(pg("UPDATE public.orders SET status = 'shipped' WHERE id = 42", kinds: ["update"], [Resource(schema: "public", name: "orders", access: .write)]), 3)
        try s.add(.decision(Decision(action: .review, policy: "copilot", rule: "writes-need-approval")), 3)
        try s.add(.approval(Approval(state: .requested, approvalID: "apr_1", approverGroups: ["dba"])), 3)
        try s.add(.approval(Approval(state: .granted, approvalID: "apr_1", by: "dba@example.com", reason: "ticket OPS-1")), 3)
        try s.add(.response(.postgres(PostgresResponse(rowCount: 1, commandTag: "UPDATE 1"))), 3)
        s.pause()
        try s.add(pg("INSERT INTO public.orders (customer_id, total) VALUES (5, 100)", kinds: ["insert"], [Resource(schema: "public", name: "orders", access: .write)]), 4)
        try s.add(.decision(Decision(action: .review, policy: "copilot", rule: "writes-need-approval")), 4)
        try s.add(.approval(Approval(state: .requested, approvalID: "apr_2", approverGroups: ["dba"])), 4)
        try s.add(.approval(Approval(state: .expired, approvalID: "apr_2", reason: "no decision within 5m0s")), 4)
        try s.add(error("42501", "tollgate: approval apr_2 expired after 5m0s"), 4)
        s.pause()
        try s.add(pg("SELECT pg_catalog.pg_sleep(2)", kinds: ["select"], functions: ["pg_catalog.pg_sleep"]), 5)
        try s.add(.decision(Decision(action: .allow, policy: "copilot", rule: "read-analytics")), 5)
        try s.add(rows(["pg_sleep"], [[""]], tag: "SELECT 1"), 5)
        s.pause()
        try s.add(pg("SELECT id FROM analytics.tokens WHERE token = $1", kinds: ["select"], [Resource(schema: "analytics", name: "tokens", access: .read)],
                     params: ["secret-token-42"]), 6)
        try s.add(.decision(Decision(action: .allow, policy: "copilot", rule: "read-analytics")), 6)
        try s.add(rows(["id"], [["9"]], tag: "SELECT 1"), 6)
        s.pause()
        try s.add(pg("SELECT order_id, card_number FROM public.payments WHERE order_id = 42", kinds: ["select"], [Resource(schema: "public", name: "payments", access: .read)]), 7)
        try s.add(.decision(Decision(action: .allow, policy: "copilot", rule: "read-masked", masks: ["credit_card"])), 7)
        try s.add(rows(["order_id", "card_number"], [["42", "****-****-****-4242"]], tag: "SELECT 1"), 7)
        try s.add(.maskSummary(MaskSummary(entries: [MaskCount(detector: "credit_card", count: 1, location: "card_number")])), 7)
        s.pause()
        try s.add(pg("SELECT 1/0", kinds: ["select"]), 8)
        try s.add(.decision(Decision(action: .allow, policy: "copilot", rule: "read-analytics")), 8)
        try s.add(error("22012", "division by zero"), 8)
        try s.add(.sessionEnd(SessionEnd(reason: "client-terminate")))
        try s.writer.close()
    }

    static func k8s(_ method: String, _ target: String, verb: String, resource: String = "", namespace: String = "",
                    name: String = "", sub: String = "", command: [String] = []) -> Payload {
        .request(.kubernetes(KubernetesRequest(http: HTTPRequest(method: method, target: target, host: "prod-cluster.example.com"),
                                               verb: verb, resource: resource, namespace: namespace, name: name,
                                               subresource: sub, command: command)))
    }

    static func status(_ code: UInt16, _ body: String = "") -> Payload {
        .response(.http(HTTPResponse(status: code, body: CappedBytes(data: Array(body.utf8)))))
    }

    static func kubernetesSession(_ path: String, key: SigningKey, start: Int64, options: WriterOptions) throws {
        let h = SessionHeader(sessionID: "bbbbbbbb-0000-4000-8000-000000000002", target: "prod-cluster", protocolName: "kubernetes",
                              subject: "sam@example.com", groups: ["sre", "oncall"], proxyID: "gate-1", startMicros: start)
        var s = try writer(path, h, key, options)
        let allow = Payload.decision(Decision(action: .allow, policy: "sre-prod", rule: "read"))
        try s.add(.sessionStart(SessionStart(clientAddress: "10.0.0.9:41000", applicationName: "kubectl")))
        try s.add(k8s("GET", "/api?timeout=32s", verb: "get"), 1)
        try s.add(allow, 1)
        try s.add(status(200, "{\"kind\":\"APIVersions\"}"), 1)
        s.pause()
        try s.add(k8s("GET", "/api/v1/namespaces/payments/pods?limit=500", verb: "list", resource: "pods", namespace: "payments"), 2)
        try s.add(allow, 2)
        try s.add(status(200, "{\"kind\":\"PodList\",\"items\":[{\"name\":\"payments-api-7f9c\"}]}"), 2)
        s.pause()
        try s.add(k8s("GET", "/api/v1/namespaces/payments/secrets", verb: "list", resource: "secrets", namespace: "payments"), 3)
        try s.add(.decision(Decision(action: .deny, policy: "sre-prod", rule: "no-secrets")), 3)
        try s.add(status(403, "{\"kind\":\"Status\",\"reason\":\"Forbidden\"}"), 3)
        s.pause()
        try s.add(k8s("POST", "/api/v1/namespaces/payments/pods/payments-api-7f9c/exec?command=%2Fbin%2Fsh&stdin=true&tty=true",
                      verb: "create", resource: "pods", namespace: "payments", name: "payments-api-7f9c", sub: "exec", command: ["/bin/sh"]), 4)
        try s.add(.decision(Decision(action: .review, policy: "sre-prod", rule: "exec-needs-approval")), 4)
        try s.add(.approval(Approval(state: .requested, approvalID: "apr_9", approverGroups: ["sre-leads"])), 4)
        try s.add(.approval(Approval(state: .granted, approvalID: "apr_9", by: "lead@example.com")), 4)
        try s.add(status(101), 4)
        try s.add(.streamChunk(StreamChunk(stream: .stdin, data: Array("cat /etc/passwd\n".utf8))), 4)
        try s.add(.streamChunk(StreamChunk(stream: .stdout, data: Array("root:x:0:0:root:/root:/bin/sh\n".utf8))), 4)
        s.pause()
        try s.add(k8s("GET", "/apis/apps/v1/namespaces/search/deployments/indexer", verb: "get", resource: "deployments", namespace: "search", name: "indexer"), 5)
        try s.add(allow, 5)
        try s.add(status(404, "{\"kind\":\"Status\",\"reason\":\"NotFound\"}"), 5)
        try s.add(.sessionEnd(SessionEnd(reason: "client-disconnect")))
        try s.writer.close()
    }

    static func ordersSession(_ path: String, key: SigningKey, start: Int64, options: WriterOptions) throws {
        let h = SessionHeader(sessionID: "cccccccc-0000-4000-8000-000000000003", target: "orders-db", protocolName: "postgres",
                              subject: "bob@example.com", groups: ["developers"], proxyID: "gate-1", startMicros: start)
        var s = try writer(path, h, key, options)
        let orders = Resource(schema: "public", name: "orders", access: .read)
        try s.add(.sessionStart(SessionStart(clientAddress: "10.0.0.7:40000", applicationName: "psql")))
        try s.add(pg("SELECT id, status FROM public.orders WHERE id = 42", kinds: ["select"], [orders]), 1)
        try s.add(.decision(Decision(action: .allow, policy: "oncall", rule: "read")), 1)
        try s.add(rows(["id", "status"], [["42", "shipped"]], tag: "SELECT 1"), 1)
        s.pause()
        try s.add(pg("TRUNCATE public.orders", kinds: ["truncate"], [Resource(schema: "public", name: "orders", access: .write)]), 2)
        try s.add(.decision(Decision(action: .deny, policy: "oncall", rule: "no-destructive")), 2)
        try s.add(error("42501", "tollgate: denied by policy \"oncall\" rule \"no-destructive\""), 2)
        try s.add(.sessionEnd(SessionEnd(reason: "client-terminate")))
        try s.writer.close()
    }
}
