import Hummingbird
import HTTPTypes
import Identity

/// Verifies the `Authorization: Bearer` token with the gate's OIDC verifier (issuer, audience,
/// signature, expiry), as RFC 6750 describes: 401 with a `WWW-Authenticate` challenge when the
/// token is missing or invalid. Which groups may do what is the route's concern.
struct BearerAuthentication: RouterMiddleware {
    typealias Context = AdminContext
    let verifier: OIDCVerifier

    func handle(_ request: Request, context: AdminContext,
                next: (Request, AdminContext) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            return AdminResponse.error(.unauthorized, "missing bearer token (Authorization: Bearer <OIDC token>)",
                                       challenge: #"Bearer realm="tollgate""#)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", !parts[1].isEmpty else {
            return AdminResponse.error(.unauthorized, "the Authorization header is not a bearer token",
                                       challenge: #"Bearer realm="tollgate", error="invalid_request""#)
        }
        var context = context
        do {
            context.identity = try await verifier.verify(token: String(parts[1]))
        } catch {
            // The reason (expired, wrong audience, bad signature) is the verifier's; never the token.
            return AdminResponse.error(.unauthorized, "invalid token: \(error)",
                                       challenge: #"Bearer realm="tollgate", error="invalid_token""#)
        }
        return try await next(request, context)
    }
}
