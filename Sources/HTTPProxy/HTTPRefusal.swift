/// Why the gate refuses a request before anything of it reaches the upstream. Every refusal here
/// closes the client's connection: once framing is in doubt, no later byte on it can be trusted
/// to start a new request (RFC 9112 §11.2, request smuggling).
public struct HTTPRefusal: Sendable, Equatable, Error {
    public enum Reason: String, Sendable, Equatable {
        case malformedRequestLine = "malformed_request_line"
        case unsupportedVersion = "unsupported_version"
        case malformedField = "malformed_field"
        case obsoleteLineFolding = "obs_fold"
        case bareLineEnding = "bare_line_ending"
        case missingOrRepeatedHost = "host"
        case lengthAndTransferEncoding = "content_length_and_transfer_encoding"
        case repeatedContentLength = "repeated_content_length"
        case invalidContentLength = "invalid_content_length"
        case unsupportedTransferEncoding = "unsupported_transfer_encoding"
        case badChunk = "bad_chunk"
        case requestLineTooLong = "request_line_too_long"
        case headersTooLarge = "headers_too_large"
        case bodyTooLarge = "body_too_large"
    }

    public var reason: Reason
    /// Says what was wrong and where, for the client's 4xx body and the capture; never a value
    /// that might be a credential.
    public var detail: String

    public init(_ reason: Reason, _ detail: String) { self.reason = reason; self.detail = detail }

    public var status: Int {
        switch reason {
        case .requestLineTooLong: 414
        case .headersTooLarge: 431
        case .bodyTooLarge: 413
        case .unsupportedVersion: 505
        default: 400
        }
    }
}
