import Foundation
import Hummingbird
import HTTPTypes

/// JSON responses of the admin API: one encoder (ISO 8601 times, sorted keys), and errors as
/// `{"error": "...", "status": N}` with the status they describe.
enum AdminResponse {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        // Encoding our own value types cannot fail; should it, the caller gets a 500, not a crash.
        guard let data = try? encoder.encode(value) else { return error(.internalServerError, "cannot encode the response") }
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data + [0x0A])))
    }

    struct ErrorBody: Encodable {
        var error: String
        var status: Int
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, challenge: String? = nil) -> Response {
        var response = json(ErrorBody(error: message, status: status.code), status: status)
        if let challenge { response.headers[.wwwAuthenticate] = challenge }
        return response
    }
}
