import Foundation

/// The gate's own answers to a client (refusals, denials, 401s): a whole HTTP/1.1 response with a
/// small JSON body, framed with Content-Length.
public struct GateResponse: Sendable, Equatable {
    public var status: Int
    public var fields: [HTTPField]
    public var body: [UInt8]
    public var closesConnection: Bool

    struct Body: Encodable {
        var error: String
        var detail: String
        var policy: String?
        var rule: String?
    }

    static func json(status: Int, _ body: Body, closes: Bool, extra: [HTTPField] = []) -> GateResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a struct of strings cannot fail.
        let bytes = Array((try? encoder.encode(body)) ?? Data("{}".utf8))
        var fields = [HTTPField("Content-Type", "application/json"), HTTPField("Content-Length", String(bytes.count))] + extra
        if closes { fields.append(HTTPField("Connection", "close")) }
        return GateResponse(status: status, fields: fields, body: bytes, closesConnection: closes)
    }

    /// A framing or size refusal: the connection is closed after it (HTTPRefusal).
    public static func refusal(_ r: HTTPRefusal) -> GateResponse {
        json(status: r.status, Body(error: r.reason.rawValue, detail: r.detail), closes: true)
    }

    /// 401 with the RFC 6750 challenge; the connection stays open for a retry with a token.
    public static func unauthorized(realm: String, _ problem: BearerCredential.Problem) -> GateResponse {
        let detail: String
        switch problem {
        case .missing: detail = "a bearer token is required"
        case .invalid(let why): detail = why
        }
        return json(status: 401, Body(error: "invalid_token", detail: detail), closes: false,
                    extra: [HTTPField("WWW-Authenticate", BearerCredential.challenge(realm: realm, problem))])
    }

    /// 403 naming the policy and the rule that denied the request.
    public static func denied(policy: String, rule: String, detail: String) -> GateResponse {
        json(status: 403, Body(error: "denied", detail: detail, policy: policy, rule: rule), closes: false)
    }

    public var serialized: [UInt8] {
        var head = "HTTP/1.1 \(status) \(Self.reasonPhrase(status))\r\n"
        for f in fields { head += "\(f.name): \(f.value)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 431: "Request Header Fields Too Large"
        case 502: "Bad Gateway"
        case 505: "HTTP Version Not Supported"
        default: "Error"
        }
    }
}
