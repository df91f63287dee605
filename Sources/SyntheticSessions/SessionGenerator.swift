import CaptureFormat

/// How long a generated session is.
public enum SessionLength: Sendable, Equatable {
    /// Exactly this many events, session start and end included (at least 2). The
    /// last exchange is cut short if it does not fit, as when a client disconnects.
    case events(Int)
    /// This many exchanges (a transaction's BEGIN and COMMIT count as exchanges).
    case exchanges(Int)
}

/// Generates one realistic session, lazily: the header at once, then events one
/// at a time, so a million-event session never sits in memory. The same seed,
/// start time, profile and length always give the same session.
///
///     var g = SessionGenerator(seed: 42, start: Civil.micros(year: 2026, month: 11, day: 20, hour: 9))
///     let header = g.header
///     while let event = g.next() { try writer.append(event) }
public struct SessionGenerator: Sequence, IteratorProtocol, Sendable {
    public let header: SessionHeader
    public let profile: SessionProfile
    public let seed: UInt64
    let length: SessionLength
    let persona: Persona
    let policy: SyntheticPolicy

    var rng: SyntheticRandom
    let startMicros: Int64
    var now: Int64
    var queue: [Event] = []
    var queueIndex = 0
    /// Events created so far (returned or queued).
    var produced = 0
    var exchanges = 0
    var nextExchangeID: UInt64 = 1
    var started = false
    var ending = false
    var finished = false
    var endReason = "client-terminate"
    var endDetail = ""

    // Postgres state.
    var script: [StatementShape] = []
    var inTransaction = false
    var transactionFailed = false
    var preparedCount = 0
    var prompt: (id: String, trace: String, left: Int, fresh: Bool, text: String)?
    // Kubernetes state.
    var k8sSession = ""
    var discovered = false

    /// The records cap: rows past this are cut (counted and hashed, not stored).
    public static let rowCap = 50
    /// The records cap for HTTP bodies.
    public static let bodyCap = 8 * 1024

    /// - Parameters:
    ///   - seed: any 64-bit value; the session is a pure function of the arguments.
    ///   - start: session start, microseconds since the Unix epoch (UTC).
    ///   - profile: who and what; nil picks one from the mixed-corpus distribution.
    ///   - length: how many events or exchanges.
    ///   - proxyID: the gate instance named in the header.
    public init(seed: UInt64, start: Int64, profile: SessionProfile? = nil, length: SessionLength = .exchanges(40),
                proxyID: String = "tollgate-eu1-a") {
        var rng = SyntheticRandom(seed: seed)
        let profile = profile ?? SessionProfile.mixed(&rng)
        let persona = Persona.pick(profile, &rng)
        self.seed = seed
        self.profile = profile
        self.persona = persona
        self.policy = SyntheticPolicy.forProfile(profile)
        self.length = length
        startMicros = start
        now = start
        var attributes = [KeyValue("synthetic", "capgen"), KeyValue("seed", String(seed)), KeyValue("profile", profile.rawValue)]
        if profile.isPostgres {
            attributes.append(KeyValue("database", persona.database))
            attributes.append(KeyValue("upstream_user", persona.upstreamUser))
        } else {
            attributes.append(KeyValue("cluster", "eu-prod-1"))
        }
        header = SessionHeader(
            sessionID: rng.uuid(), target: persona.target, protocolName: profile.isPostgres ? "postgres" : "kubernetes",
            subject: persona.subject, groups: persona.groups, issuer: "https://login.example.com/realms/corp",
            proxyID: proxyID, startMicros: start, writer: "capgen (SyntheticSessions)", attributes: attributes)
        self.rng = rng
    }

    // MARK: Iteration

    public mutating func next() -> Event? {
        while true {
            if queueIndex < queue.count {
                let e = queue[queueIndex]
                queueIndex += 1
                return e
            }
            queue.removeAll(keepingCapacity: true)
            queueIndex = 0
            if finished { return nil }
            if !started {
                started = true
                queue.append(make(.sessionStart(sessionStart()), exchange: 0))
                advance(rng.int(3_000...40_000))
                continue
            }
            if ending || budgetExhausted {
                finished = true
                advance(rng.int(200...3_000))
                queue.append(make(.sessionEnd(SessionEnd(reason: endReason, detail: endDetail)), exchange: 0))
                continue
            }
            var out: [Event] = []
            if profile.isPostgres { postgresExchange(into: &out) } else { kubernetesExchange(into: &out) }
            exchanges += 1
            fitBudget(&out)
            queue = out
        }
    }

    public func makeIterator() -> SessionGenerator { self }

    var budgetExhausted: Bool {
        switch length {
        case .events(let n): return produced >= Swift.max(n, 2) - 1
        case .exchanges(let n): return exchanges >= n && script.isEmpty
        }
    }

    /// Cuts an exchange that would overrun an event budget, leaving room for the session end.
    mutating func fitBudget(_ out: inout [Event]) {
        guard case .events(let n) = length else { return }
        let room = Swift.max(n, 2) - 1 - (produced - out.count)
        if out.count > room {
            out.removeLast(out.count - room)
            produced = Swift.max(n, 2) - 1
            ending = true
            endReason = "client-disconnect"
            endDetail = "connection reset by peer"
        }
    }

    // MARK: Time and envelopes

    mutating func advance(_ micros: Int) { now += Int64(Swift.max(1, micros)) }
    mutating func advance(seconds: Double) { advance(Int(seconds * 1_000_000)) }

    mutating func make(_ payload: Payload, exchange: UInt64) -> Event {
        produced += 1
        let mono = UInt64(now - startMicros) * 1000 + UInt64(rng.below(1000))
        return Event(sequence: UInt64(produced), monotonicNanos: mono, wallMicros: now, exchangeID: exchange, payload: payload)
    }

    mutating func clientAddress() -> String {
        "10.20.\(rng.int(0...31)).\(rng.int(2...254)):\(rng.int(32768...60999))"
    }

    mutating func sessionStart() -> SessionStart {
        if profile.isPostgres {
            let tls = TLSInfo(version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", serverName: "\(persona.target).tollgate.example.com")
            return SessionStart(clientAddress: clientAddress(), applicationName: persona.application, tls: tls, parameters: [
                KeyValue("user", persona.subject), KeyValue("database", persona.database),
                KeyValue("application_name", persona.application), KeyValue("client_encoding", "UTF8"),
                KeyValue("DateStyle", "ISO, MDY"), KeyValue("TimeZone", "UTC"),
            ])
        }
        k8sSession = rng.uuid()
        let tls = TLSInfo(version: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256", serverName: "prod-cluster.tollgate.example.com")
        return SessionStart(clientAddress: clientAddress(), applicationName: "kubectl", tls: tls, parameters: [
            KeyValue("user-agent", K8s.userAgent), KeyValue("alpn", "h2"),
        ])
    }

    // MARK: Postgres exchanges

    mutating func nextShape() -> StatementShape {
        if !script.isEmpty { return script.removeFirst() }
        let classes = StatementClass.allCases
        let k = classes[rng.weighted(classes.map { policy.weights[$0] ?? 0 })]
        let candidates = Catalog.byClass[k]!
        let shape = Catalog.shapes[candidates[rng.weighted(Catalog.weightsByClass[k]!)]]
        if k == .write && profile == .ordersOncall && rng.chance(0.7) {
            // A transaction: BEGIN, one to three writes, COMMIT.
            script = [shape]
            for _ in 0..<rng.skewed(0...2) { script.append(Catalog.shapes[rng.pick(Catalog.byClass[.write]!)]) }
            script.append(Catalog.commit)
            return Catalog.begin
        }
        return shape
    }

    mutating func thinkTime(after shape: StatementShape) {
        if inTransaction {
            advance(seconds: rng.logUniform(0.001, 0.04))
        } else if persona.annotates {
            advance(seconds: rng.logUniform(0.15, 6))
        } else {
            advance(seconds: rng.logUniform(0.8, 45))
        }
    }

    mutating func annotation(exchange: UInt64, into out: inout [Event]) {
        guard persona.annotates, rng.chance(0.92) || prompt != nil else { return }
        if prompt == nil || prompt!.left == 0 {
            if prompt != nil { advance(seconds: rng.logUniform(4, 90)) }  // the person reads, then asks again
            prompt = (id: "prm_" + rng.hex(12), trace: rng.hex(32), left: rng.int(1...6), fresh: true, text: rng.pick(Vocabulary.promptTexts))
        }
        var p = prompt!
        p.left -= 1
        let agent = persona.application == "claude-mcp-postgres" ? ("claude-code", "mcp__postgres__query") : ("github-copilot", "postgres.query")
        let a = Annotation(promptID: p.id, traceparent: "00-\(p.trace)-\(rng.hex(16))-01", text: p.fresh ? p.text : "",
                           attributes: [KeyValue("agent", agent.0), KeyValue("tool", agent.1)])
        p.fresh = false
        prompt = p
        out.append(make(.annotation(a), exchange: exchange))
        advance(rng.int(50...900))
    }

    mutating func latency(_ shape: StatementShape) -> Int {
        let seconds: Double
        switch shape.klass {
        case .readAnalytics: seconds = shape.name == "export-events" ? rng.logUniform(0.05, 0.9) : rng.logUniform(0.002, 1.5)
        case .readPII: seconds = rng.logUniform(0.0005, 0.3)
        case .readOps: seconds = rng.logUniform(0.0003, 0.08)
        case .write: seconds = rng.logUniform(0.0004, 0.025)
        case .session: seconds = rng.logUniform(0.00005, 0.0003)
        case .catalog: seconds = rng.logUniform(0.001, 0.015)
        case .ddl: seconds = shape.name == "create-index" ? rng.logUniform(2, 90) : rng.logUniform(0.005, 0.05)
        case .destructive: seconds = rng.logUniform(0.002, 0.4)
        case .mistake: seconds = rng.logUniform(0.0002, 0.001)
        }
        return Int(seconds * 1_000_000)
    }

    mutating func postgresExchange(into out: inout [Event]) {
        let shape = nextShape()
        let id = nextExchangeID
        nextExchangeID += 1
        if shape.name != "begin" && shape.name != "commit" && shape.name != "rollback" { annotation(exchange: id, into: &out) }

        // The request, as the client sent it, with what inspection found.
        let values = shape.params.map { $0.value.make(&rng, now: now) }
        let extended = rng.chance(persona.extendedShare)
        var statementName = ""
        if extended && persona.namesStatements && shape.klass != .session && rng.chance(0.4) {
            preparedCount += 1
            statementName = "S_\(preparedCount)"
        }
        let request = PostgresRequest(
            text: shape.text(simple: !extended, values: values), path: extended ? .extended : .simple,
            statementName: statementName, portalName: "",
            parameters: extended ? zip(shape.params, values).map { Parameter(value: $1, format: 0, typeOID: $0.type) } : [],
            fingerprint: shape.fingerprint, normalized: shape.normalized, statementKinds: shape.kinds,
            resources: shape.resources, functions: shape.functions)
        out.append(make(.request(.postgres(request)), exchange: id))

        // Inspection and policy take tens to hundreds of microseconds.
        advance(rng.int(40...400))
        let decision = policy.decide(shape)
        out.append(make(.decision(decision), exchange: id))

        var forward = decision.action == .allow
        var refusal = ""
        if decision.action == .deny {
            refusal = "tollgate: denied by policy \"\(decision.policy)\" rule \"\(decision.rule)\""
        } else if decision.action == .review {
            forward = approval(exchange: id, approvers: policy.approvers(shape), into: &out, refusal: &refusal)
        }

        if !forward {
            advance(rng.int(20...120))
            let notice = PostgresNotice(severity: "ERROR", sqlState: "42501", message: refusal,
                                        hint: decision.action == .review ? "" : "ask in #data-access for a policy change")
            out.append(make(.response(.postgres(PostgresResponse(error: notice))), exchange: id))
            if inTransaction { transactionFailed = true }
        } else {
            postgresResponse(shape, values: values, exchange: id, into: &out)
        }
        switch shape.name {
        case "begin": inTransaction = true; transactionFailed = false
        case "commit", "rollback": inTransaction = false; transactionFailed = false
        default: break
        }
        if transactionFailed, let last = script.last, last.name == "commit" {
            // After an error the client gives up on the transaction.
            script = [Catalog.rollback]
        }
        thinkTime(after: shape)
    }

    /// Records the approval request and its outcome; returns whether the request goes on.
    mutating func approval(exchange: UInt64, approvers: [String], into out: inout [Event], refusal: inout String,
                           reasons: [String] = Vocabulary.approvalReasons) -> Bool {
        let approvalID = "apr_" + rng.hex(10)
        advance(rng.int(80...300))
        out.append(make(.approval(Approval(state: .requested, approvalID: approvalID, approverGroups: approvers)), exchange: exchange))
        let roll = rng.unit()
        if roll < 0.08 {
            advance(300_000_000 + rng.int(0...2_000))
            out.append(make(.approval(Approval(state: .expired, approvalID: approvalID, reason: "no decision within 5m0s")), exchange: exchange))
            refusal = "tollgate: approval \(approvalID) expired after 5m0s"
            return false
        }
        advance(seconds: rng.logUniform(8, 240))
        let by = rng.pick(Vocabulary.approvers)
        if roll < 0.22 {
            let why = rng.pick(Vocabulary.approvalDenials)
            out.append(make(.approval(Approval(state: .denied, approvalID: approvalID, by: by, reason: why)), exchange: exchange))
            refusal = "tollgate: approval \(approvalID) denied by \(by): \(why)"
            return false
        }
        out.append(make(.approval(Approval(state: .granted, approvalID: approvalID, by: by, reason: rng.pick(reasons))), exchange: exchange))
        advance(rng.int(100...600))
        return true
    }

    mutating func postgresResponse(_ shape: StatementShape, values: [[UInt8]?], exchange: UInt64, into out: inout [Event]) {
        var duration = latency(shape)
        var response = PostgresResponse()
        let fails = shape.alwaysFails || (!shape.errors.isEmpty && rng.chance(0.03)) || (inTransaction && transactionFailed && shape.name != "rollback")
        if fails {
            let err: (String, String)
            if inTransaction && transactionFailed {
                err = ("25P02", "current transaction is aborted, commands ignored until end of transaction block")
            } else {
                err = rng.pick(shape.errors)
            }
            if err.0 == "57014" { duration = 30_000_000 + rng.int(0...4_000) }
            var notice = PostgresNotice(severity: "ERROR", sqlState: err.0, message: err.1)
            if err.0 == "42P01" { notice.hint = "Perhaps you meant to reference the table \"analytics.daily_revenue\"." }
            if err.0 == "42703" { notice.hint = "Perhaps you meant to reference the column \"orders.total\"." }
            response.error = notice
            if inTransaction { transactionFailed = true }
            advance(duration)
            response.durationMicros = UInt64(duration)
            out.append(make(.response(.postgres(response)), exchange: exchange))
            return
        }
        var masked: [String: (detector: String, count: UInt64)] = [:]
        switch shape.result {
        case .rows(let columns, let range, let sort):
            var total = rng.skewed(range, power: 2)
            // A LIMIT bounds the rows; GROUP BY keys bound them to the distinct keys.
            for (spec, value) in zip(shape.params, values) where spec.limit {
                if let v = value, let n = Int(String(decoding: v, as: UTF8.self)) { total = Swift.min(total, n) }
            }
            for col in columns { if case .ordered(let keys) = col.value { total = Swift.min(total, keys.count) } }
            let offset = rng.below(16)
            response.columns = columns.map { Column(name: $0.name, typeOID: $0.type, tableOID: $0.table, attributeNumber: $0.attnum) }
            // Rows past the cap: hashed in packed-row encoding, in order; their value bytes counted.
            var rows: [Row] = []
            rows.reserveCapacity(total)
            for i in 0..<total {
                var row: Row = []
                row.reserveCapacity(columns.count)
                for col in columns {
                    let v = col.value.make(&rng, now: now, row: i, offset: offset)
                    if let mask = col.mask, v != nil { masked[col.name, default: (mask, 0)].count += 1 }
                    row.append(v)
                }
                rows.append(row)
            }
            if let sort { rows.sort { SessionGenerator.ordered($0[sort.column], $1[sort.column], sort) } }
            var recorder = RowRecorder(maxRows: Self.rowCap)
            for row in rows { recorder.add(row) }
            response.packedRows = recorder.packedRows
            response.cut = recorder.cut
            response.rowCount = UInt64(total)
            response.commandTag = shape.kinds == ["show"] ? "SHOW" : "SELECT \(total)"
        case .affected(let tag, let range):
            let n = rng.skewed(range, power: 1)
            response.rowCount = UInt64(n)
            response.commandTag = "\(tag) \(n)"
        case .returning(let tag, let columns):
            response.columns = columns.map { Column(name: $0.name, typeOID: $0.type, tableOID: $0.table, attributeNumber: $0.attnum) }
            response.rows = [columns.map { $0.value.make(&rng, now: now) }]
            response.rowCount = 1
            response.commandTag = tag
        case .tag(let tag):
            response.commandTag = tag
            if shape.name == "create-index" && rng.chance(0.3) {
                duration = rng.int(300...2_000)
                response.notices = [PostgresNotice(severity: "NOTICE", sqlState: "42P07", message: "relation \"events_user_occurred_idx\" already exists, skipping")]
            }
        }
        advance(duration)
        response.durationMicros = UInt64(duration)
        out.append(make(.response(.postgres(response)), exchange: exchange))
        if !masked.isEmpty {
            advance(rng.int(10...60))
            let entries = masked.sorted { $0.key < $1.key }.map { MaskCount(detector: $0.value.detector, count: $0.value.count, location: $0.key) }
            out.append(make(.maskSummary(MaskSummary(entries: entries)), exchange: exchange))
        }
    }

    /// ORDER BY on generated values (NULLs last, as PostgreSQL sorts them ascending).
    static func ordered(_ a: [UInt8]?, _ b: [UInt8]?, _ sort: SortSpec) -> Bool {
        guard let a else { return false }
        guard let b else { return true }
        if sort.numeric {
            let x = Double(String(decoding: a, as: UTF8.self)) ?? 0, y = Double(String(decoding: b, as: UTF8.self)) ?? 0
            return sort.descending ? x > y : x < y
        }
        return sort.descending ? b.lexicographicallyPrecedes(a) : a.lexicographicallyPrecedes(b)
    }
}
