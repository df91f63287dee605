/// How a request's body is delimited (RFC 9112 §6.3), decided once from its head.
public enum BodyFraming: Sendable, Equatable {
    case none
    case length(Int)
    case chunked

    /// Decides the framing, or refuses what two parsers could read two ways: Content-Length with
    /// Transfer-Encoding, a Content-Length given more than once (even with equal values: the gate
    /// does not guess which one a server keeps), a length that is not digits, and any transfer
    /// coding but a single `chunked` (the gate cannot follow, mask or record another).
    public static func of(_ head: RequestHead, limits: HTTPLimits) -> Result<BodyFraming, HTTPRefusal> {
        let lengthValues = head.fields.values("content-length")
        let hasTE = head.fields.contains { $0.canonicalName == "transfer-encoding" }
        if hasTE && !lengthValues.isEmpty {
            return .failure(HTTPRefusal(.lengthAndTransferEncoding, "the request has both Content-Length and Transfer-Encoding"))
        }
        if hasTE {
            if head.minorVersion == 0 {
                return .failure(HTTPRefusal(.unsupportedTransferEncoding, "Transfer-Encoding in an HTTP/1.0 request"))
            }
            let codings = head.fields.values("transfer-encoding")
                .flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
                .map { $0.trimmingOWS().lowercased() }
            guard codings == ["chunked"] else {
                return .failure(HTTPRefusal(.unsupportedTransferEncoding, "Transfer-Encoding is `\(codings.joined(separator: ", "))`; the gate accepts `chunked` alone"))
            }
            return .success(.chunked)
        }
        let elements = lengthValues.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }.map { $0.trimmingOWS() }
        guard !elements.isEmpty else { return .success(.none) }
        guard elements.count == 1 else {
            return .failure(HTTPRefusal(.repeatedContentLength, "Content-Length is given \(elements.count) times"))
        }
        let digits = elements[0]
        // At most 18 digits fit an Int64 without overflow; a longer one is past any limit anyway.
        guard !digits.isEmpty, digits.count <= 18, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(digits) else {
            return .failure(HTTPRefusal(.invalidContentLength, "Content-Length is not a decimal number"))
        }
        if n > limits.maxBodyBytes {
            return .failure(HTTPRefusal(.bodyTooLarge, "the body (\(n) bytes) is larger than the limit of \(limits.maxBodyBytes) bytes"))
        }
        return .success(n == 0 ? .none : .length(n))
    }
}
