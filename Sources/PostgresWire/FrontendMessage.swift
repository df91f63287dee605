import NIOCore

/// A message sent by a PostgreSQL client (protocol 3.0).
///
/// `description` redacts the password message and the values of Bind parameters and COPY
/// data, so a message can be logged; the statement text and object names are shown.
public enum PostgresFrontendMessage: Sendable, Hashable {
    // Untyped messages of the startup phase.
    case sslRequest
    case gssEncRequest
    case cancelRequest(processID: Int32, secretKey: Int32)
    case startup(StartupMessage)

    // Typed messages.
    case query(String)
    case parse(name: String, query: String, parameterTypes: [UInt32])
    case bind(Bind)
    case describe(ObjectKind, name: String)
    case execute(portal: String, maxRows: Int32)
    case sync
    case flush
    case close(ObjectKind, name: String)
    case copyData(ByteBuffer)
    case copyDone
    case copyFail(message: String)
    /// FunctionCall ('F'), kept raw: the gate has no reason to take it apart, only to refuse it.
    case functionCall(ByteBuffer)
    case terminate
    /// The 'p' message. Its body means different things depending on what the server asked
    /// for (PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse), so it stays raw;
    /// see `parseCleartextPassword(_:)` and `parseSASLInitialResponse(_:)`.
    case password(ByteBuffer)
    /// A typed message this library does not know, passed on untouched.
    case unknown(type: UInt8, body: ByteBuffer)

    /// Statement or portal, as named by Describe and Close.
    public enum ObjectKind: UInt8, Sendable, Hashable {
        case statement = 0x53  // 'S'
        case portal = 0x50     // 'P'
    }

    public struct StartupMessage: Sendable, Hashable {
        /// Protocol 3.0.
        public static let protocolVersion3_0: Int32 = 196_608

        /// Major version in the high 16 bits, minor in the low 16 bits.
        public var protocolVersion: Int32
        /// Parameters in the order the client sent them.
        public var parameters: [(name: String, value: String)]

        public init(protocolVersion: Int32 = StartupMessage.protocolVersion3_0, parameters: [(name: String, value: String)]) {
            self.protocolVersion = protocolVersion
            self.parameters = parameters
        }

        public var majorVersion: Int { Int(protocolVersion >> 16) }
        public var minorVersion: Int { Int(protocolVersion & 0xFFFF) }

        /// The first value for `name`, if any.
        public func parameter(_ name: String) -> String? {
            parameters.first { $0.name == name }?.value
        }

        public var user: String? { parameter("user") }
        /// The database; PostgreSQL defaults it to the user name when absent.
        public var database: String? { parameter("database") }
        public var applicationName: String? { parameter("application_name") }

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.protocolVersion == rhs.protocolVersion
                && lhs.parameters.elementsEqual(rhs.parameters) { $0.name == $1.name && $0.value == $1.value }
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(protocolVersion)
            for parameter in parameters {
                hasher.combine(parameter.name)
                hasher.combine(parameter.value)
            }
        }
    }

    public struct Bind: Sendable, Hashable {
        public var portal: String
        public var statement: String
        /// Empty: all text; one: applies to all; otherwise one per parameter.
        public var parameterFormats: [Int16]
        /// Values; `nil` is SQL NULL.
        public var parameters: [ByteBuffer?]
        public var resultFormats: [Int16]

        public init(portal: String = "", statement: String = "", parameterFormats: [Int16] = [],
                    parameters: [ByteBuffer?] = [], resultFormats: [Int16] = []) {
            self.portal = portal
            self.statement = statement
            self.parameterFormats = parameterFormats
            self.parameters = parameters
            self.resultFormats = resultFormats
        }
    }

    /// The body of a SASLInitialResponse.
    public struct SASLInitialResponse: Sendable, Hashable {
        public var mechanism: String
        /// `nil` when the client sent length -1 (no initial response).
        public var initialResponse: ByteBuffer?

        public init(mechanism: String, initialResponse: ByteBuffer?) {
            self.mechanism = mechanism
            self.initialResponse = initialResponse
        }
    }
}

// MARK: - The 'p' message

extension PostgresFrontendMessage {
    static let passwordMessageName = "PasswordMessage ('p')"

    /// Reads a 'p' body as a PasswordMessage: one null-terminated string (a cleartext password,
    /// an OIDC token, or an md5 hash). Errors never include the body.
    public static func parseCleartextPassword(_ body: ByteBuffer) throws -> String {
        var reader = MessageBodyReader(body: body, headerSize: 5, messageName: passwordMessageName)
        let password = try reader.readCString("password")
        try reader.expectEnd()
        return password
    }

    /// Reads a 'p' body as a SASLInitialResponse: mechanism name, Int32 length (-1: none), data.
    public static func parseSASLInitialResponse(_ body: ByteBuffer) throws -> SASLInitialResponse {
        var reader = MessageBodyReader(body: body, headerSize: 5, messageName: "SASLInitialResponse ('p')")
        let mechanism = try reader.readCString("mechanism name")
        let lengthOffset = reader.offset
        let length = try reader.readInteger(as: Int32.self, "initial response length")
        var data: ByteBuffer? = nil
        if length != -1 {
            guard length >= 0 else { throw reader.malformed("negative initial response length \(length)", at: lengthOffset) }
            data = try reader.readSlice(length: Int(length), "initial response")
        }
        try reader.expectEnd()
        return SASLInitialResponse(mechanism: mechanism, initialResponse: data)
    }

    /// A PasswordMessage carrying `password` (cleartext, or the result of
    /// `PostgresAuthentication.md5Password`).
    public static func passwordMessage(_ password: String) throws -> PostgresFrontendMessage {
        var body = ByteBuffer()
        try body.writeCString(password, message: passwordMessageName, field: "password")
        return .password(body)
    }

    /// A SASLInitialResponse.
    public static func saslInitialResponse(mechanism: String, data: [UInt8]?) throws -> PostgresFrontendMessage {
        var body = ByteBuffer()
        try body.writeCString(mechanism, message: "SASLInitialResponse ('p')", field: "mechanism name")
        if let data {
            body.writeInteger(Int32(data.count))
            body.writeBytes(data)
        } else {
            body.writeInteger(Int32(-1))
        }
        return .password(body)
    }

    /// A SASLResponse: the body is the mechanism's data, unframed.
    public static func saslResponse(_ data: [UInt8]) -> PostgresFrontendMessage {
        .password(ByteBuffer(bytes: data))
    }
}

// MARK: - Names and redacted descriptions

extension PostgresFrontendMessage {
    /// The message's type byte, or `nil` for the untyped startup-phase messages.
    public var typeByte: UInt8? {
        switch self {
        case .sslRequest, .gssEncRequest, .cancelRequest, .startup: nil
        case .query: UInt8(ascii: "Q")
        case .parse: UInt8(ascii: "P")
        case .bind: UInt8(ascii: "B")
        case .describe: UInt8(ascii: "D")
        case .execute: UInt8(ascii: "E")
        case .sync: UInt8(ascii: "S")
        case .flush: UInt8(ascii: "H")
        case .close: UInt8(ascii: "C")
        case .copyData: UInt8(ascii: "d")
        case .copyDone: UInt8(ascii: "c")
        case .copyFail: UInt8(ascii: "f")
        case .functionCall: UInt8(ascii: "F")
        case .terminate: UInt8(ascii: "X")
        case .password: UInt8(ascii: "p")
        case .unknown(let type, _): type
        }
    }

    /// Protocol name of a frontend type byte, e.g. `Bind ('B')`.
    public static func messageName(type: UInt8) -> String {
        let name: String
        switch type {
        case UInt8(ascii: "Q"): name = "Query"
        case UInt8(ascii: "P"): name = "Parse"
        case UInt8(ascii: "B"): name = "Bind"
        case UInt8(ascii: "D"): name = "Describe"
        case UInt8(ascii: "E"): name = "Execute"
        case UInt8(ascii: "S"): name = "Sync"
        case UInt8(ascii: "H"): name = "Flush"
        case UInt8(ascii: "C"): name = "Close"
        case UInt8(ascii: "d"): name = "CopyData"
        case UInt8(ascii: "c"): name = "CopyDone"
        case UInt8(ascii: "f"): name = "CopyFail"
        case UInt8(ascii: "F"): name = "FunctionCall"
        case UInt8(ascii: "X"): name = "Terminate"
        case UInt8(ascii: "p"): name = "PasswordMessage"
        default: name = "unknown frontend message"
        }
        return "\(name) (\(typeByteLabel(type)))"
    }

    /// The protocol name of this message.
    public var messageName: String {
        switch self {
        case .sslRequest: "SSLRequest"
        case .gssEncRequest: "GSSENCRequest"
        case .cancelRequest: "CancelRequest"
        case .startup: "StartupMessage"
        default: Self.messageName(type: typeByte!)
        }
    }
}

extension PostgresFrontendMessage: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        switch self {
        case .sslRequest, .gssEncRequest, .sync, .flush, .copyDone, .terminate:
            return messageName
        case .cancelRequest(let pid, _):
            return "CancelRequest(processID: \(pid), secretKey: <redacted>)"
        case .startup(let startup):
            let parameters = startup.parameters.map { "\($0.name)=\($0.value)" }.joined(separator: ", ")
            return "StartupMessage(\(startup.majorVersion).\(startup.minorVersion), \(parameters))"
        case .query(let text):
            return "Query(\(text))"
        case .parse(let name, let query, let types):
            return "Parse(name: \"\(name)\", query: \(query), parameterTypes: \(types))"
        case .bind(let bind):
            let lengths = bind.parameters.map { $0.map { "\($0.readableBytes) bytes" } ?? "NULL" }
            return "Bind(portal: \"\(bind.portal)\", statement: \"\(bind.statement)\", parameterFormats: \(bind.parameterFormats), parameters: [\(lengths.joined(separator: ", "))], resultFormats: \(bind.resultFormats))"
        case .describe(let kind, let name):
            return "Describe(\(kind), \"\(name)\")"
        case .execute(let portal, let maxRows):
            return "Execute(portal: \"\(portal)\", maxRows: \(maxRows))"
        case .close(let kind, let name):
            return "Close(\(kind), \"\(name)\")"
        case .copyData(let data):
            return "CopyData(\(data.readableBytes) bytes)"
        case .copyFail(let message):
            return "CopyFail(\(message))"
        case .functionCall(let body):
            return "FunctionCall(\(body.readableBytes) bytes)"
        case .password(let body):
            return "PasswordMessage(<redacted, \(body.readableBytes) bytes>)"
        case .unknown(let type, let body):
            return "\(Self.messageName(type: type))(\(body.readableBytes) bytes)"
        }
    }

    public var debugDescription: String { description }

    /// Keeps `dump()` and debuggers from walking into the password bytes.
    public var customMirror: Mirror { Mirror(self, children: ["description": description]) }
}
