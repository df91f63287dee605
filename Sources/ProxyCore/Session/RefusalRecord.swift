import CaptureFormat

/// How the core records a request it answers itself (denied, not approved, withdrawn), in the
/// session's protocol: PostgreSQL's ERROR with its SQLSTATE, or HTTP's 403 with the message.
extension ExchangeSession {
    func refusalResponse(sqlState: String, message: String) -> Response {
        switch settings.protocolName {
        case "http", "kubernetes":
            // The gate's own answer: 403 for a policy's refusal; a request withdrawn unsent has no answer status of its own.
            let status: UInt16 = sqlState == "42501" ? 403 : 503
            return .http(HTTPResponse(status: status, headers: [KeyValue("X-Tollgate-Refusal", message)]))
        default:
            return .postgres(PostgresResponse(error: PostgresNotice(severity: "ERROR", sqlState: sqlState, message: message)))
        }
    }
}
