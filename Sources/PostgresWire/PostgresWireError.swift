/// A framing or encoding problem in the PostgreSQL wire protocol.
///
/// The description says what went wrong and where (message type and byte offset from the
/// message's first byte) but never quotes field contents: a message may carry a password,
/// a token or query parameters, and errors end up in logs.
public struct PostgresWireError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The declared length is below the minimum for the message (4, or 8 for startup packets).
        case invalidLength
        /// The declared length exceeds the configured maximum; raised before the body is buffered.
        case messageTooLarge
        /// A startup packet with a request code or protocol version this decoder does not speak.
        case unsupportedStartupCode
        /// The body does not match the message's layout (missing terminator, counts past the end…).
        case malformedMessage
        /// The stream ended (or the decoder was removed) in the middle of a message.
        case truncatedMessage
        /// Bytes arrived after an SSLRequest/GSSENCRequest before the answer was sent
        /// (they would bypass encryption: CVE-2021-23214).
        case unexpectedDataAfterEncryptionRequest
        /// The server answered an SSLRequest with something other than 'S', 'N' or 'E'.
        case invalidSSLResponse
        /// Bytes arrived together with the server's 'S' before the TLS handshake (CVE-2021-23222).
        case unexpectedDataAfterSSLResponse
        /// A message that cannot be put on the wire (a NUL inside a string, a count over 65535…).
        case unencodableMessage
    }

    public var kind: Kind
    /// The message concerned, e.g. `Bind ('B')` or `StartupMessage`.
    public var messageName: String
    /// Byte offset from the first byte of the message (its type byte, or its length for startup
    /// packets), when the problem has a position.
    public var offset: Int?
    /// What is wrong, in words. Never contains field values.
    public var reason: String

    public init(_ kind: Kind, messageName: String, offset: Int?, reason: String) {
        self.kind = kind
        self.messageName = messageName
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        if let offset {
            return "PostgreSQL protocol error in \(messageName) at offset \(offset): \(reason)"
        }
        return "PostgreSQL protocol error in \(messageName): \(reason)"
    }
}
