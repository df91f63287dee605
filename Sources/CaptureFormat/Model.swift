// The event model: a protocol-neutral envelope around typed payloads.
// Field tags are part of the file format (docs/capture-format.md): never reuse one.

/// What an event is. Raw values are stored on disk and in block kind bitmaps (bit = raw value).
public enum EventKind: UInt8, Sendable, CaseIterable, Codable {
    case sessionStart = 1
    case sessionEnd = 2
    case request = 3
    case decision = 4
    case approval = 5
    case response = 6
    case streamChunk = 7
    case maskSummary = 8
    case annotation = 9
    /// Since format 1.2: the server's answer did not match what the gate decided on.
    case divergence = 10

    public var name: String {
        switch self {
        case .sessionStart: "session-start"
        case .sessionEnd: "session-end"
        case .request: "request"
        case .decision: "decision"
        case .approval: "approval"
        case .response: "response"
        case .streamChunk: "stream"
        case .maskSummary: "mask-summary"
        case .annotation: "annotation"
        case .divergence: "divergence"
        }
    }

    public init?(name: String) {
        guard let k = EventKind.allCases.first(where: { $0.name == name }) else { return nil }
        self = k
    }

    /// The name the footer's session summary counts the kind under. Kinds added after 1.1 are
    /// counted as `kind-N`, the name a 1.1 reader gives a kind it does not know: `verify`
    /// recomputes the summary from the events, so any other name would fail it on a 1.1 reader.
    public var summaryName: String { rawValue <= EventKind.annotation.rawValue ? name : "kind-\(rawValue)" }

    /// A summary's kind name as shown: `kind-10` is `divergence` to a reader that knows it.
    public static func displayName(summaryName: String) -> String {
        guard summaryName.hasPrefix("kind-"), let code = UInt8(summaryName.dropFirst(5)), let k = EventKind(rawValue: code) else { return summaryName }
        return k.name
    }
}

/// One recorded event. The writer assigns `sequence`; it starts at 1 and has no gaps.
public struct Event: Sendable, Equatable {
    public var sequence: UInt64
    /// Nanoseconds since the session started, from a monotonic clock.
    public var monotonicNanos: UInt64
    /// Microseconds since the Unix epoch (UTC).
    public var wallMicros: Int64
    /// Ties a request to its decision, approvals and response; 0 when not part of an exchange.
    public var exchangeID: UInt64
    public var payload: Payload

    public init(sequence: UInt64 = 0, monotonicNanos: UInt64, wallMicros: Int64, exchangeID: UInt64 = 0, payload: Payload) {
        self.sequence = sequence
        self.monotonicNanos = monotonicNanos
        self.wallMicros = wallMicros
        self.exchangeID = exchangeID
        self.payload = payload
    }

    /// Moves `event` out, leaving an empty one (no allocation) in its place. For handing events
    /// on from an array: a copy retains every string and array an event holds, and the standard
    /// library's ways to empty an array in order (`reverse`, `append(contentsOf:)`) copy.
    public static func take(_ event: inout Event) -> Event {
        var taken = Event(monotonicNanos: 0, wallMicros: 0, payload: .unknown(kind: 0, bytes: []))
        swap(&taken, &event)
        return taken
    }

    /// The kind's raw value; for an event of a kind this reader does not know, the stored value.
    public var kindCode: UInt8 {
        if case .unknown(let code, _) = payload { return code }
        return payload.kind!.rawValue
    }
}

public enum Payload: Sendable, Equatable {
    case sessionStart(SessionStart)
    case sessionEnd(SessionEnd)
    case request(Request)
    case decision(Decision)
    case approval(Approval)
    case response(Response)
    case streamChunk(StreamChunk)
    case maskSummary(MaskSummary)
    case annotation(Annotation)
    case divergence(Divergence)
    /// An event kind written by a newer writer: kept as raw bytes.
    case unknown(kind: UInt8, bytes: [UInt8])

    public var kind: EventKind? {
        switch self {
        case .sessionStart: .sessionStart
        case .sessionEnd: .sessionEnd
        case .request: .request
        case .decision: .decision
        case .approval: .approval
        case .response: .response
        case .streamChunk: .streamChunk
        case .maskSummary: .maskSummary
        case .annotation: .annotation
        case .divergence: .divergence
        case .unknown: nil
        }
    }
}

public struct KeyValue: Sendable, Equatable, Hashable, WireMessage {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) { self.key = key; self.value = value }

    public func encode(to w: inout WireWriter) {
        w.string(1, key)
        w.string(2, value)
    }

    public init(wire r: inout WireReader) throws {
        key = ""; value = ""
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: key = try r.string(t)
            case 2: value = try r.string(t)
            default: try r.skip(t)
            }
        }
    }
}

/// Bytes recorded up to a cap: what was kept, the true size, and a SHA-256
/// of the part that was cut, so the rest can be proven later without storing it.
public struct CappedBytes: Sendable, Equatable, WireMessage {
    public var data: [UInt8]
    public var totalSize: UInt64
    public var cutSHA256: [UInt8]?

    public init(data: [UInt8], totalSize: UInt64? = nil, cutSHA256: [UInt8]? = nil) {
        self.data = data
        self.totalSize = totalSize ?? UInt64(data.count)
        self.cutSHA256 = cutSHA256
    }

    public var isTruncated: Bool { totalSize > UInt64(data.count) }

    public func encode(to w: inout WireWriter) {
        w.bytes(1, data)
        w.uint(2, totalSize)
        w.bytes(3, cutSHA256)
    }

    public init(wire r: inout WireReader) throws {
        data = []; totalSize = 0; cutSHA256 = nil
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: data = try r.bytes(t)
            case 2: totalSize = try r.uint(t)
            case 3: cutSHA256 = try r.bytes(t)
            default: try r.skip(t)
            }
        }
    }
}

// MARK: - Session start and end

public struct TLSInfo: Sendable, Equatable, WireMessage {
    public var version: String
    public var cipher: String
    public var serverName: String
    public init(version: String, cipher: String, serverName: String = "") {
        self.version = version; self.cipher = cipher; self.serverName = serverName
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, version); w.string(2, cipher); w.string(3, serverName)
    }

    public init(wire r: inout WireReader) throws {
        version = ""; cipher = ""; serverName = ""
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: version = try r.string(t)
            case 2: cipher = try r.string(t)
            case 3: serverName = try r.string(t)
            default: try r.skip(t)
            }
        }
    }
}

public struct SessionStart: Sendable, Equatable, WireMessage {
    public var clientAddress: String
    public var applicationName: String
    public var tls: TLSInfo?
    /// Protocol parameters the client sent (PostgreSQL startup parameters, HTTP user agent…), never secrets.
    public var parameters: [KeyValue]

    public init(clientAddress: String, applicationName: String = "", tls: TLSInfo? = nil, parameters: [KeyValue] = []) {
        self.clientAddress = clientAddress; self.applicationName = applicationName
        self.tls = tls; self.parameters = parameters
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, clientAddress); w.string(2, applicationName)
        w.message(3, tls); w.messages(4, parameters)
    }

    public init(wire r: inout WireReader) throws {
        self.init(clientAddress: "")
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: clientAddress = try r.string(t)
            case 2: applicationName = try r.string(t)
            case 3: tls = try r.message(t)
            case 4: parameters.append(try r.message(t))
            default: try r.skip(t)
            }
        }
    }
}

public struct SessionEnd: Sendable, Equatable, WireMessage {
    /// Why the session ended: client-terminate, client-disconnect, upstream-closed, idle-timeout, shutdown, error…
    public var reason: String
    public var detail: String
    /// What passed through the gate in the session; nil from writers that do not count.
    public var counts: SessionCounts?

    public init(reason: String, detail: String = "", counts: SessionCounts? = nil) {
        self.reason = reason; self.detail = detail; self.counts = counts
    }

    public func encode(to w: inout WireWriter) { w.string(1, reason); w.string(2, detail); w.message(3, counts) }

    public init(wire r: inout WireReader) throws {
        reason = ""; detail = ""; counts = nil
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: reason = try r.string(t)
            case 2: detail = try r.string(t)
            case 3: counts = try r.message(t)
            default: try r.skip(t)
            }
        }
    }
}

/// A session's totals as the gate saw them on the wire, whatever the recording caps kept: an
/// auditor can tell a capped record from a short session, and compare with the footer's summary.
public struct SessionCounts: Sendable, Equatable, WireMessage {
    /// Requests the client sent, one exchange each (PostgreSQL: simple Queries, Executes, function
    /// calls, and Parses the gate refused).
    public var requests: UInt64
    /// Requests the gate did not forward (denied, or waiting for an approval it could not get).
    public var refused: UInt64
    /// Error responses, from the database or the gate.
    public var errors: UInt64
    /// Result rows passed to the client.
    public var rows: UInt64
    public var bytesFromClient: UInt64
    public var bytesToClient: UInt64

    public init(requests: UInt64 = 0, refused: UInt64 = 0, errors: UInt64 = 0, rows: UInt64 = 0,
                bytesFromClient: UInt64 = 0, bytesToClient: UInt64 = 0) {
        self.requests = requests; self.refused = refused; self.errors = errors; self.rows = rows
        self.bytesFromClient = bytesFromClient; self.bytesToClient = bytesToClient
    }

    public func encode(to w: inout WireWriter) {
        w.uint(1, requests); w.uint(2, refused); w.uint(3, errors); w.uint(4, rows)
        w.uint(5, bytesFromClient); w.uint(6, bytesToClient)
    }

    public init(wire r: inout WireReader) throws {
        self.init()
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: requests = try r.uint(t)
            case 2: refused = try r.uint(t)
            case 3: errors = try r.uint(t)
            case 4: rows = try r.uint(t)
            case 5: bytesFromClient = try r.uint(t)
            case 6: bytesToClient = try r.uint(t)
            default: try r.skip(t)
            }
        }
    }
}

// MARK: - Requests

public enum Request: Sendable, Equatable, WireMessage {
    case postgres(PostgresRequest)
    case http(HTTPRequest)
    case kubernetes(KubernetesRequest)
    /// A protocol added after this reader (a message field with a tag it does not know).
    case unknown(UnknownProtocol)

    public func encode(to w: inout WireWriter) {
        switch self {
        case .postgres(let p): w.message(1, p)
        case .http(let h): w.message(2, h)
        case .kubernetes(let k): w.message(3, k)
        case .unknown(let u): u.encode(to: &w)
        }
    }

    public init(wire r: inout WireReader) throws {
        var result: Request?
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: result = .postgres(try r.message(t))
            case 2: result = .http(try r.message(t))
            case 3: result = .kubernetes(try r.message(t))
            // A newer writer's protocol: kept, not a reason to refuse the event.
            case _ where t == .lengthDelimited && result == nil: result = .unknown(UnknownProtocol(tag: tag, bytes: try r.bytes(t)))
            default: try r.skip(t)
            }
        }
        guard let result else { throw r.fail("request has no protocol payload") }
        self = result
    }
}

/// A table or other object a statement touches.
public struct Resource: Sendable, Equatable, Hashable, WireMessage {
    public enum Access: UInt8, Sendable { case read = 1, write = 2 }
    public var schema: String
    public var name: String
    public var access: Access

    public init(schema: String, name: String, access: Access) {
        self.schema = schema; self.name = name; self.access = access
    }

    public var qualifiedName: String { schema.isEmpty ? name : "\(schema).\(name)" }

    public func encode(to w: inout WireWriter) {
        w.string(1, schema); w.string(2, name); w.uint(3, UInt64(access.rawValue))
    }

    public init(wire r: inout WireReader) throws {
        schema = ""; name = ""; access = .read
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: schema = try r.string(t)
            case 2: name = try r.string(t)
            case 3: access = Access(rawValue: UInt8(truncatingIfNeeded: try r.uint(t))) ?? .write
            default: try r.skip(t)
            }
        }
    }
}

/// A bound parameter; `value == nil` is SQL NULL. Format 0 is text, 1 binary.
public struct Parameter: Sendable, Equatable, WireMessage {
    public var value: [UInt8]?
    public var format: UInt8
    public var typeOID: UInt32

    public init(value: [UInt8]?, format: UInt8 = 0, typeOID: UInt32 = 0) {
        self.value = value; self.format = format; self.typeOID = typeOID
    }

    public init(text: String?) { self.init(value: text.map { Array($0.utf8) }) }

    public func encode(to w: inout WireWriter) {
        w.bytes(1, value); w.uint(2, UInt64(format)); w.uint(3, UInt64(typeOID))
    }

    public init(wire r: inout WireReader) throws {
        value = nil; format = 0; typeOID = 0
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: value = try r.bytes(t)
            case 2: format = UInt8(truncatingIfNeeded: try r.uint(t))
            case 3: typeOID = UInt32(truncatingIfNeeded: try r.uint(t))
            default: try r.skip(t)
            }
        }
    }
}

public struct PostgresRequest: Sendable, Equatable, WireMessage {
    /// Simple Query, the extended protocol (Parse/Bind/Execute), or a function call.
    public enum Path: UInt8, Sendable, Codable { case simple = 1, extended = 2, functionCall = 3 }
    public var text: String
    public var path: Path
    public var statementName: String
    public var portalName: String
    public var parameters: [Parameter]
    /// Facts from inspection (filled when the gate inspects the statement).
    public var fingerprint: String
    public var normalized: String
    public var statementKinds: [String]
    public var resources: [Resource]
    public var functions: [String]

    public init(text: String, path: Path = .simple, statementName: String = "", portalName: String = "",
                parameters: [Parameter] = [], fingerprint: String = "", normalized: String = "",
                statementKinds: [String] = [], resources: [Resource] = [], functions: [String] = []) {
        self.text = text; self.path = path; self.statementName = statementName; self.portalName = portalName
        self.parameters = parameters; self.fingerprint = fingerprint; self.normalized = normalized
        self.statementKinds = statementKinds; self.resources = resources; self.functions = functions
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, text); w.uint(2, UInt64(path.rawValue))
        w.string(3, statementName); w.string(4, portalName)
        w.messages(5, parameters)
        w.string(6, fingerprint); w.string(7, normalized)
        w.strings(8, statementKinds); w.messages(9, resources); w.strings(10, functions)
    }

    public init(wire r: inout WireReader) throws {
        self.init(text: "")
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: text = try r.string(t)
            case 2: path = Path(rawValue: UInt8(truncatingIfNeeded: try r.uint(t))) ?? .simple
            case 3: statementName = try r.string(t)
            case 4: portalName = try r.string(t)
            case 5: parameters.append(try r.message(t))
            case 6: fingerprint = try r.string(t)
            case 7: normalized = try r.string(t)
            case 8: statementKinds.append(try r.string(t))
            case 9: resources.append(try r.message(t))
            case 10: functions.append(try r.string(t))
            default: try r.skip(t)
            }
        }
    }
}

public struct HTTPRequest: Sendable, Equatable, WireMessage {
    public var method: String
    /// Path and query, as sent.
    public var target: String
    public var host: String
    /// Headers as recorded: credentials (Authorization, Cookie…) are removed before recording.
    public var headers: [KeyValue]
    public var body: CappedBytes

    public init(method: String, target: String, host: String = "", headers: [KeyValue] = [], body: CappedBytes = CappedBytes(data: [])) {
        self.method = method; self.target = target; self.host = host; self.headers = headers; self.body = body
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, method); w.string(2, target); w.string(3, host)
        w.messages(4, headers)
        if body.totalSize > 0 { w.message(5, body) }
    }

    public init(wire r: inout WireReader) throws {
        self.init(method: "", target: "")
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: method = try r.string(t)
            case 2: target = try r.string(t)
            case 3: host = try r.string(t)
            case 4: headers.append(try r.message(t))
            case 5: body = try r.message(t)
            default: try r.skip(t)
            }
        }
    }
}

public struct KubernetesRequest: Sendable, Equatable, WireMessage {
    public var http: HTTPRequest
    public var verb: String
    public var apiGroup: String
    public var apiVersion: String
    public var resource: String
    public var namespace: String
    public var name: String
    /// exec, attach, portforward, log, status, scale…
    public var subresource: String
    /// For exec: the command and its arguments.
    public var command: [String]
    public var container: String

    public init(http: HTTPRequest, verb: String, apiGroup: String = "", apiVersion: String = "v1", resource: String,
                namespace: String = "", name: String = "", subresource: String = "", command: [String] = [], container: String = "") {
        self.http = http; self.verb = verb; self.apiGroup = apiGroup; self.apiVersion = apiVersion
        self.resource = resource; self.namespace = namespace; self.name = name
        self.subresource = subresource; self.command = command; self.container = container
    }

    public func encode(to w: inout WireWriter) {
        w.message(1, http); w.string(2, verb); w.string(3, apiGroup); w.string(4, apiVersion)
        w.string(5, resource); w.string(6, namespace); w.string(7, name); w.string(8, subresource)
        w.strings(9, command); w.string(10, container)
    }

    public init(wire r: inout WireReader) throws {
        self.init(http: HTTPRequest(method: "", target: ""), verb: "", apiVersion: "", resource: "")
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: http = try r.message(t)
            case 2: verb = try r.string(t)
            case 3: apiGroup = try r.string(t)
            case 4: apiVersion = try r.string(t)
            case 5: resource = try r.string(t)
            case 6: namespace = try r.string(t)
            case 7: name = try r.string(t)
            case 8: subresource = try r.string(t)
            case 9: command.append(try r.string(t))
            case 10: container = try r.string(t)
            default: try r.skip(t)
            }
        }
    }
}

// MARK: - Decisions and approvals

public struct Decision: Sendable, Equatable, WireMessage {
    public enum Action: UInt8, Sendable, CaseIterable {
        case allow = 1, deny = 2, review = 3
        public var name: String { switch self { case .allow: "allow"; case .deny: "deny"; case .review: "review" } }
    }
    public var action: Action
    public var policy: String
    public var rule: String
    public var reason: String
    /// Names of the masks the decision applies to the response.
    public var masks: [String]

    public init(action: Action, policy: String = "", rule: String = "", reason: String = "", masks: [String] = []) {
        self.action = action; self.policy = policy; self.rule = rule; self.reason = reason; self.masks = masks
    }

    public func encode(to w: inout WireWriter) {
        w.uint(1, UInt64(action.rawValue)); w.string(2, policy); w.string(3, rule)
        w.string(4, reason); w.strings(5, masks)
    }

    public init(wire r: inout WireReader) throws {
        self.init(action: .deny)
        while let (tag, t) = try r.nextField() {
            switch tag {
            // An action this reader does not know is read as deny: fail closed.
            case 1: action = Action(rawValue: UInt8(truncatingIfNeeded: try r.uint(t))) ?? .deny
            case 2: policy = try r.string(t)
            case 3: rule = try r.string(t)
            case 4: reason = try r.string(t)
            case 5: masks.append(try r.string(t))
            default: try r.skip(t)
            }
        }
    }
}

public struct Approval: Sendable, Equatable, WireMessage {
    public enum State: UInt8, Sendable, CaseIterable {
        case requested = 1, granted = 2, denied = 3, expired = 4
        public var name: String {
            switch self { case .requested: "requested"; case .granted: "granted"; case .denied: "denied"; case .expired: "expired" }
        }
    }
    public var state: State
    public var approvalID: String
    /// The approver (for granted or denied).
    public var by: String
    public var reason: String
    /// Groups allowed to approve (for requested).
    public var approverGroups: [String]

    public init(state: State, approvalID: String, by: String = "", reason: String = "", approverGroups: [String] = []) {
        self.state = state; self.approvalID = approvalID; self.by = by; self.reason = reason; self.approverGroups = approverGroups
    }

    public func encode(to w: inout WireWriter) {
        w.uint(1, UInt64(state.rawValue)); w.string(2, approvalID); w.string(3, by)
        w.string(4, reason); w.strings(5, approverGroups)
    }

    public init(wire r: inout WireReader) throws {
        self.init(state: .requested, approvalID: "")
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: state = State(rawValue: UInt8(truncatingIfNeeded: try r.uint(t))) ?? .denied
            case 2: approvalID = try r.string(t)
            case 3: by = try r.string(t)
            case 4: reason = try r.string(t)
            case 5: approverGroups.append(try r.string(t))
            default: try r.skip(t)
            }
        }
    }
}

// MARK: - Responses

public enum Response: Sendable, Equatable, WireMessage {
    case postgres(PostgresResponse)
    case http(HTTPResponse)
    /// A protocol added after this reader (a message field with a tag it does not know).
    case unknown(UnknownProtocol)

    public func encode(to w: inout WireWriter) {
        switch self {
        case .postgres(let p): w.message(1, p)
        case .http(let h): w.message(2, h)
        case .unknown(let u): u.encode(to: &w)
        }
    }

    public init(wire r: inout WireReader) throws {
        var result: Response?
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: result = .postgres(try r.message(t))
            case 2: result = .http(try r.message(t))
            // A newer writer's protocol: kept, not a reason to refuse the event.
            case _ where t == .lengthDelimited && result == nil: result = .unknown(UnknownProtocol(tag: tag, bytes: try r.bytes(t)))
            default: try r.skip(t)
            }
        }
        guard let result else { throw r.fail("response has no protocol payload") }
        self = result
    }
}

public struct Column: Sendable, Equatable, WireMessage {
    public var name: String
    public var typeOID: UInt32
    public var tableOID: UInt32
    public var attributeNumber: UInt16
    public var format: UInt8

    public init(name: String, typeOID: UInt32, tableOID: UInt32 = 0, attributeNumber: UInt16 = 0, format: UInt8 = 0) {
        self.name = name; self.typeOID = typeOID; self.tableOID = tableOID
        self.attributeNumber = attributeNumber; self.format = format
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, name); w.uint(2, UInt64(typeOID)); w.uint(3, UInt64(tableOID))
        w.uint(4, UInt64(attributeNumber)); w.uint(5, UInt64(format))
    }

    public init(wire r: inout WireReader) throws {
        self.init(name: "", typeOID: 0)
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: name = try r.string(t)
            case 2: typeOID = UInt32(truncatingIfNeeded: try r.uint(t))
            case 3: tableOID = UInt32(truncatingIfNeeded: try r.uint(t))
            case 4: attributeNumber = UInt16(truncatingIfNeeded: try r.uint(t))
            case 5: format = UInt8(truncatingIfNeeded: try r.uint(t))
            default: try r.skip(t)
            }
        }
    }
}

/// An ErrorResponse or NoticeResponse, after masking.
public struct PostgresNotice: Sendable, Equatable, WireMessage {
    public var severity: String
    public var sqlState: String
    public var message: String
    public var detail: String
    public var hint: String

    public init(severity: String, sqlState: String, message: String, detail: String = "", hint: String = "") {
        self.severity = severity; self.sqlState = sqlState; self.message = message; self.detail = detail; self.hint = hint
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, severity); w.string(2, sqlState); w.string(3, message); w.string(4, detail); w.string(5, hint)
    }

    public init(wire r: inout WireReader) throws {
        self.init(severity: "", sqlState: "", message: "")
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: severity = try r.string(t)
            case 2: sqlState = try r.string(t)
            case 3: message = try r.string(t)
            case 4: detail = try r.string(t)
            case 5: hint = try r.string(t)
            default: try r.skip(t)
            }
        }
    }
}

/// Rows past the recording cap: how many, how many bytes, and a SHA-256 over their packed encoding.
public struct CutRows: Sendable, Equatable, WireMessage {
    public var rows: UInt64
    public var bytes: UInt64
    public var sha256: [UInt8]

    public init(rows: UInt64, bytes: UInt64, sha256: [UInt8]) { self.rows = rows; self.bytes = bytes; self.sha256 = sha256 }

    public func encode(to w: inout WireWriter) { w.uint(1, rows); w.uint(2, bytes); w.bytes(3, sha256) }

    public init(wire r: inout WireReader) throws {
        self.init(rows: 0, bytes: 0, sha256: [])
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: rows = try r.uint(t)
            case 2: bytes = try r.uint(t)
            case 3: sha256 = try r.bytes(t)
            default: try r.skip(t)
            }
        }
    }
}

/// A row's values; nil is SQL NULL. On disk a row is one packed field:
/// for each value, varint(length + 1) then the bytes, or varint 0 for NULL.
public typealias Row = [[UInt8]?]

public struct PostgresResponse: Sendable, Equatable, WireMessage {
    public var columns: [Column]
    /// Rows as recorded (after masking), up to the cap, in their on-disk form: written and read
    /// as they are. `rows` gives them as values.
    public var packedRows: PackedRows
    /// Rows as recorded (after masking), up to the cap.
    public var rows: [Row] {
        get { packedRows.rows }
        set { packedRows = PackedRows(newValue) }
    }
    /// True number of rows the statement returned or affected.
    public var rowCount: UInt64
    public var commandTag: String
    public var error: PostgresNotice?
    public var notices: [PostgresNotice]
    public var durationMicros: UInt64
    public var cut: CutRows?

    public init(columns: [Column] = [], rows: [Row] = [], rowCount: UInt64 = 0, commandTag: String = "",
                error: PostgresNotice? = nil, notices: [PostgresNotice] = [], durationMicros: UInt64 = 0, cut: CutRows? = nil) {
        self.columns = columns; self.packedRows = PackedRows(rows); self.rowCount = rowCount; self.commandTag = commandTag
        self.error = error; self.notices = notices; self.durationMicros = durationMicros; self.cut = cut
    }

    public static func pack(_ row: Row) -> [UInt8] {
        var w = WireWriter(capacity: row.reduce(0) { $0 + ($1?.count ?? 0) + 2 })
        packRow(row, into: &w)
        return w.bytes
    }

    /// A packed row's values.
    public static func unpackRow(_ packed: UnsafeRawBufferPointer) -> Row {
        var row: Row = []
        forEachValue(ofPacked: packed) { row.append($0.map { [UInt8]($0) }) }
        return row
    }

    /// The total length of a packed row's values, without unpacking it.
    public static func valueBytes(ofPacked packed: UnsafeRawBufferPointer) -> UInt64 {
        var total: UInt64 = 0
        forEachValue(ofPacked: packed) { total &+= UInt64($0?.count ?? 0) }
        return total
    }

    /// Each value of a packed row in order (nil for NULL), in place. The layout was checked when
    /// the row was read or made; should it not hold, the walk stops where it breaks.
    static func forEachValue(ofPacked buf: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) -> Void) {
        var r = WireReader(buf)
        try? walkPacked(&r) { body($0.map { UnsafeRawBufferPointer(rebasing: buf[$0]) }) }
    }

    /// The one walk over a packed row's layout (per value varint(length + 1) and the bytes, or 0
    /// for NULL): each value's range in the reader's buffer; throws where a length runs past the row.
    static func walkPacked(_ r: inout WireReader, _ body: (Range<Int>?) -> Void) throws {
        while !r.isAtEnd {
            let n = try r.varint()
            if n == 0 { body(nil); continue }
            guard n - 1 <= UInt64(r.end - r.position) else { throw r.fail("row value runs past the end") }
            let end = r.position + Int(n - 1)
            body(r.position..<end)
            r.position = end
        }
    }

    public static func packRow(_ row: Row, into w: inout WireWriter) {
        for value in row {
            if let value {
                w.varint(UInt64(value.count) + 1)
                w.append(raw: value)
            } else {
                w.varint(0)
            }
        }
    }

    public func encode(to w: inout WireWriter) {
        w.messages(1, columns)
        w.append(raw: packedRows.encoded)
        w.uint(3, rowCount); w.string(4, commandTag); w.message(5, error)
        w.messages(6, notices); w.uint(7, durationMicros); w.message(8, cut)
    }

    public init(wire r: inout WireReader) throws {
        self.init()
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: columns.append(try r.message(t))
            case 2:
                var sub = try r.subReader(t)
                let start = sub.position
                try Self.walkPacked(&sub) { _ in }
                packedRows.append(packed: UnsafeRawBufferPointer(rebasing: sub.base[start..<sub.end]))
            case 3: rowCount = try r.uint(t)
            case 4: commandTag = try r.string(t)
            case 5: error = try r.message(t)
            case 6: notices.append(try r.message(t))
            case 7: durationMicros = try r.uint(t)
            case 8: cut = try r.message(t)
            default: try r.skip(t)
            }
        }
    }
}

/// A response's recorded rows, back to back in one buffer in their on-disk form: each row is the
/// response's field 2 (its key, its length, then per value varint(length + 1) and the bytes, or 0
/// for NULL). Recording a row appends to the buffer and writing the response appends the buffer
/// whole, so a result of many rows costs one growing allocation instead of one per row.
public struct PackedRows: Sendable, Equatable {
    private var writer = WireWriter(capacity: 0)  // a result without rows allocates nothing
    public private(set) var count = 0

    public init() {}

    public init(_ rows: [Row]) {
        for row in rows { append(row) }
    }

    /// The rows as field 2 of a PostgresResponse, in order.
    public var encoded: [UInt8] { writer.bytes }
    public var rows: [Row] {
        var rows: [Row] = []
        rows.reserveCapacity(count)
        forEach { rows.append(PostgresResponse.unpackRow($0)) }
        return rows
    }

    public static func == (a: PackedRows, b: PackedRows) -> Bool { a.count == b.count && a.encoded == b.encoded }

    public mutating func append(_ row: Row) {
        append { PostgresResponse.packRow(row, into: &$0) }
    }

    /// Appends a row whose packed values are checked already.
    public mutating func append(packed: UnsafeRawBufferPointer) {
        append { $0.append(raw: packed) }
    }

    /// Appends one row, whose packed values `pack` writes; returns their length in bytes.
    @discardableResult
    public mutating func append(_ pack: (inout WireWriter) -> Void) -> Int {
        var packedLength = 0
        writer.message(2) { w in
            let start = w.bytes.count
            pack(&w)
            packedLength = w.bytes.count - start
        }
        count += 1
        return packedLength
    }

    /// Takes the last row back out (appended at byte `start`), returning its packed values.
    mutating func removeLast(from start: Int, packedLength: Int) -> [UInt8] {
        let values = Array(writer.bytes.suffix(packedLength))
        writer.truncate(to: start)
        count -= 1
        return values
    }

    /// Each row's packed values, in place.
    public func forEach(_ body: (UnsafeRawBufferPointer) -> Void) {
        writer.bytes.withUnsafeBytes { buf in
            var r = WireReader(buf)
            // Built by `append`, or checked when read: every field is one whole row.
            while let (_, t) = try? r.nextField(), let sub = try? r.subReader(t) {
                body(UnsafeRawBufferPointer(rebasing: buf[sub.position..<sub.end]))
            }
        }
    }
}

public struct HTTPResponse: Sendable, Equatable, WireMessage {
    public var status: UInt16
    public var headers: [KeyValue]
    public var body: CappedBytes
    public var durationMicros: UInt64

    public init(status: UInt16, headers: [KeyValue] = [], body: CappedBytes = CappedBytes(data: []), durationMicros: UInt64 = 0) {
        self.status = status; self.headers = headers; self.body = body; self.durationMicros = durationMicros
    }

    public func encode(to w: inout WireWriter) {
        w.uint(1, UInt64(status)); w.messages(2, headers)
        if body.totalSize > 0 { w.message(3, body) }
        w.uint(4, durationMicros)
    }

    public init(wire r: inout WireReader) throws {
        self.init(status: 0)
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: status = UInt16(truncatingIfNeeded: try r.uint(t))
            case 2: headers.append(try r.message(t))
            case 3: body = try r.message(t)
            case 4: durationMicros = try r.uint(t)
            default: try r.skip(t)
            }
        }
    }
}

// MARK: - Streams, masks, annotations

public struct StreamChunk: Sendable, Equatable, WireMessage {
    public enum Stream: UInt8, Sendable, CaseIterable {
        case stdin = 0, stdout = 1, stderr = 2, resize = 3
        public var name: String {
            switch self { case .stdin: "stdin"; case .stdout: "stdout"; case .stderr: "stderr"; case .resize: "resize" }
        }
    }
    public var stream: Stream
    public var data: [UInt8]
    /// Terminal size, for `resize` (and optionally any chunk).
    public var columns: UInt16
    public var rows: UInt16

    public init(stream: Stream, data: [UInt8] = [], columns: UInt16 = 0, rows: UInt16 = 0) {
        self.stream = stream; self.data = data; self.columns = columns; self.rows = rows
    }

    public func encode(to w: inout WireWriter) {
        // Stream 0 (stdin) is written explicitly: absence must not be read as a default.
        w.key(1, .varint); w.varint(UInt64(stream.rawValue))
        if !data.isEmpty { w.bytes(2, data) }
        w.uint(3, UInt64(columns)); w.uint(4, UInt64(rows))
    }

    public init(wire r: inout WireReader) throws {
        self.init(stream: .stdout)
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: stream = Stream(rawValue: UInt8(truncatingIfNeeded: try r.uint(t))) ?? .stdout
            case 2: data = try r.bytes(t)
            case 3: columns = UInt16(truncatingIfNeeded: try r.uint(t))
            case 4: rows = UInt16(truncatingIfNeeded: try r.uint(t))
            default: try r.skip(t)
            }
        }
    }
}

public struct MaskCount: Sendable, Equatable, WireMessage {
    /// The detector or rule that fired (credit_card, us_ssn, email, column:*.phone…).
    public var detector: String
    public var count: UInt64
    /// Where: a column name, a header or a JSON field.
    public var location: String

    public init(detector: String, count: UInt64, location: String = "") {
        self.detector = detector; self.count = count; self.location = location
    }

    public func encode(to w: inout WireWriter) { w.string(1, detector); w.uint(2, count); w.string(3, location) }

    public init(wire r: inout WireReader) throws {
        self.init(detector: "", count: 0)
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: detector = try r.string(t)
            case 2: count = try r.uint(t)
            case 3: location = try r.string(t)
            default: try r.skip(t)
            }
        }
    }
}

public struct MaskSummary: Sendable, Equatable, WireMessage {
    public var entries: [MaskCount]
    public init(entries: [MaskCount]) { self.entries = entries }

    public func encode(to w: inout WireWriter) { w.messages(1, entries) }

    public init(wire r: inout WireReader) throws {
        entries = []
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: entries.append(try r.message(t))
            default: try r.skip(t)
            }
        }
    }
}

/// Links an exchange to what produced it: an assistant's prompt, a W3C trace, free text.
public struct Annotation: Sendable, Equatable, WireMessage {
    public var promptID: String
    /// W3C traceparent (version-traceid-spanid-flags).
    public var traceparent: String
    public var text: String
    public var attributes: [KeyValue]

    public init(promptID: String = "", traceparent: String = "", text: String = "", attributes: [KeyValue] = []) {
        self.promptID = promptID; self.traceparent = traceparent; self.text = text; self.attributes = attributes
    }

    /// The attribute that holds the client's application name (PostgreSQL `application_name`) as
    /// the gate knew it when it recorded the annotation.
    public static let applicationNameKey = "application_name"

    /// The client's application name, when the annotation carries it.
    public var applicationName: String? { attributes.first { $0.key == Annotation.applicationNameKey }?.value }

    /// The 32-hex-digit trace id inside `traceparent`, if well-formed.
    public var traceID: String? {
        let parts = traceparent.split(separator: "-")
        guard parts.count >= 4, parts[1].count == 32 else { return nil }
        return String(parts[1])
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, promptID); w.string(2, traceparent); w.string(3, text); w.messages(4, attributes)
    }

    public init(wire r: inout WireReader) throws {
        self.init()
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: promptID = try r.string(t)
            case 2: traceparent = try r.string(t)
            case 3: text = try r.string(t)
            case 4: attributes.append(try r.message(t))
            default: try r.skip(t)
            }
        }
    }
}

/// The server's answer did not match the gate's reading of a request (a command tag the statement
/// kind the gate decided on cannot return, or more or fewer completions than statements): the
/// gate ended the session. Recorded against the exchange whose answer diverged.
public struct Divergence: Sendable, Equatable, WireMessage {
    /// The statement's position in its request, from 0 (or the completion's, past the last statement).
    public var statement: UInt64
    /// What the gate decided on: the statement kind, or a count of statements.
    public var expected: String
    /// What the server answered: the command tag, or a count of completions.
    public var actual: String

    public init(statement: UInt64 = 0, expected: String = "", actual: String = "") {
        self.statement = statement; self.expected = expected; self.actual = actual
    }

    public func encode(to w: inout WireWriter) {
        w.uint(1, statement); w.string(2, expected); w.string(3, actual)
    }

    public init(wire r: inout WireReader) throws {
        self.init()
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: statement = try r.uint(t)
            case 2: expected = try r.string(t)
            case 3: actual = try r.string(t)
            default: try r.skip(t)
            }
        }
    }
}
