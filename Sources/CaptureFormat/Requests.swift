// The event model: requests of each protocol, their parameters and resources (field tags are file format).

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
    public enum Access: UInt8, Sendable {
        case read = 1, write = 2
        public var name: String { self == .read ? "read" : "write" }
    }
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

/// A bound parameter; `value == nil` is SQL NULL. Format 0 is text, 1 binary (the format of the
/// recorded value: a masked or withheld one is recorded as text). `typeOID`: the type the Parse
/// declared for it (0: the server infers it).
public struct Parameter: Sendable, Equatable, WireMessage {
    public var value: [UInt8]?
    public var format: UInt8
    public var typeOID: UInt32
    /// Since 1.4: masked or withheld (a replay cannot re-send such a value).
    public var flags: ValueFlags

    public init(value: [UInt8]?, format: UInt8 = 0, typeOID: UInt32 = 0, flags: ValueFlags = []) {
        self.value = value; self.format = format; self.typeOID = typeOID; self.flags = flags
    }

    public init(text: String?) { self.init(value: text.map { Array($0.utf8) }) }

    public func encode(to w: inout WireWriter) {
        w.bytes(1, value); w.uint(2, UInt64(format)); w.uint(3, UInt64(typeOID)); w.uint(4, flags.rawValue)
    }

    public init(wire r: inout WireReader) throws {
        value = nil; format = 0; typeOID = 0; flags = []
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: value = try r.bytes(t)
            case 2: format = UInt8(truncatingIfNeeded: try r.uint(t))
            case 3: typeOID = UInt32(truncatingIfNeeded: try r.uint(t))
            case 4: flags = ValueFlags(rawValue: try r.uint(t))
            default: try r.skip(t)
            }
        }
    }
}

public struct PostgresRequest: Sendable, Equatable, WireMessage {
    /// Simple Query, the extended protocol (Parse/Bind/Execute), or a function call.
    public enum Path: UInt8, Sendable, Codable, CaseIterable {
        case simple = 1, extended = 2, functionCall = 3

        /// The path's one spelling: in policies (`when: {path: …}`), JSON, reports and exports.
        public var name: String {
            switch self {
            case .simple: "simple"
            case .extended: "extended"
            case .functionCall: "function-call"
            }
        }

        public init?(name: String) {
            guard let path = Self.allCases.first(where: { $0.name == name }) else { return nil }
            self = path
        }
    }
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
    /// Since 1.4: whether the recorded text is masked or withheld (not the text as sent).
    public var textFlags: ValueFlags

    public init(text: String, path: Path = .simple, statementName: String = "", portalName: String = "",
                parameters: [Parameter] = [], fingerprint: String = "", normalized: String = "",
                statementKinds: [String] = [], resources: [Resource] = [], functions: [String] = [], textFlags: ValueFlags = []) {
        self.text = text; self.path = path; self.statementName = statementName; self.portalName = portalName
        self.parameters = parameters; self.fingerprint = fingerprint; self.normalized = normalized
        self.statementKinds = statementKinds; self.resources = resources; self.functions = functions
        self.textFlags = textFlags
    }

    public func encode(to w: inout WireWriter) {
        w.string(1, text); w.uint(2, UInt64(path.rawValue))
        w.string(3, statementName); w.string(4, portalName)
        w.messages(5, parameters)
        w.string(6, fingerprint); w.string(7, normalized)
        w.strings(8, statementKinds); w.messages(9, resources); w.strings(10, functions)
        w.uint(11, textFlags.rawValue)
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
            case 11: textFlags = ValueFlags(rawValue: try r.uint(t))
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
