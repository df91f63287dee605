/// The client side of a PostgreSQL login, as a state machine over decoded messages: TLS
/// negotiation (SSLRequest), the startup message, and trust, cleartext, md5 or SCRAM-SHA-256
/// authentication, up to the first ReadyForQuery. It does no I/O: its owner (the gate's upstream
/// handler, or a client such as a replay tool) sends what it returns and starts TLS when told,
/// so the one login is shared whatever drives the connection.
public struct PostgresUpstreamLogin: Sendable {
    public struct Credentials: Sendable {
        public var user: String
        public var password: String?
        /// The startup parameters (user, database, ...), in the order they are sent.
        public var parameters: [(name: String, value: String)]

        public init(user: String, password: String?, parameters: [(name: String, value: String)]) {
            self.user = user; self.password = password; self.parameters = parameters
        }
    }

    /// How TLS is negotiated: as libpq's sslmode, for what the login itself decides.
    public enum TLS: Sendable, Equatable {
        /// No SSLRequest.
        case disable
        /// SSLRequest; plaintext if the server declines.
        case prefer
        /// SSLRequest; the login fails if the server declines. `mode` names the setting in that error.
        case required(mode: String)
    }

    public enum Action: Sendable {
        /// Send this message.
        case send(PostgresFrontendMessage)
        /// The server accepted TLS: put the TLS client handler first, then call `tlsEstablished()`
        /// (at once, or once the certificate's name has been checked for verify-full).
        case startTLS
        /// Nothing to do for this message.
        case none
        /// The login failed; the connection must be closed. `detail` says why.
        case fail(String)
        /// Logged in: the server's key data, its parameter statuses and the first ReadyForQuery.
        case ready(keyData: (processID: Int32, secretKey: Int32)?, parameterStatus: [PostgresBackendMessage], ready: PostgresBackendMessage)
    }

    public let credentials: Credentials
    public let tls: TLS
    var scram: SCRAMSHA256Client?
    public private(set) var parameterStatus: [PostgresBackendMessage] = []
    public private(set) var keyData: (processID: Int32, secretKey: Int32)?
    public private(set) var done = false

    public init(credentials: Credentials, tls: TLS) {
        self.credentials = credentials; self.tls = tls
    }

    /// Whether the server's first answer is an SSLResponse byte (the decoder must expect it).
    public var expectsSSLResponse: Bool { tls != .disable }

    /// The first message, once the connection is up.
    public func start() -> Action {
        tls == .disable ? startup() : .send(.sslRequest)
    }

    public func startup() -> Action {
        .send(.startup(.init(parameters: credentials.parameters)))
    }

    /// TLS is up (and the certificate checked): the startup message goes out over it.
    public func tlsEstablished() -> Action { startup() }

    /// The server's answer to SSLRequest. The decoder refuses bytes sent along with the answer
    /// (CVE-2021-23222), so none can bypass TLS.
    public func sslResponse(_ response: PostgresBackendMessage.SSLResponse) -> Action {
        if response == .supported { return .startTLS }
        if case .required(let mode) = tls { return .fail("the database does not offer TLS, and upstream_tls is \(mode)") }
        return startup()
    }

    /// One message from the server during the login.
    public mutating func received(_ message: PostgresBackendMessage) -> Action {
        guard !done else { return .none }
        switch message {
        case .sslResponse(let response):
            return sslResponse(response)
        case .authentication(let auth):
            do {
                return try authenticate(auth)
            } catch {
                return .fail("\(error)")
            }
        case .parameterStatus:
            parameterStatus.append(message)
        case .backendKeyData(let pid, let key):
            keyData = (pid, key)
        case .readyForQuery:
            done = true
            return .ready(keyData: keyData, parameterStatus: parameterStatus, ready: message)
        case .errorResponse(let fields):
            return .fail(fields.message ?? "")
        default:
            break
        }
        return .none
    }

    struct LoginError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// Answers the database's authentication request with the credentials.
    mutating func authenticate(_ auth: PostgresBackendMessage.Authentication) throws -> Action {
        func password() throws -> String {
            guard let p = credentials.password else { throw LoginError("the database asks for a password and the target has none configured") }
            return p
        }
        switch auth {
        case .ok:
            return .none
        case .cleartextPassword:
            return .send(try .passwordMessage(try password()))
        case .md5Password(let salt):
            return .send(try .passwordMessage(PostgresAuthentication.md5Password(user: credentials.user, password: try password(), salt: salt)))
        case .sasl(let mechanisms):
            guard mechanisms.contains(SCRAMSHA256Client.mechanism) else { throw LoginError("no supported SASL mechanism in \(mechanisms)") }
            var client = SCRAMSHA256Client(password: try password())
            let first = try client.clientFirstMessage()
            scram = client
            return .send(try .saslInitialResponse(mechanism: SCRAMSHA256Client.mechanism, data: first))
        case .saslContinue(let data):
            guard var client = scram else { throw LoginError("SASL continue without SASL start") }
            let final = try client.clientFinalMessage(serverFirst: data.readableBytesView)
            scram = client
            return .send(.saslResponse(final))
        case .saslFinal(let data):
            // The server proves it knows the password too; a client must not talk to an impostor.
            guard var client = scram else { throw LoginError("SASL final without SASL start") }
            try client.verifyServerFinal(data.readableBytesView)
            scram = client
            return .none
        case .other(let code, _):
            throw LoginError("the database asks for authentication method \(code), which the gate does not support")
        }
    }
}
