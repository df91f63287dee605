// Word lists for realistic values. Everything sensitive is already masked the
// way the gate's masking would leave it: no clear e-mail, card or phone number
// ever appears in a generated response.

enum Vocabulary {
    static let firstNames = [
        "Alice", "Bob", "Carol", "Dan", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj",
        "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Priya", "Marco", "Aiko", "Chen",
        "Fatima", "Lars", "Ines", "Kwame", "Sofia", "Mateo", "Yuki", "Amara", "Jonas", "Leila", "Tomasz",
        "Hana", "Diego", "Noor", "Elena", "Kofi", "Zara",
    ]
    static let lastNames = [
        "Smith", "Johnson", "Garcia", "Müller", "Nguyen", "Kowalski", "Rossi", "Tanaka", "Okafor", "Silva",
        "Larsen", "Dubois", "Haddad", "Kim", "Patel", "Schmidt", "Novak", "Fischer", "Moreau", "Costa",
        "Andersson", "Mensah", "O'Brien", "Ivanova", "Yilmaz", "Santos", "Bauer", "Hughes", "Lindqvist", "Park",
    ]
    static let emailDomains = ["example.com", "example.org", "mail.example.net", "corp.example.com"]
    static let cardLast4 = ["1111", "4242", "0005", "4444", "1881", "0004", "5100", "8431", "6789", "3222"]
    static let countries = ["DE", "FR", "NL", "US", "GB", "ES", "IT", "PL", "SE", "JP", "BR", "IN", "CA"]
    static let regions = ["emea-west", "emea-central", "emea-north", "na-east", "na-west", "latam", "apac-south", "apac-north"]
    static let currencies = ["EUR", "EUR", "EUR", "USD", "USD", "GBP", "SEK", "PLN"]
    static let orderStatuses = ["pending", "paid", "paid", "paid", "shipped", "shipped", "delivered", "cancelled", "refunded"]
    static let paymentStatuses = ["captured", "captured", "captured", "authorized", "refunded", "failed"]
    static let eventTypes = ["page_view", "page_view", "page_view", "click", "add_to_cart", "checkout_started", "purchase", "search", "signup", "login"]
    static let distinctEventTypes = ["page_view", "click", "search", "add_to_cart", "login", "checkout_started", "signup", "purchase", "logout"]
    static let pages = ["/", "/pricing", "/products", "/products/ssd-2tb", "/cart", "/checkout", "/account", "/docs/getting-started", "/blog/q4-release", "/search"]
    static let devices = ["desktop", "desktop", "mobile", "mobile", "mobile", "tablet"]
    static let tiers = ["free", "free", "standard", "standard", "premium", "enterprise"]
    static let funnelSteps = ["visit", "product_view", "add_to_cart", "checkout_started", "payment_entered", "purchase"]
    static let products: [(sku: String, name: String, cents: Int)] = [
        ("SSD-2TB-NV", "NVMe SSD 2 TB", 14_999), ("KB-MECH-DE", "Mechanical keyboard (DE)", 8_950),
        ("MON-27-4K", "27\" 4K monitor", 32_900), ("USB-C-HUB7", "USB-C hub, 7 ports", 3_999),
        ("CAM-1080", "1080p webcam", 4_590), ("HS-ANC-2", "ANC headset", 17_900), ("MS-ERGO", "Ergonomic mouse", 5_490),
        ("DOCK-TB4", "Thunderbolt 4 dock", 24_900), ("CBL-HDMI-2", "HDMI 2.1 cable, 2 m", 1_299),
        ("RAM-32-D5", "32 GB DDR5 kit", 11_900), ("PSU-750-G", "750 W PSU, gold", 10_990), ("LAMP-LED", "LED desk lamp", 3_450),
    ]
    static let utmSources = ["newsletter", "google", "partner", "direct", "linkedin", "podcast"]
    static let promptTexts = [
        "Which regions grew revenue week over week?",
        "Show me the top customers by spend this month",
        "Why did checkout conversion drop yesterday?",
        "How many signups came from the newsletter campaign?",
        "List pending orders older than a day",
        "Compare mobile and desktop session length",
        "Find orders with failed payments in the last 24 hours",
        "Which products are about to run out of stock?",
        "Summarise last week's purchase funnel",
        "Mark order as shipped and adjust stock",
    ]
    static let approvers = ["dba.oncall@example.com", "dave@example.com", "mei@example.com", "sre.lead@example.com"]
    static let approvalReasons = ["ticket OPS-4821 reviewed", "matches CHG-1193", "ok for this incident (INC-7731)", "approved, low risk", "reviewed the WHERE clause"]
    static let approvalDenials = ["no change ticket", "use the staging database for this", "too broad: add a WHERE clause", "not during the freeze"]
}

/// Generators of column and parameter values, as bytes (PostgreSQL text format).
enum Value: Sendable {
    case id(ClosedRange<Int>)
    case int(ClosedRange<Int>)
    case cents(ClosedRange<Int>)
    case personName
    case maskedEmail
    case maskedPhone
    case maskedCard
    case choice([String])
    /// A timestamp up to this many seconds before the exchange.
    case recent(seconds: Int)
    /// A date up to this many days before the exchange.
    case daysAgo(ClosedRange<Int>)
    case interval
    case uuid
    case sku
    case productName
    case jsonProps
    case ratio
    case namePattern
    indirect case nullable(Double, Value)
    /// Distinct values in turn, one per row (GROUP BY keys); `make` alone picks one.
    case ordered([String])
    /// Consecutive days ending at the exchange, one per row; `make` alone picks one.
    case days
    case fixed(String)

    static func orNull(_ p: Double, _ v: Value) -> Value { .nullable(p, v) }

    /// The value for row `row` of a result whose per-result offset is `offset`.
    func make(_ rng: inout SyntheticRandom, now: Int64, row: Int, offset: Int) -> [UInt8]? {
        switch self {
        case .ordered(let items):
            return Array(items[(offset + row) % items.count].utf8)
        case .sku:
            return Array(Vocabulary.products[(offset + row) % Vocabulary.products.count].sku.utf8)
        case .productName:
            return Array(Vocabulary.products[(offset + row) % Vocabulary.products.count].name.utf8)
        case .days:
            var b = ByteBuilder()
            b.date(Civil(micros: now - Int64(row + 1) * 86_400_000_000))
            return b.bytes
        default:
            return make(&rng, now: now)
        }
    }

    func make(_ rng: inout SyntheticRandom, now: Int64) -> [UInt8]? {
        var b = ByteBuilder()
        switch self {
        case .id(let r), .int(let r):
            b.int(rng.int(r))
        case .cents(let r):
            b.cents(rng.int(r))
        case .personName:
            b.put(rng.pick(Vocabulary.firstNames)); b.byte(32); b.put(rng.pick(Vocabulary.lastNames))
        case .maskedEmail:
            let first = rng.pick(Vocabulary.firstNames).lowercased()
            b.put(String(first.first!)); b.put("****@"); b.put(rng.pick(Vocabulary.emailDomains))
        case .maskedPhone:
            b.put("***-***-"); b.int(rng.below(10_000), width: 4)
        case .maskedCard:
            b.put("****-****-****-"); b.put(rng.pick(Vocabulary.cardLast4))
        case .choice(let items):
            b.put(rng.pick(items))
        case .recent(let seconds):
            b.timestamp(micros: now - Int64(rng.below(seconds)) * 1_000_000 - Int64(rng.below(1_000_000)))
        case .daysAgo(let r):
            let day = (now / 86_400_000_000 - Int64(rng.int(r))) * 86_400_000_000
            b.date(Civil(micros: day))
        case .interval:
            b.put(rng.pick(["1 hour", "6 hours", "24 hours", "7 days", "7 days", "30 days"]))
        case .uuid:
            b.put(rng.uuid())
        case .sku:
            b.put(rng.pick(Vocabulary.products).sku)
        case .productName:
            b.put(rng.pick(Vocabulary.products).name)
        case .jsonProps:
            b.put("{\"utm_source\": \""); b.put(rng.pick(Vocabulary.utmSources))
            b.put("\", \"ab\": \""); b.put(rng.chance(0.5) ? "a" : "b")
            b.put("\", \"device\": \""); b.put(rng.pick(Vocabulary.devices)); b.put("\"}")
        case .ratio:
            b.put("0."); b.int(rng.below(10_000), width: 4)
        case .namePattern:
            b.put("%"); b.put(rng.pick(Vocabulary.lastNames).lowercased()); b.put("%")
        case .nullable(let p, let inner):
            if rng.chance(p) { return nil }
            return inner.make(&rng, now: now)
        case .fixed(let s):
            b.put(s)
        case .ordered(let items):
            b.put(rng.pick(items))
        case .days:
            b.date(Civil(micros: now - Int64(rng.below(30)) * 86_400_000_000))
        }
        return b.bytes
    }
}
