import CaptureFormat

// A small but realistic database: an `analytics` schema fed by the product, and
// the shop's `public` schema. Statement shapes over it, with what the gate's
// inspector would report for each (kinds, relations with access, functions,
// normalized text and fingerprint).

enum PGType {
    static let bool: UInt32 = 16, int8: UInt32 = 20, int4: UInt32 = 23, text: UInt32 = 25, name: UInt32 = 19
    static let date: UInt32 = 1082, timestamptz: UInt32 = 1184, interval: UInt32 = 1186
    static let numeric: UInt32 = 1700, uuid: UInt32 = 2950, jsonb: UInt32 = 3802
}

/// What kind of statement a shape is, which is what the synthetic policies decide on.
enum StatementClass: CaseIterable {
    /// Reads of the analytics schema only.
    case readAnalytics
    /// Reads that return personal or payment data (masked in the response).
    case readPII
    /// Operational reads of the shop tables without personal data.
    case readOps
    case write
    case destructive
    case ddl
    /// SET, SHOW, BEGIN, COMMIT…
    case session
    /// psql's \d-style catalog queries.
    case catalog
    /// A statement that fails in the database (a wrong relation or column), typical of an assistant's first try.
    case mistake
}

struct ColumnSpec {
    var name: String
    var type: UInt32
    var table: UInt32 = 0
    var attnum: UInt16 = 0
    var value: Value
    /// The masking detector that applied to this column, for the mask summary.
    var mask: String?
}

struct ParamSpec {
    var type: UInt32
    var value: Value
    /// Whether the literal form is quoted in a Simple Query.
    var quoted: Bool
    /// Cast appended to a quoted literal ('7 days'::interval).
    var cast: String = ""
    /// A LIMIT: the result has at most this many rows.
    var limit = false
}

/// ORDER BY: which result column, which way, compared as numbers or as text.
struct SortSpec {
    var column: Int
    var descending: Bool
    var numeric: Bool
}

enum ResultSpec {
    /// A SELECT: columns and how many rows (skewed towards the low end); above `cap`, rows are cut.
    case rows([ColumnSpec], ClosedRange<Int>, sort: SortSpec? = nil)
    /// INSERT/UPDATE/DELETE and the like: the tag prefix ("UPDATE", "INSERT 0") and rows affected.
    case affected(String, ClosedRange<Int>)
    /// INSERT … RETURNING.
    case returning(String, [ColumnSpec])
    /// A fixed tag (BEGIN, SET, CREATE INDEX…).
    case tag(String)
}

struct StatementShape {
    let name: String
    let klass: StatementClass
    let sqlParts: [String]
    let params: [ParamSpec]
    let kinds: [String]
    let resources: [Resource]
    let functions: [String]
    let result: ResultSpec
    /// Errors this statement can plausibly meet: SQLSTATE, message.
    let errors: [(String, String)]
    /// For a `.mistake`: the error it always gets.
    let alwaysFails: Bool
    /// Relative frequency within its class.
    let weight: Double
    let normalized: String
    let fingerprint: String

    init(_ name: String, _ klass: StatementClass, _ sql: String, params: [ParamSpec] = [], kinds: [String],
         resources: [Resource] = [], functions: [String] = [], result: ResultSpec,
         errors: [(String, String)] = [], alwaysFails: Bool = false, weight: Double = 1) {
        self.name = name; self.klass = klass
        sqlParts = sql.split(separator: "?", omittingEmptySubsequences: false).map(String.init)
        precondition(sqlParts.count == params.count + 1, "shape \(name): \(sqlParts.count - 1) placeholders, \(params.count) params")
        self.params = params; self.kinds = kinds; self.resources = resources; self.functions = functions
        self.result = result; self.errors = errors; self.alwaysFails = alwaysFails; self.weight = weight
        var n = sqlParts[0]
        for i in 1..<sqlParts.count { n += "$\(i)" + sqlParts[i] }
        normalized = n
        // pg_query's fingerprint is 16 hex digits that ignore constants; this one hashes the normalized text.
        fingerprint = hex16(fnv1a64(n))
    }

    /// The text as a client would send it: literals inline (simple) or $n placeholders (extended).
    func text(simple: Bool, values: [[UInt8]?]) -> String {
        guard simple else { return normalized }
        var b = ByteBuilder(capacity: normalized.utf8.count + 32)
        b.put(sqlParts[0])
        for (i, p) in params.enumerated() {
            if let v = values[i] {
                if p.quoted {
                    b.byte(39)
                    for c in v { if c == 39 { b.byte(39) }; b.byte(c) }
                    b.byte(39)
                    b.put(p.cast)
                } else {
                    b.put(v)
                }
            } else {
                b.put("NULL")
            }
            b.put(sqlParts[i + 1])
        }
        return String(decoding: b.bytes, as: UTF8.self)
    }
}

enum Catalog {
    // Table OIDs, as a real database would have them.
    static let customers: UInt32 = 16390, orders: UInt32 = 16398, orderItems: UInt32 = 16405, products: UInt32 = 16385
    static let payments: UInt32 = 16450, events: UInt32 = 16412, dailyRevenue: UInt32 = 16420, sessions: UInt32 = 16431
    static let funnel: UInt32 = 16440

    static func r(_ schema: String, _ name: String, _ access: Resource.Access = .read) -> Resource {
        Resource(schema: schema, name: name, access: access)
    }

    static func p(_ type: UInt32, _ value: Value, quoted: Bool = true, cast: String = "") -> ParamSpec {
        ParamSpec(type: type, value: value, quoted: quoted, cast: cast)
    }

    static func c(_ name: String, _ type: UInt32, _ table: UInt32 = 0, _ attnum: UInt16 = 0, _ value: Value, mask: String? = nil) -> ColumnSpec {
        ColumnSpec(name: name, type: type, table: table, attnum: attnum, value: value, mask: mask)
    }

    static let timeout = ("57014", "canceling statement due to statement timeout")
    static let serialization = ("40001", "could not serialize access due to concurrent update")
    static let badInput = ("22P02", "invalid input syntax for type bigint: \"\"")
    static let lockTimeout = ("55P03", "canceling statement due to lock timeout")

    static let limits: Value = .choice(["10", "20", "25", "50", "100"])
    static let limitParam = ParamSpec(type: PGType.int8, value: limits, quoted: false, limit: true)

    static let shapes: [StatementShape] = [
        // MARK: analytics reads
        StatementShape("revenue-by-region", .readAnalytics,
            "SELECT region, sum(revenue) AS revenue, sum(orders) AS orders FROM analytics.daily_revenue WHERE day >= ? AND day < ? GROUP BY region ORDER BY revenue DESC",
            params: [p(PGType.date, .daysAgo(7...30)), p(PGType.date, .daysAgo(0...6))],
            kinds: ["select"], resources: [r("analytics", "daily_revenue")], functions: ["sum"],
            result: .rows([c("region", PGType.text, 0, 0, .ordered(Vocabulary.regions)),
                           c("revenue", PGType.numeric, 0, 0, .cents(1_000_000...90_000_000)),
                           c("orders", PGType.numeric, 0, 0, .int(200...40_000))], 3...8, sort: desc(1)),
            errors: [timeout]),
        StatementShape("events-by-type", .readAnalytics,
            "SELECT event_type, count(*) AS n FROM analytics.events WHERE occurred_at >= now() - ? AND country = ? GROUP BY event_type ORDER BY n DESC LIMIT ?",
            params: [p(PGType.interval, .interval, cast: "::interval"), p(PGType.text, .choice(Vocabulary.countries)), limitParam],
            kinds: ["select"], resources: [r("analytics", "events")], functions: ["count", "now"],
            result: .rows([c("event_type", PGType.text, Catalog.events, 4, .ordered(Vocabulary.distinctEventTypes)),
                           c("n", PGType.int8, 0, 0, .int(10...2_000_000))], 3...9, sort: desc(1)),
            errors: [timeout]),
        StatementShape("sessions-by-device", .readAnalytics,
            "SELECT s.device, count(*) AS sessions, round(avg(s.duration_s)) AS avg_duration_s FROM analytics.sessions s WHERE s.started_at >= ? GROUP BY s.device ORDER BY sessions DESC",
            params: [p(PGType.date, .daysAgo(1...14))],
            kinds: ["select"], resources: [r("analytics", "sessions")], functions: ["count", "avg", "round"],
            result: .rows([c("device", PGType.text, Catalog.sessions, 5, .ordered(["desktop", "mobile", "tablet"])),
                           c("sessions", PGType.int8, 0, 0, .int(1_000...900_000)),
                           c("avg_duration_s", PGType.numeric, 0, 0, .int(20...900))], 2...3, sort: desc(1))),
        StatementShape("user-recent-events", .readAnalytics,
            "SELECT occurred_at, event_type, page, properties FROM analytics.events WHERE user_id = ? ORDER BY occurred_at DESC LIMIT ?",
            params: [p(PGType.int8, .id(1_000...250_000), quoted: false), limitParam],
            kinds: ["select"], resources: [r("analytics", "events")],
            result: .rows([c("occurred_at", PGType.timestamptz, Catalog.events, 2, .recent(seconds: 604_800)),
                           c("event_type", PGType.text, Catalog.events, 4, .choice(Vocabulary.eventTypes)),
                           c("page", PGType.text, Catalog.events, 5, .choice(Vocabulary.pages)),
                           c("properties", PGType.jsonb, Catalog.events, 7, .orNull(0.3, .jsonProps))], 1...50, sort: desc(0, numeric: false))),
        StatementShape("funnel", .readAnalytics,
            "SELECT step, users, round(conversion * ?, ?) AS pct FROM analytics.funnel_steps WHERE day = ? ORDER BY users DESC",
            params: [p(PGType.int4, .fixed("100"), quoted: false), p(PGType.int4, .fixed("1"), quoted: false), p(PGType.date, .daysAgo(1...7))],
            kinds: ["select"], resources: [r("analytics", "funnel_steps")], functions: ["round"],
            result: .rows([c("step", PGType.text, Catalog.funnel, 2, .ordered(Vocabulary.funnelSteps)),
                           c("users", PGType.int8, Catalog.funnel, 3, .int(100...500_000)),
                           c("pct", PGType.numeric, 0, 0, .cents(50...10_000))], 6...6, sort: desc(1))),
        StatementShape("signups-by-source", .readAnalytics,
            "SELECT properties->>? AS source, count(DISTINCT user_id) AS signups FROM analytics.events WHERE event_type = ? AND occurred_at BETWEEN ? AND ? GROUP BY 1 ORDER BY 2 DESC",
            params: [p(PGType.text, .fixed("utm_source")), p(PGType.text, .fixed("signup")), p(PGType.timestamptz, .recent(seconds: 2_592_000)), p(PGType.timestamptz, .recent(seconds: 86_400))],
            kinds: ["select"], resources: [r("analytics", "events")], functions: ["count"],
            result: .rows([c("source", PGType.text, 0, 0, .ordered(Vocabulary.utmSources)),
                           c("signups", PGType.int8, 0, 0, .int(5...40_000))], 3...6, sort: desc(1)),
            errors: [timeout]),
        StatementShape("export-events", .readAnalytics,
            "SELECT id, occurred_at, user_id, event_type, page, country FROM analytics.events WHERE occurred_at >= ? ORDER BY id",
            params: [p(PGType.timestamptz, .recent(seconds: 3_600))],
            kinds: ["select"], resources: [r("analytics", "events")],
            result: .rows([c("id", PGType.int8, Catalog.events, 1, .id(90_000_000...99_000_000)),
                           c("occurred_at", PGType.timestamptz, Catalog.events, 2, .recent(seconds: 3_600)),
                           c("user_id", PGType.int8, Catalog.events, 3, .id(1_000...250_000)),
                           c("event_type", PGType.text, Catalog.events, 4, .choice(Vocabulary.eventTypes)),
                           c("page", PGType.text, Catalog.events, 5, .choice(Vocabulary.pages)),
                           c("country", PGType.text, Catalog.events, 6, .choice(Vocabulary.countries))], 120...900, sort: asc(0)),
            weight: 0.08),

        // MARK: reads with personal or payment data
        StatementShape("top-customers-cte", .readPII,
            "WITH recent AS (SELECT customer_id, sum(total) AS spend FROM public.orders WHERE created_at >= ? GROUP BY customer_id) SELECT c.name, c.email, c.phone, r.spend FROM recent r JOIN public.customers c ON c.id = r.customer_id ORDER BY r.spend DESC LIMIT ?",
            params: [p(PGType.date, .daysAgo(7...31)), limitParam],
            kinds: ["select"], resources: [r("public", "orders"), r("public", "customers")], functions: ["sum"],
            result: .rows([c("name", PGType.text, Catalog.customers, 2, .personName),
                           c("email", PGType.text, Catalog.customers, 3, .maskedEmail, mask: "email"),
                           c("phone", PGType.text, Catalog.customers, 4, .orNull(0.15, .maskedPhone), mask: "column:*.phone"),
                           c("spend", PGType.numeric, 0, 0, .cents(5_000...2_500_000))], 5...50, sort: desc(3)),
            errors: [timeout]),
        StatementShape("active-users-join", .readPII,
            "SELECT c.id, c.name, c.email, count(e.id) AS events FROM analytics.events e JOIN public.customers c ON c.id = e.user_id WHERE e.occurred_at >= ? AND e.event_type = ? GROUP BY c.id, c.name, c.email ORDER BY events DESC LIMIT ?",
            params: [p(PGType.timestamptz, .recent(seconds: 604_800)), p(PGType.text, .choice(Vocabulary.eventTypes)), limitParam],
            kinds: ["select"], resources: [r("analytics", "events"), r("public", "customers")], functions: ["count"],
            result: .rows([c("id", PGType.int8, Catalog.customers, 1, .id(1_000...250_000)),
                           c("name", PGType.text, Catalog.customers, 2, .personName),
                           c("email", PGType.text, Catalog.customers, 3, .maskedEmail, mask: "email"),
                           c("events", PGType.int8, 0, 0, .int(3...4_000))], 1...50, sort: desc(3)),
            errors: [timeout]),
        StatementShape("order-by-id", .readPII,
            "SELECT o.id, o.status, o.total, o.currency, o.created_at, c.name, c.email FROM public.orders o JOIN public.customers c ON c.id = o.customer_id WHERE o.id = ?",
            params: [p(PGType.int8, .id(4_000_000...4_900_000), quoted: false)],
            kinds: ["select"], resources: [r("public", "orders"), r("public", "customers")],
            result: .rows([c("id", PGType.int8, Catalog.orders, 1, .id(4_000_000...4_900_000)),
                           c("status", PGType.text, Catalog.orders, 3, .choice(Vocabulary.orderStatuses)),
                           c("total", PGType.numeric, Catalog.orders, 4, .cents(999...180_000)),
                           c("currency", PGType.text, Catalog.orders, 5, .choice(Vocabulary.currencies)),
                           c("created_at", PGType.timestamptz, Catalog.orders, 6, .recent(seconds: 2_592_000)),
                           c("name", PGType.text, Catalog.customers, 2, .personName),
                           c("email", PGType.text, Catalog.customers, 3, .maskedEmail, mask: "email")], 1...1)),
        StatementShape("payments-for-order", .readPII,
            "SELECT id, card_number, amount, currency, status, paid_at FROM public.payments WHERE order_id = ? ORDER BY paid_at",
            params: [p(PGType.int8, .id(4_000_000...4_900_000), quoted: false)],
            kinds: ["select"], resources: [r("public", "payments")],
            result: .rows([c("id", PGType.int8, Catalog.payments, 1, .id(7_000_000...7_999_999)),
                           c("card_number", PGType.text, Catalog.payments, 3, .maskedCard, mask: "credit_card"),
                           c("amount", PGType.numeric, Catalog.payments, 4, .cents(999...180_000)),
                           c("currency", PGType.text, Catalog.payments, 5, .choice(Vocabulary.currencies)),
                           c("status", PGType.text, Catalog.payments, 6, .choice(Vocabulary.paymentStatuses)),
                           c("paid_at", PGType.timestamptz, Catalog.payments, 7, .orNull(0.1, .recent(seconds: 2_592_000)))], 1...3, sort: asc(5, numeric: false))),
        StatementShape("failed-payments", .readPII,
            "SELECT p.order_id, p.card_number, p.amount, p.currency, p.paid_at, c.email FROM public.payments p JOIN public.orders o ON o.id = p.order_id JOIN public.customers c ON c.id = o.customer_id WHERE p.status = ? AND p.paid_at > now() - ? ORDER BY p.paid_at DESC",
            params: [p(PGType.text, .fixed("failed")), p(PGType.interval, .interval, cast: "::interval")],
            kinds: ["select"], resources: [r("public", "payments"), r("public", "orders"), r("public", "customers")], functions: ["now"],
            result: .rows([c("order_id", PGType.int8, Catalog.payments, 2, .id(4_000_000...4_900_000)),
                           c("card_number", PGType.text, Catalog.payments, 3, .maskedCard, mask: "credit_card"),
                           c("amount", PGType.numeric, Catalog.payments, 4, .cents(999...180_000)),
                           c("currency", PGType.text, Catalog.payments, 5, .choice(Vocabulary.currencies)),
                           c("paid_at", PGType.timestamptz, Catalog.payments, 7, .recent(seconds: 86_400)),
                           c("email", PGType.text, Catalog.customers, 3, .maskedEmail, mask: "email")], 1...40, sort: desc(4, numeric: false)),
            errors: [timeout]),
        StatementShape("customer-search", .readPII,
            "SELECT id, name, email, phone, country, tier, created_at FROM public.customers WHERE name ILIKE ? ORDER BY created_at DESC LIMIT ?",
            params: [p(PGType.text, .namePattern), limitParam],
            kinds: ["select"], resources: [r("public", "customers")],
            result: .rows([c("id", PGType.int8, Catalog.customers, 1, .id(1_000...250_000)),
                           c("name", PGType.text, Catalog.customers, 2, .personName),
                           c("email", PGType.text, Catalog.customers, 3, .maskedEmail, mask: "email"),
                           c("phone", PGType.text, Catalog.customers, 4, .orNull(0.15, .maskedPhone), mask: "column:*.phone"),
                           c("country", PGType.text, Catalog.customers, 5, .choice(Vocabulary.countries)),
                           c("tier", PGType.text, Catalog.customers, 7, .choice(Vocabulary.tiers)),
                           c("created_at", PGType.timestamptz, Catalog.customers, 6, .recent(seconds: 63_072_000))], 1...25, sort: desc(6, numeric: false))),

        // MARK: operational reads
        StatementShape("order-items", .readOps,
            "SELECT p.sku, p.name, oi.quantity, oi.unit_price FROM public.order_items oi JOIN public.products p ON p.id = oi.product_id WHERE oi.order_id = ? ORDER BY p.sku",
            params: [p(PGType.int8, .id(4_000_000...4_900_000), quoted: false)],
            kinds: ["select"], resources: [r("public", "order_items"), r("public", "products")],
            result: .rows([c("sku", PGType.text, Catalog.products, 2, .sku),
                           c("name", PGType.text, Catalog.products, 3, .productName),
                           c("quantity", PGType.int4, Catalog.orderItems, 3, .int(1...5)),
                           c("unit_price", PGType.numeric, Catalog.orderItems, 4, .cents(999...33_000))], 1...8, sort: asc(0, numeric: false))),
        StatementShape("pending-orders", .readOps,
            "SELECT id, customer_id, total, currency, created_at FROM public.orders WHERE status = ? AND created_at < now() - ? ORDER BY created_at LIMIT ?",
            params: [p(PGType.text, .fixed("pending")), p(PGType.interval, .interval, cast: "::interval"), limitParam],
            kinds: ["select"], resources: [r("public", "orders")], functions: ["now"],
            result: .rows([c("id", PGType.int8, Catalog.orders, 1, .id(4_000_000...4_900_000)),
                           c("customer_id", PGType.int8, Catalog.orders, 2, .id(1_000...250_000)),
                           c("total", PGType.numeric, Catalog.orders, 4, .cents(999...180_000)),
                           c("currency", PGType.text, Catalog.orders, 5, .choice(Vocabulary.currencies)),
                           c("created_at", PGType.timestamptz, Catalog.orders, 6, .recent(seconds: 604_800))], 1...50, sort: asc(4, numeric: false)),
            errors: [timeout]),
        StatementShape("low-stock", .readOps,
            "SELECT sku, name, stock FROM public.products WHERE stock < ? ORDER BY stock",
            params: [p(PGType.int4, .choice(["5", "10", "20"]), quoted: false)],
            kinds: ["select"], resources: [r("public", "products")],
            result: .rows([c("sku", PGType.text, Catalog.products, 2, .sku),
                           c("name", PGType.text, Catalog.products, 3, .productName),
                           c("stock", PGType.int4, Catalog.products, 5, .int(0...19))], 1...12, sort: asc(2))),
        StatementShape("orders-per-day", .readOps,
            "SELECT created_at::date AS day, count(*) AS orders, sum(total) AS revenue FROM public.orders WHERE created_at >= ? GROUP BY 1 ORDER BY 1",
            params: [p(PGType.date, .daysAgo(7...30))],
            kinds: ["select"], resources: [r("public", "orders")], functions: ["count", "sum"],
            result: .rows([c("day", PGType.date, 0, 0, .days),
                           c("orders", PGType.int8, 0, 0, .int(300...9_000)),
                           c("revenue", PGType.numeric, 0, 0, .cents(1_000_000...60_000_000))], 7...30, sort: asc(0, numeric: false)),
            errors: [timeout]),
        StatementShape("count-orders", .readOps,
            "SELECT count(*) FROM public.orders WHERE status = ?",
            params: [p(PGType.text, .choice(Vocabulary.orderStatuses))],
            kinds: ["select"], resources: [r("public", "orders")], functions: ["count"],
            result: .rows([c("count", PGType.int8, 0, 0, .int(0...120_000))], 1...1)),

        // MARK: writes (bound parameters through the extended protocol)
        StatementShape("mark-shipped", .write,
            "UPDATE public.orders SET status = ?, updated_at = now() WHERE id = ? AND status = ?",
            params: [p(PGType.text, .fixed("shipped")), p(PGType.int8, .id(4_000_000...4_900_000), quoted: false), p(PGType.text, .fixed("paid"))],
            kinds: ["update"], resources: [r("public", "orders", .write)], functions: ["now"],
            result: .affected("UPDATE", 0...1), errors: [serialization, lockTimeout]),
        StatementShape("insert-order", .write,
            "INSERT INTO public.orders (customer_id, status, total, currency) VALUES (?, ?, ?, ?) RETURNING id, created_at",
            params: [p(PGType.int8, .id(1_000...250_000), quoted: false), p(PGType.text, .fixed("pending")),
                     p(PGType.numeric, .cents(999...180_000), quoted: false), p(PGType.text, .choice(Vocabulary.currencies))],
            kinds: ["insert"], resources: [r("public", "orders", .write)],
            result: .returning("INSERT 0 1", [c("id", PGType.int8, Catalog.orders, 1, .id(4_900_000...4_999_999)),
                                              c("created_at", PGType.timestamptz, Catalog.orders, 6, .recent(seconds: 1))]),
            errors: [("23503", "insert or update on table \"orders\" violates foreign key constraint \"orders_customer_id_fkey\"")]),
        StatementShape("insert-order-item", .write,
            "INSERT INTO public.order_items (order_id, product_id, quantity, unit_price) VALUES (?, ?, ?, ?)",
            params: [p(PGType.int8, .id(4_900_000...4_999_999), quoted: false), p(PGType.int8, .id(1...12), quoted: false),
                     p(PGType.int4, .int(1...4), quoted: false), p(PGType.numeric, .cents(999...33_000), quoted: false)],
            kinds: ["insert"], resources: [r("public", "order_items", .write)],
            result: .affected("INSERT 0", 1...1),
            errors: [("23505", "duplicate key value violates unique constraint \"order_items_pkey\"")]),
        StatementShape("adjust-stock", .write,
            "UPDATE public.products SET stock = stock - ? WHERE id = ? AND stock >= ?",
            params: [p(PGType.int4, .int(1...3), quoted: false), p(PGType.int8, .id(1...12), quoted: false), p(PGType.int4, .int(1...3), quoted: false)],
            kinds: ["update"], resources: [r("public", "products", .write)],
            result: .affected("UPDATE", 0...1), errors: [serialization]),
        StatementShape("track-event", .write,
            "INSERT INTO analytics.events (occurred_at, user_id, event_type, page, properties) VALUES (?, ?, ?, ?, ?)",
            params: [p(PGType.timestamptz, .recent(seconds: 5)), p(PGType.int8, .id(1_000...250_000), quoted: false),
                     p(PGType.text, .choice(Vocabulary.eventTypes)), p(PGType.text, .choice(Vocabulary.pages)), p(PGType.jsonb, .jsonProps)],
            kinds: ["insert"], resources: [r("analytics", "events", .write)],
            result: .affected("INSERT 0", 1...1)),
        StatementShape("refund-order", .write,
            "UPDATE public.payments SET status = ?, refunded_at = now() WHERE order_id = ? AND status = ?",
            params: [p(PGType.text, .fixed("refunded")), p(PGType.int8, .id(4_000_000...4_900_000), quoted: false), p(PGType.text, .fixed("captured"))],
            kinds: ["update"], resources: [r("public", "payments", .write)], functions: ["now"],
            result: .affected("UPDATE", 0...2), errors: [lockTimeout]),

        // MARK: destructive and DDL
        StatementShape("delete-order-item", .destructive,
            "DELETE FROM public.order_items WHERE order_id = ? AND product_id = ?",
            params: [p(PGType.int8, .id(4_000_000...4_900_000), quoted: false), p(PGType.int8, .id(1...12), quoted: false)],
            kinds: ["delete"], resources: [r("public", "order_items", .write)],
            result: .affected("DELETE", 0...1)),
        StatementShape("purge-old-customers", .destructive,
            "DELETE FROM public.customers WHERE created_at < ? AND tier = ?",
            params: [p(PGType.date, .daysAgo(700...1500)), p(PGType.text, .fixed("free"))],
            kinds: ["delete"], resources: [r("public", "customers", .write)],
            result: .affected("DELETE", 100...9_000)),
        StatementShape("truncate-sessions", .destructive,
            "TRUNCATE analytics.sessions",
            kinds: ["truncate"], resources: [r("analytics", "sessions", .write)], result: .tag("TRUNCATE TABLE")),
        StatementShape("drop-temp-export", .ddl,
            "DROP TABLE analytics.tmp_export_20261119",
            kinds: ["drop"], resources: [r("analytics", "tmp_export_20261119", .write)], result: .tag("DROP TABLE")),
        StatementShape("create-index", .ddl,
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_user_occurred_idx ON analytics.events (user_id, occurred_at)",
            kinds: ["create"], resources: [r("analytics", "events", .write)], result: .tag("CREATE INDEX")),
        StatementShape("add-column", .ddl,
            "ALTER TABLE public.customers ADD COLUMN marketing_opt_in boolean DEFAULT ?",
            params: [p(PGType.bool, .fixed("false"), quoted: false)],
            kinds: ["alter"], resources: [r("public", "customers", .write)], result: .tag("ALTER TABLE")),
        StatementShape("grant-select", .ddl,
            "GRANT SELECT ON public.payments TO reporting",
            kinds: ["grant"], resources: [r("public", "payments", .write)], result: .tag("GRANT")),

        // MARK: session control and catalog
        StatementShape("set-timeout", .session, "SET statement_timeout = ?",
            params: [p(PGType.text, .choice(["5s", "30s", "60s"]))], kinds: ["set"], result: .tag("SET")),
        StatementShape("set-search-path", .session, "SET search_path TO analytics, public",
            kinds: ["set"], result: .tag("SET")),
        StatementShape("show-version", .session, "SHOW server_version",
            kinds: ["show"], result: .rows([c("server_version", PGType.text, 0, 0, .fixed("15.18 (Debian 15.18-0+deb12u1)"))], 1...1)),
        StatementShape("whoami", .session, "SELECT current_user, current_database(), version()",
            kinds: ["select"], functions: ["current_database", "version"],
            result: .rows([c("current_user", PGType.name, 0, 0, .choice(["copilot_ro", "oncall_rw"])),
                           c("current_database", PGType.name, 0, 0, .choice(["analytics", "orders"])),
                           c("version", PGType.text, 0, 0, .fixed("PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit"))], 1...1)),
        StatementShape("list-tables", .catalog,
            "SELECT n.nspname AS schema, c.relname AS name, pg_catalog.pg_size_pretty(pg_catalog.pg_table_size(c.oid)) AS size FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = ? AND n.nspname = ? ORDER BY 1, 2",
            params: [p(PGType.text, .fixed("r")), p(PGType.name, .choice(["analytics", "public"]))],
            kinds: ["select"], resources: [r("pg_catalog", "pg_class"), r("pg_catalog", "pg_namespace")],
            functions: ["pg_catalog.pg_size_pretty", "pg_catalog.pg_table_size"],
            result: .rows([c("schema", PGType.name, 0, 0, .choice(["analytics", "public"])),
                           c("name", PGType.name, 0, 0, .ordered(["customers", "daily_revenue", "events", "funnel_steps", "order_items", "orders", "payments", "products", "sessions"])),
                           c("size", PGType.text, 0, 0, .choice(["16 kB", "8192 bytes", "412 MB", "1873 MB", "96 MB", "33 GB"]))], 4...5)),
        StatementShape("describe-columns", .catalog,
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            params: [p(PGType.name, .choice(["analytics", "public"])), p(PGType.name, .choice(["events", "orders", "customers", "payments"]))],
            kinds: ["select"], resources: [r("information_schema", "columns")],
            result: .rows([c("column_name", PGType.name, 0, 0, .ordered(["id", "created_at", "status", "total", "user_id", "event_type", "email", "country", "updated_at"])),
                           c("data_type", PGType.text, 0, 0, .choice(["bigint", "text", "numeric", "timestamp with time zone", "jsonb"])),
                           c("is_nullable", PGType.text, 0, 0, .choice(["YES", "NO"]))], 5...9)),

        // MARK: mistakes (the database answers with an error)
        StatementShape("wrong-table", .mistake,
            "SELECT day, sum(revenue) FROM analytics.revenue_daily WHERE day >= ? GROUP BY day",
            params: [p(PGType.date, .daysAgo(7...30))],
            kinds: ["select"], resources: [r("analytics", "revenue_daily")], functions: ["sum"],
            result: .rows([], 0...0), errors: [("42P01", "relation \"analytics.revenue_daily\" does not exist")], alwaysFails: true),
        StatementShape("wrong-column", .mistake,
            "SELECT id, total_amount FROM public.orders WHERE created_at >= ? ORDER BY total_amount DESC LIMIT ?",
            params: [p(PGType.date, .daysAgo(1...7)), limitParam],
            kinds: ["select"], resources: [r("public", "orders")],
            result: .rows([], 0...0), errors: [("42703", "column \"total_amount\" does not exist")], alwaysFails: true),
    ]

    static func desc(_ column: Int, numeric: Bool = true) -> SortSpec { SortSpec(column: column, descending: true, numeric: numeric) }
    static func asc(_ column: Int, numeric: Bool = true) -> SortSpec { SortSpec(column: column, descending: false, numeric: numeric) }

    static let byClass: [StatementClass: [Int]] = {
        var d: [StatementClass: [Int]] = [:]
        for (i, s) in shapes.enumerated() { d[s.klass, default: []].append(i) }
        return d
    }()

    static let weightsByClass: [StatementClass: [Double]] = byClass.mapValues { $0.map { shapes[$0].weight } }

    static let begin = StatementShape("begin", .session, "BEGIN", kinds: ["begin"], result: .tag("BEGIN"))
    static let commit = StatementShape("commit", .session, "COMMIT", kinds: ["commit"], result: .tag("COMMIT"))
    static let rollback = StatementShape("rollback", .session, "ROLLBACK", kinds: ["rollback"], result: .tag("ROLLBACK"))
}
