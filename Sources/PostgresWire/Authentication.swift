import Crypto

/// Password computations for logging in to PostgreSQL with brokered credentials.
public enum PostgresAuthentication {
    /// The answer to AuthenticationMD5Password:
    /// `"md5" + md5hex(md5hex(password + user) + salt)`.
    /// Send it with `PostgresFrontendMessage.passwordMessage(_:)`.
    public static func md5Password(user: String, password: String, salt: UInt32) -> String {
        let inner = hex(Insecure.MD5.hash(data: Array(password.utf8) + Array(user.utf8)))
        let saltBytes = [UInt8(truncatingIfNeeded: salt >> 24), UInt8(truncatingIfNeeded: salt >> 16),
                         UInt8(truncatingIfNeeded: salt >> 8), UInt8(truncatingIfNeeded: salt)]
        return "md5" + hex(Insecure.MD5.hash(data: Array(inner.utf8) + saltBytes))
    }

    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Why a SCRAM exchange failed. Never contains the password or derived keys.
public struct SCRAMError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// A method was called out of order.
        case unexpectedState
        /// server-first-message or server-final-message does not parse.
        case malformedServerMessage
        /// The server's nonce does not extend ours.
        case nonceMismatch
        /// The iteration count is not usable (zero, or above the cap).
        case invalidIterationCount
        /// The server sent `e=…` in server-final-message.
        case serverError
        /// The server's signature is wrong: it does not know the password (or is not the server).
        case serverSignatureMismatch
    }

    public var kind: Kind
    public var reason: String

    public var description: String { "SCRAM-SHA-256 authentication failed: \(reason)" }
}

/// Client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it.
///
/// Flow against AuthenticationSASL / SASLContinue / SASLFinal:
///
///     var scram = SCRAMSHA256Client(password: pw)
///     send(.saslInitialResponse(mechanism: SCRAMSHA256Client.mechanism, data: scram.clientFirstMessage()))
///     // .authentication(.saslContinue(data))
///     send(.saslResponse(try scram.clientFinalMessage(serverFirst: data.readableBytesView)))
///     // .authentication(.saslFinal(data))
///     try scram.verifyServerFinal(data.readableBytesView)   // then expect AuthenticationOk
///
/// PostgreSQL specifics: the user name in the SCRAM message is ignored (the startup user is
/// used), so it is sent empty by default; no channel binding (gs2 header `n,,`).
///
/// SASLprep limitation: the password is used as its UTF-8 bytes. For ASCII passwords this is
/// exactly SASLprep's result. Non-ASCII passwords are not normalised (NFKC, space mapping), so a
/// password that SASLprep would change fails to authenticate; PostgreSQL itself falls back to
/// the raw bytes only when SASLprep rejects the password. Broker ASCII passwords.
public struct SCRAMSHA256Client: Sendable {
    public static let mechanism = "SCRAM-SHA-256"
    /// Refuse server-chosen iteration counts above this: an upstream that asks for more is
    /// broken or hostile (PostgreSQL's default is 4096).
    public static let maximumIterations = 10_000_000

    private enum State: Sendable {
        case initial
        case sentClientFirst(clientFirstBare: String)
        case sentClientFinal(serverSignature: [UInt8])
        case authenticated
        case failed
    }

    private let password: [UInt8]
    private let username: String
    private let clientNonce: String
    private var state: State = .initial

    /// - Parameters:
    ///   - username: sent in the SCRAM message; PostgreSQL ignores it, so leave it empty.
    ///   - clientNonce: for tests only; by default 18 random bytes, base64-encoded.
    public init(username: String = "", password: String, clientNonce: String? = nil) {
        if let clientNonce {
            precondition(!clientNonce.isEmpty && clientNonce.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ",") },
                         "a SCRAM nonce is printable ASCII without commas")
        }
        var generator = SystemRandomNumberGenerator()  // getrandom(2) on Linux: a CSPRNG.
        self.password = Array(password.utf8)
        self.username = username
        self.clientNonce = clientNonce ?? Base64.encode((0..<18).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// True once the server's signature has been verified.
    public var isAuthenticated: Bool {
        if case .authenticated = state { return true }
        return false
    }

    /// client-first-message: `n,,n=<user>,r=<nonce>`. The data of the SASLInitialResponse.
    public mutating func clientFirstMessage() throws -> [UInt8] {
        guard case .initial = state else { throw fail(.unexpectedState, "client-first-message was already sent") }
        let escaped = username.replacingAll("=", with: "=3D").replacingAll(",", with: "=2C")
        let bare = "n=\(escaped),r=\(clientNonce)"
        state = .sentClientFirst(clientFirstBare: bare)
        return Array(("n,," + bare).utf8)
    }

    /// Takes server-first-message (AuthenticationSASLContinue's data) and returns
    /// client-final-message (the SASLResponse's data).
    public mutating func clientFinalMessage<Bytes: Collection>(serverFirst: Bytes) throws -> [UInt8] where Bytes.Element == UInt8 {
        guard case .sentClientFirst(let clientFirstBare) = state else {
            throw fail(.unexpectedState, "server-first-message arrived before client-first-message was sent")
        }
        guard let serverFirstText = String(validating: serverFirst, as: UTF8.self) else {
            throw fail(.malformedServerMessage, "server-first-message is not UTF-8")
        }
        let attributes = serverFirstText.split(separator: ",", omittingEmptySubsequences: false)
        guard attributes.count >= 3,
              attributes[0].hasPrefix("r="), attributes[1].hasPrefix("s="), attributes[2].hasPrefix("i=") else {
            throw fail(.malformedServerMessage, "server-first-message must start with r=, s=, i= (mandatory extensions are not supported)")
        }
        let nonce = attributes[0].dropFirst(2)
        guard nonce.hasPrefix(clientNonce), nonce.utf8.count > clientNonce.utf8.count else {
            throw fail(.nonceMismatch, "the server nonce does not extend the client nonce")
        }
        guard let salt = Base64.decode(attributes[1].dropFirst(2)), !salt.isEmpty else {
            throw fail(.malformedServerMessage, "the salt is not valid base64")
        }
        guard let iterations = Int(attributes[2].dropFirst(2)), iterations >= 1, iterations <= Self.maximumIterations else {
            throw fail(.invalidIterationCount, "the iteration count is not between 1 and \(Self.maximumIterations)")
        }

        let saltedPassword = Self.saltedPassword(password: password, salt: salt, iterations: iterations)
        let clientKey = Self.hmac(key: saltedPassword, Array("Client Key".utf8))
        let storedKey = Array(SHA256.hash(data: clientKey))
        let clientFinalWithoutProof = "c=biws,r=\(nonce)"  // biws = base64("n,,")
        let authMessage = Array("\(clientFirstBare),\(serverFirstText),\(clientFinalWithoutProof)".utf8)
        let clientSignature = Self.hmac(key: storedKey, authMessage)
        let proof = zip(clientKey, clientSignature).map { $0 ^ $1 }
        let serverKey = Self.hmac(key: saltedPassword, Array("Server Key".utf8))
        state = .sentClientFinal(serverSignature: Self.hmac(key: serverKey, authMessage))
        return Array("\(clientFinalWithoutProof),p=\(Base64.encode(proof))".utf8)
    }

    /// Checks server-final-message (AuthenticationSASLFinal's data). Throws unless the server
    /// proved that it knows the password.
    public mutating func verifyServerFinal<Bytes: Collection>(_ serverFinal: Bytes) throws where Bytes.Element == UInt8 {
        guard case .sentClientFinal(let expected) = state else {
            throw fail(.unexpectedState, "server-final-message arrived before client-final-message was sent")
        }
        guard let text = String(validating: serverFinal, as: UTF8.self) else {
            throw fail(.malformedServerMessage, "server-final-message is not UTF-8")
        }
        let first = text.split(separator: ",", omittingEmptySubsequences: false)[0]
        if first.hasPrefix("e=") {
            // The server's error names a condition (e.g. invalid-proof), not a secret.
            throw fail(.serverError, "the server reported \(first.dropFirst(2))")
        }
        guard first.hasPrefix("v="), let signature = Base64.decode(first.dropFirst(2)) else {
            throw fail(.malformedServerMessage, "server-final-message has no v= attribute")
        }
        // Constant time: how much of the signature matched must not leak.
        guard signature.count == expected.count,
              zip(signature, expected).reduce(UInt8(0), { $0 | ($1.0 ^ $1.1) }) == 0 else {
            throw fail(.serverSignatureMismatch, "the server signature does not match")
        }
        state = .authenticated
    }

    private mutating func fail(_ kind: SCRAMError.Kind, _ reason: String) -> SCRAMError {
        state = .failed
        return SCRAMError(kind: kind, reason: reason)
    }

    /// Hi() of RFC 5802: PBKDF2 with HMAC-SHA-256 and one output block.
    static func saltedPassword(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        // Keying once and copying the keyed state saves re-deriving the HMAC pads each round.
        let keyed = HMAC<SHA256>(key: SymmetricKey(data: password))
        var mac = keyed
        mac.update(data: salt + [0, 0, 0, 1])
        var u = Array(mac.finalize())
        var result = u
        for _ in 1..<iterations {
            mac = keyed
            mac.update(data: u)
            u = Array(mac.finalize())
            for i in 0..<result.count { result[i] ^= u[i] }
        }
        return result
    }

    static func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }
}

extension SCRAMSHA256Client: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// Redacted: the password must not reach a log through string interpolation or `dump`.
    public var description: String { "SCRAMSHA256Client(<redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}

extension String {
    /// Without Foundation's `replacingOccurrences`.
    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for character in self {
            if character == target { out += replacement } else { out.append(character) }
        }
        return out
    }
}
