import CaptureFormat
import Foundation
import Masking
import Policy

/// One client session through the gate, whatever its protocol: every exchange takes the same
/// steps here (identify → inspect → decide → hold → forward → mask → record), and an adapter
/// only frames bytes and maps them to the events below. A value type with no I/O and no clock:
/// the adapter performs what the returned actions say (write bytes, open the capture off the
/// event loop, pause reading), which keeps every decision path testable without sockets.
///
/// Confined to one isolation domain (the adapter's event loop): its inspector keeps per-session state.
public struct ExchangeSession {
    public enum Phase: Sendable, Equatable {
        /// Waiting for the adapter to verify the client's identity.
        case identifying
        /// Identified; the capture is being opened off the event loop.
        case opening
        case open
        case ended
    }

    /// What the gate gives each session of a target.
    public struct Settings: Sendable {
        public var target: String
        /// The capture header's protocol name ("postgres", "http", "kubernetes").
        public var protocolName: String
        public var proxyID: String
        /// The capture header's writer ("capture-proxy 1.2.0").
        public var writerName: String
        public var captureDirectory: String
        public var writerOptions: WriterOptions
        public var maxValueBytes: Int
        /// Attributes every capture of the target carries (the upstream's address).
        public var headerAttributes: [KeyValue]
        /// Whether a `review` decision holds the request for an approver; without approvals it is refused.
        public var holds: Bool
        /// Strict: what the adapter forwards waits until its record is durable (`flushBeforeForwarding`).
        public var durability: RecordingDurability
        /// The target's counters and latencies (one instance per target, shared by its sessions).
        public var metrics: ExchangeMetrics?
        /// Where the approvals page reads a session's last exchanges; nil when no page is served.
        public var recent: RecentExchanges?

        public init(target: String, protocolName: String, proxyID: String, writerName: String, captureDirectory: String,
                    writerOptions: WriterOptions = WriterOptions(), maxValueBytes: Int, headerAttributes: [KeyValue] = [], holds: Bool = false,
                    durability: RecordingDurability = .batched, metrics: ExchangeMetrics? = nil, recent: RecentExchanges? = nil) {
            self.target = target; self.protocolName = protocolName; self.proxyID = proxyID; self.writerName = writerName
            self.captureDirectory = captureDirectory; self.writerOptions = writerOptions; self.maxValueBytes = maxValueBytes
            self.headerAttributes = headerAttributes; self.holds = holds; self.durability = durability; self.metrics = metrics
            self.recent = recent
        }
    }

    /// Who the adapter verified, and how the client reached the gate.
    public struct Opening: Sendable {
        public var sessionID: String
        public var subject: String
        public var groups: [String]
        public var issuer: String
        public var clientAddress: String
        public var applicationName: String
        public var tls: TLSInfo?
        /// The client's session parameters as sent (PostgreSQL's startup packet), recorded through the masks.
        public var parameters: [KeyValue]
        public var startMicros: Int64

        public init(sessionID: String = UUID().uuidString.lowercased(), subject: String, groups: [String], issuer: String,
                    clientAddress: String, applicationName: String = "", tls: TLSInfo? = nil, parameters: [KeyValue] = [],
                    startMicros: Int64) {
            self.sessionID = sessionID; self.subject = subject; self.groups = groups; self.issuer = issuer
            self.clientAddress = clientAddress; self.applicationName = applicationName; self.tls = tls
            self.parameters = parameters; self.startMicros = startMicros
        }
    }

    public let settings: Settings
    let policies: PolicyStore
    public private(set) var phase = Phase.identifying
    public private(set) var context: SessionContext?
    var opening: Opening?
    /// What earlier requests changed that later ones depend on (SQL: prepared statements, the search path).
    public private(set) var inspection: (any SessionInspector)?
    /// The policies and masks this session decides with; replaced at the next request after a reload.
    public private(set) var policy: PolicyState?
    /// The session's masks and the secrets pass, for what is recorded.
    public private(set) var recording: RecordingMasks
    var admissions = Admissions()
    var recorder: SessionRecorder?
    /// Events stamped since the last `flush`, handed to the recorder together.
    var staged: [Event] = []
    /// Strict recording: the adapter's held upstream output, by ticket, until the recorder
    /// acknowledges its records (nil: batched recording). See ExchangeSession+WriteAhead.
    var writeAhead: WriteAheadQueue<UInt64>?
    public private(set) var counts = SessionCounts()
    /// The last exchange number given out (0 is the session's own events).
    public private(set) var exchanges: UInt64 = 0
    /// The client's application name as the upstream last reported it: it goes into every annotation.
    public private(set) var applicationName = ""
    public private(set) var pauses = ReadingPauses()
    /// Decided requests not yet released to the adapter, in order: a held request keeps those
    /// behind it waiting, so the upstream sees them in the order the client sent them.
    var outstanding: [Outstanding] = []
    public private(set) var endReason: String?

    public init(settings: Settings, policies: PolicyStore) {
        self.settings = settings
        self.policies = policies
        recording = RecordingMasks(session: nil, maxValueBytes: settings.maxValueBytes)
    }

    // MARK: Setup

    /// The client is identified: the capture to open for it, off the event loop (`CaptureOpening.open`),
    /// then `captureOpened` or `captureFailed`.
    public mutating func identified(_ opening: Opening) -> CaptureOpening {
        precondition(phase == .identifying, "a session is identified once")
        phase = .opening
        self.opening = opening
        applicationName = opening.applicationName
        context = SessionContext(sessionID: opening.sessionID, target: settings.target, subject: opening.subject, groups: opening.groups,
                                 clientAddress: opening.clientAddress, applicationName: opening.applicationName)
        var header = SessionHeader(sessionID: opening.sessionID, target: settings.target, protocolName: settings.protocolName,
                                   subject: opening.subject, groups: opening.groups, issuer: opening.issuer, proxyID: settings.proxyID,
                                   startMicros: opening.startMicros, writer: settings.writerName)
        header.attributes = settings.headerAttributes
        currentPolicy()
        return CaptureOpening(directory: settings.captureDirectory, header: header, options: settings.writerOptions)
    }

    /// The capture is open: the session starts, recorded with its parameters through the masks.
    /// Returns the capture to close at once when the session ended while it was being opened (the
    /// client left, the gate shut down).
    public mutating func captureOpened(_ recorder: SessionRecorder) -> SessionFinish? {
        guard phase == .opening, let opening, let context else {
            return SessionFinish(recorder: recorder, reason: endReason ?? "client-disconnect", counts: counts)
        }
        phase = .open
        self.recorder = recorder
        if settings.durability == .strict { writeAhead = WriteAheadQueue() }
        let policy = currentPolicy()
        inspection = ProtocolInspectors.session(of: policy.pipeline.inspector, protocolName: settings.protocolName,
                                                target: context.target, parameters: opening.parameters)
        record(.sessionStart(SessionStart(clientAddress: opening.clientAddress, applicationName: recording.text(opening.applicationName),
                                          tls: opening.tls,
                                          parameters: opening.parameters.map { KeyValue(recording.text($0.key), recording.text($0.value)) })))
        _ = flush()
        return nil
    }

    /// The capture could not be opened: the session is refused (evidence or nothing).
    public mutating func captureFailed(_ error: CaptureError) -> SessionClosing {
        phase = .ended
        endReason = "recording-failed"
        return SessionClosing(code: .unavailable, message: "the gate cannot record this session; try again later", reason: "recording-failed")
    }

    /// The policies in force: after a reload, the new ones, and the session's masks with them.
    @discardableResult
    public mutating func currentPolicy() -> PolicyState {
        if let policy, policy.generation == policies.generation { return policy }
        let state = policies.current
        policy = state
        if let context {
            recording = RecordingMasks(session: state.pipeline.masking.masker(for: context), maxValueBytes: settings.maxValueBytes)
        }
        return state
    }

    // MARK: Requests

    /// The next exchange number, for a request or for what an adapter records against one.
    public mutating func nextExchange() -> UInt64 {
        exchanges += 1
        return exchanges
    }

    /// Inspects and decides a request without recording it or letting it change the session:
    /// an adapter's early look (PostgreSQL decides a Parse before the server prepares it).
    public mutating func preview(_ request: consuming Request) -> Decision {
        guard phase == .open, let context, let inspection else { return Self.notOpen }
        let inspected = inspection.inspect(request, in: context)
        return admission(inspected).decision
    }

    /// A request arrived: inspected, decided and recorded. The actions say what becomes of it, and
    /// of any request that waited behind a hold: `.forward`, `.refuse`, `.hold`. Behind a hold a
    /// request waits undecided: the held one may change what it means (a search path, a prepared
    /// statement), so it is decided when its turn comes.
    public mutating func request(_ request: consuming Request, exchange: UInt64? = nil) -> [ExchangeAction] {
        let exchange = exchange ?? nextExchange()
        if !outstanding.isEmpty {
            outstanding.append(Outstanding(exchange: exchange, verdict: .waiting(request)))
            return []
        }
        let decided = decide(request, exchange: exchange)
        guard decided.hold == nil else {
            outstanding.append(decided)
            return release()
        }
        // Nothing held (the common case): released at once, without passing through the queue
        // (an `Outstanding` is large: appending, copying and removing it cost per request, issue 18).
        var actions: [ExchangeAction] = []
        emit(decided.verdict, exchange: decided.exchange, into: &actions)
        if pauses.client.contains(.held) { actions.append(contentsOf: resume(.client, .held)) }
        return actions
    }

    mutating func decide(_ request: consuming Request, exchange: UInt64) -> Outstanding {
        guard phase == .open, let context, let inspection else {
            return Outstanding(exchange: exchange, verdict: .refuse(Self.notOpen.reason))
        }
        let arrived = settings.metrics == nil ? nil : ContinuousClock.now
        let inspected = inspection.inspect(request, in: context)
        let admission = admission(inspected)
        let decision = admission.decision
        // A review with nothing to say who approves it cannot be held: it is refused.
        let held = decision.action == .review && settings.holds && admission.approval != nil
        if decision.action == .allow { inspection.forwarded(inspected) }
        // Kept for a held request only: what it changes is remembered once it is approved.
        let heldRequest = held ? inspected : nil
        let admitted = Admitted(exchange: exchange, projections: inspected.projections, rowStreams: inspected.rowStreams)
        if let annotation = admission.annotation { record(.annotation(recording.annotation(annotation, applicationName: applicationName)), exchange: exchange) }
        // The inspected request's last use: moved into the record (a copy retains all it holds).
        var spent = consume inspected
        var recorded = Request.postgres(PostgresRequest(text: ""))
        swap(&recorded, &spent.request)
        record(.request(recording.request(recorded, text: admission.recordedText, textFlags: admission.recordedTextFlags,
                                          carriesSecret: spent.carriesSecret)), exchange: exchange)
        record(.decision(decision), exchange: exchange)
        if let arrived { settings.metrics?.decided(decision.action, in: .now - arrived) }
        settings.recent?.decided(session: context.sessionID, exchange: exchange, text: admission.recordedText, decision: decision)
        switch decision.action {
        case .allow:
            return Outstanding(exchange: exchange, verdict: .forward(admitted))
        case .review where held:
            let hold = Hold(approvalID: UUID().uuidString.lowercased(), exchange: exchange, decision: decision,
                            approval: admission.approval ?? ApprovalRequirement(clauses: []),
                            statement: admission.recordedText, fingerprint: Self.grantKey(heldRequest))
            record(.approval(Approval(state: .requested, approvalID: hold.approvalID, approverGroups: hold.approvers)), exchange: exchange)
            return Outstanding(exchange: exchange, verdict: .forward(admitted), hold: hold, heldRequest: heldRequest)
        case .review:
            return Outstanding(exchange: exchange, verdict: .refuse(
                "tollgate: approval required by policy \"\(decision.policy)\" rule \"\(decision.rule)\"; approvals are not available on this gate"))
        case .deny:
            return Outstanding(exchange: exchange, verdict: .refuse(
                "tollgate: denied by policy \"\(decision.policy)\" rule \"\(decision.rule)\"" + (decision.reason.isEmpty ? "" : ": \(decision.reason)")))
        }
    }

    /// An approver (or the clock) answered a hold: the request is forwarded or refused, and what
    /// waited behind it moves on. Unknown or already answered ids change nothing.
    public mutating func resolve(_ approval: Approval) -> [ExchangeAction] {
        guard let i = outstanding.firstIndex(where: { $0.hold?.approvalID == approval.approvalID }), approval.state != .requested else { return [] }
        let exchange = outstanding[i].exchange
        record(.approval(Approval(state: approval.state, approvalID: approval.approvalID, by: approval.by,
                                  reason: recording.text(approval.reason), grantID: approval.grantID)), exchange: exchange)
        outstanding[i].hold = nil
        if approval.state.runs, let held = outstanding[i].heldRequest { inspection?.forwarded(held) }
        outstanding[i].heldRequest = nil
        if !approval.state.runs {
            let by = approval.by.isEmpty ? "" : " by \(approval.by)"
            // A withdrawal's reason says "withdrawn: why": said once.
            let reason = approval.state == .withdrawn && approval.reason.hasPrefix("withdrawn: ")
                ? String(approval.reason.dropFirst("withdrawn: ".count)) : approval.reason
            let why = reason.isEmpty ? "" : ": \(reason)"
            let outcome = switch approval.state {
            case .expired: "was not approved in time"
            case .withdrawn: "was withdrawn"
            case .abandoned: "was abandoned"
            default: "was denied\(by)"
            }
            outstanding[i].verdict = .refuse("tollgate: approval \(approval.approvalID) \(outcome)\(why)")
        }
        return release()
    }

    /// The held requests still waiting, in order (for the adapter to withdraw on a cancel or disconnect).
    public var holds: [Hold] { outstanding.compactMap(\.hold) }

    /// Releases decided requests from the head of the queue up to the first one still held.
    mutating func release() -> [ExchangeAction] {
        var actions: [ExchangeAction] = []
        while var head = outstanding.first {
            if case .waiting(let request) = head.verdict {
                head = decide(request, exchange: head.exchange)
                outstanding[0] = head
            }
            if let hold = head.hold {
                if !head.announced {
                    outstanding[0].announced = true
                    actions.append(.hold(hold))
                }
                break
            }
            outstanding.removeFirst()
            emit(head.verdict, exchange: head.exchange, into: &actions)
        }
        let held = !outstanding.isEmpty
        if held != pauses.client.contains(.held) {
            actions.append(contentsOf: held ? pause(.client, .held) : resume(.client, .held))
        }
        return actions
    }

    /// A decided request that no hold keeps: forwarded, or refused (and its refusal recorded).
    mutating func emit(_ verdict: Outstanding.Verdict, exchange: UInt64, into actions: inout [ExchangeAction]) {
        switch verdict {
        case .forward(let admitted):
            actions.append(.forward(admitted))
        case .waiting:
            preconditionFailure("decided before it is released")
        case .refuse(let message):
            counts.refused &+= 1
            record(.response(refusalResponse(sqlState: "42501", message: message)), exchange: exchange)
            actions.append(.refuse(exchange: exchange, message: message))
        }
    }

    mutating func admission(_ inspected: InspectedRequest) -> Admission {
        let policy = currentPolicy()
        let key = Admissions.key(inspected.request)
        let inspectionGeneration = inspection?.generation ?? 0
        if let cached = admissions.valid(key, policy: policy.generation, inspection: inspectionGeneration) { return cached }
        let context = self.context ?? SessionContext(sessionID: "", target: settings.target, subject: "", groups: [], clientAddress: "", applicationName: "")
        var ruling = policy.pipeline.policy.ruling(inspected, in: context)
        if ruling.decision.action == .allow, recording.session != nil, let refusal = Self.unmaskable(inspected) {
            ruling = Ruling(decision: refusal)
        }
        // A request whose text is withheld (it carries a credential, or could not be parsed, so its
        // literals are unknown) gives no annotation: the comment scan could read a literal.
        let withheld = inspected.carriesSecret || inspected.statements.contains { $0.parseError != nil }
        let admission = Admission(decision: ruling.decision, approval: ruling.approval, recordedText: recordedText(inspected),
                                  annotation: withheld ? nil : Self.annotation(inspected.request),
                                  policyGeneration: policy.generation, inspectionGeneration: inspectionGeneration)
        admissions.keep(admission, for: key)
        return admission
    }

    /// A response the session's masks could not follow: refused while masks apply.
    static func unmaskable(_ inspected: InspectedRequest) -> Decision? {
        if inspected.rowStreams.contains(where: { $0.format == .binary }) {
            // Binary COPY rows cannot be rewritten field by field: with masks in force they must not pass unread.
            return Decision(action: .deny, policy: "masking", rule: "binary-copy", reason: "binary COPY output cannot be masked; use text or csv format")
        }
        if let reason = inspected.rowStreams.lazy.compactMap(\.unfollowable).first {
            return Decision(action: .deny, policy: "masking", rule: "copy-layout", reason: reason)
        }
        return nil
    }

    static func annotation(_ request: Request) -> Annotation? {
        guard case .postgres(let p) = request else { return nil }
        return SQLCommenter.annotation(in: p.text)
    }

    /// The text as it may be recorded: a request that carries a credential keeps only its
    /// normalized text; one its inspector could not read keeps its text with the literals
    /// withheld; anything a mask or the secrets detectors find is masked.
    /// The flags say what was done to it (format 1.4), so readers need not look for the markers.
    func recordedText(_ inspected: InspectedRequest) -> (text: String, flags: ValueFlags) {
        // An HTTP request's text (what an approver is shown): its method and target, through the masks.
        if case .http(let h) = inspected.request {
            let source = "\(h.method) \(h.target)"
            let text = recording.text(source)
            return (text, text == source ? [] : .masked)
        }
        guard case .postgres(let p) = inspected.request else { return ("", []) }
        if inspected.carriesSecret {
            return (p.normalized.isEmpty || p.normalized == p.text ? "[tollgate: statement text withheld: it carries a credential]" : p.normalized,
                    .withheld)
        }
        let source = inspected.withheldText ?? p.text
        let text = recording.text(source)
        var flags: ValueFlags = inspected.withheldText == nil ? [] : .withheld
        if text != source { flags.insert(.masked) }
        return (text, flags)
    }

    static let notOpen = Decision(action: .deny, policy: "tollgate", rule: "session-not-open", reason: "the session is not open")

    // MARK: Responses and other events

    /// A response ended: recorded with the secrets pass on its diagnostics, with what the session's
    /// masks replaced in it. `rows`: the result rows passed to the client.
    public mutating func responded(_ response: Response, exchange: UInt64, rows: UInt64 = 0, masked: MaskTally? = nil) {
        counts.rows &+= rows
        if let metrics = settings.metrics { metrics.responded(durationMicros: response.durationMicros) }
        if case .postgres(let p) = response, p.error != nil { counts.errors &+= 1 }
        if let recent = settings.recent, let context, case .postgres(let p) = response {
            recent.responded(session: context.sessionID, exchange: exchange, outcome: p.error.map { "\($0.sqlState) \($0.message)" } ?? p.commandTag)
        }
        record(.response(recording.response(response)), exchange: exchange)
        if let masked, !masked.isEmpty {
            record(.maskSummary(MaskSummary(entries: masked.entries.map {
                MaskCount(detector: $0.detector.rawValue, count: UInt64($0.count), location: $0.location.description)
            })), exchange: exchange)
        }
    }

    /// Data streamed within an exchange (COPY, a body): recorded masked and capped.
    public mutating func streamed(_ data: [UInt8], stream: StreamChunk.Stream, exchange: UInt64) {
        let bytes = stream == .stdin ? recording.clientData(data) : recording.value(data)
        record(.streamChunk(StreamChunk(stream: stream, data: bytes)), exchange: exchange)
    }

    /// The upstream's report at login: the session's name from here on, with no annotation of its own.
    public mutating func applicationNameReported(_ name: String) { applicationName = name }

    /// The upstream reported a new application name: on the record from here on, as an annotation of its own.
    public mutating func applicationNameChanged(to name: String) {
        guard name != applicationName else { return }
        applicationName = name
        record(.annotation(recording.annotation(Annotation(), applicationName: name)))
    }

    /// The server's answer disagrees with what the gate decided (a `DELETE` tag for a request decided as a read).
    public mutating func diverged(_ divergence: Divergence, exchange: UInt64) {
        record(.divergence(divergence), exchange: exchange)
    }

    /// An error the gate sent on its own (a refusal the adapter delivers later counts once, here or in `release`).
    public mutating func countError() { counts.errors &+= 1 }

    /// A request the adapter refused on its own, before any decision (it cannot be read yet).
    public mutating func countRefusal() { counts.refused &+= 1 }

    public mutating func countBytes(fromClient: Int = 0, toClient: Int = 0) {
        counts.bytesFromClient &+= UInt64(fromClient)
        counts.bytesToClient &+= UInt64(toClient)
    }

    // MARK: Recording

    /// Stamps an event now; it reaches the recorder at the next `flush`.
    public mutating func record(_ payload: consuming Payload, exchange: UInt64 = 0) {
        guard let recorder else { return }
        staged.append(recorder.stamp(payload, exchange: exchange))
    }

    /// Hands what was stamped to the recorder: called where the adapter flushes its output, so
    /// the record is never behind what was sent by more than one read. A recorder past its
    /// backlog pauses reading from the upstream until it drains (`recorderDrained`).
    public mutating func flush() -> [ExchangeAction] {
        guard let recorder, !staged.isEmpty else { return [] }
        guard recorder.submit(&staged) else { return [] }
        return pause(.upstream, .recorderBacklog)
    }

    public mutating func recorderDrained() -> [ExchangeAction] { resume(.upstream, .recorderBacklog) }

    /// The record could not be written: the session ends (evidence or nothing).
    public mutating func recordingFailed() -> SessionClosing {
        SessionClosing(code: .unavailable, message: "the gate cannot record this session; it was ended", reason: "recording-failed")
    }

    // MARK: Back-pressure

    /// Stops reading from `side` for `reason`; the action comes only when reading actually stops.
    public mutating func pause(_ side: ReadingSide, _ reason: ReadingPauses.Reasons) -> [ExchangeAction] {
        pauses.pause(side, reason) ? [.pauseReading(side)] : []
    }

    /// Lifts one reason; reading resumes only when no other reason holds it.
    public mutating func resume(_ side: ReadingSide, _ reason: ReadingPauses.Reasons) -> [ExchangeAction] {
        pauses.resume(side, reason) ? [.resumeReading(side)] : []
    }

    // MARK: Teardown

    /// The session ends: held requests are withdrawn on the record, and what remains to do off the
    /// event loop (closing the capture with the session's totals) is returned. Once only.
    public mutating func end(reason: String) -> SessionFinish? {
        guard phase != .ended || recorder != nil else { return nil }
        let reason = endReason ?? reason
        endReason = reason
        // What waited here was never sent: on the record as withdrawn, so the capture holds
        // every request the client made.
        for var waiting in outstanding {
            if case .waiting(let request) = waiting.verdict { waiting = decide(request, exchange: waiting.exchange) }
            if let hold = waiting.hold {
                record(.approval(Approval(state: .expired, approvalID: hold.approvalID, reason: "the session ended (\(reason)) while it waited")),
                       exchange: hold.exchange)
            }
            counts.refused &+= 1
            record(.response(refusalResponse(sqlState: "57014", message: "tollgate: not sent: the session ended (\(reason)) while it waited")),
                   exchange: waiting.exchange)
        }
        outstanding.removeAll()
        phase = .ended
        _ = flush()
        guard let recorder else { return nil }
        self.recorder = nil
        var totals = counts
        totals.requests = exchanges
        return SessionFinish(recorder: recorder, reason: reason, counts: totals)
    }

    /// Sets why the session is ending, before the adapter closes it (the first reason given wins).
    public mutating func ending(_ reason: String) {
        if endReason == nil { endReason = reason }
    }
}

extension ExchangeSession {
    /// A held request's grant key: its fingerprint, else its normalized text (never empty, so that
    /// two unrelated statements never share a grant).
    static func grantKey(_ inspected: InspectedRequest?) -> String {
        if let inspected, case .http(let h) = inspected.request { return "http:\(h.method) \(h.host)\(h.target.split(separator: "?", maxSplits: 1).first ?? "")" }
        guard let inspected, case .postgres(let p) = inspected.request else { return "" }
        if !p.fingerprint.isEmpty { return p.fingerprint }
        return p.normalized.isEmpty ? "text:" + p.text : p.normalized
    }
}

/// A decided request waiting for its turn (or its approval).
/// Every request is decided into one of these (`ExchangeSession.decide`), so it is kept small:
/// the rare parts (a waiting request, a hold and the held request's facts) are boxed. Inline they
/// made each one several hundred bytes to initialize, move and destroy per request (issue 18).
struct Outstanding {
    enum Verdict {
        case forward(Admitted)
        case refuse(String)
        /// Arrived behind a hold: decided when its turn comes.
        indirect case waiting(Request)
    }
    var exchange: UInt64
    var verdict: Verdict
    private var held: Held?
    var hold: Hold? {
        get { held?.hold }
        set { held = Held(hold: newValue, request: heldRequest) }
    }
    /// A held request's facts, for the inspector once it is approved.
    var heldRequest: InspectedRequest? {
        get { held?.request }
        set { held = Held(hold: hold, request: newValue) }
    }
    /// The adapter was told of the hold.
    var announced = false

    init(exchange: UInt64, verdict: Verdict, hold: Hold? = nil, heldRequest: InspectedRequest? = nil) {
        self.exchange = exchange
        self.verdict = verdict
        held = Held(hold: hold, request: heldRequest)
    }

    /// Immutable, so copies of an `Outstanding` never share a change.
    final class Held {
        let hold: Hold?
        let request: InspectedRequest?
        init?(hold: Hold?, request: InspectedRequest?) {
            guard hold != nil || request != nil else { return nil }
            self.hold = hold; self.request = request
        }
    }
}

/// Why a session is closed by the gate, in terms each adapter maps to its protocol (PostgreSQL: a
/// FATAL with a SQLSTATE; HTTP: a status).
public struct SessionClosing: Sendable, Equatable {
    public enum Code: Sendable, Equatable {
        /// The gate cannot serve it now (its capture cannot be written).
        case unavailable
        case shutdown
        case idleTimeout
        case protocolViolation
        case authentication
        case upstreamFailure
        /// The gate cannot follow what the session does (it changed how the server reads requests).
        case unsupported
    }
    public var code: Code
    public var message: String
    /// The session end's recorded reason.
    public var reason: String
}

/// Where a session's capture goes, opened by the adapter off the event loop.
public struct CaptureOpening: Sendable {
    public var directory: String
    public var header: SessionHeader
    public var options: WriterOptions

    /// Creates the directories and writes and syncs the header: blocking, never on an event loop.
    public func open(key: SigningKey, thread: WriterThread) throws(CaptureError) -> SessionRecorder {
        try SessionRecorder(directory: directory, header: header, key: key, options: options, thread: thread)
    }
}

/// Closing a session's capture with its totals: awaited off the event loop.
public struct SessionFinish: Sendable {
    public let recorder: SessionRecorder
    public let reason: String
    public let counts: SessionCounts

    public func run() async -> CaptureError? { await recorder.finish(reason: reason, counts: counts) }
}
