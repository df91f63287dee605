import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Loads the issuer's key set: discovery then JWKS over HTTP, or the static file in air-gapped mode.
///
/// Discovery is repeated on every load rather than cached: it costs one small GET per refresh and
/// follows a provider that moves its `jwks_uri`.
struct KeySetLoader: Sendable {
    let configuration: IdentityConfiguration
    let session: URLSession?

    init(configuration: IdentityConfiguration) {
        self.configuration = configuration
        if configuration.staticJWKSPath == nil {
            let sessionConfiguration = URLSessionConfiguration.ephemeral
            sessionConfiguration.timeoutIntervalForRequest = configuration.httpTimeout.timeInterval
            sessionConfiguration.timeoutIntervalForResource = configuration.httpTimeout.timeInterval
            // Freshness is this verifier's decision (TTL, refetch on unknown kid): no HTTP cache.
            sessionConfiguration.requestCachePolicy = .reloadIgnoringLocalCacheData
            sessionConfiguration.urlCache = nil
            sessionConfiguration.httpCookieStorage = nil
            sessionConfiguration.httpShouldSetCookies = false
            session = URLSession(configuration: sessionConfiguration)
        } else {
            session = nil
        }
    }

    func invalidate() { session?.finishTasksAndInvalidate() }

    func load() async -> Result<KeySet, IdentityError> {
        do throws(IdentityError) {
            return .success(try await loadOrThrow())
        } catch {
            return .failure(error)
        }
    }

    private func loadOrThrow() async throws(IdentityError) -> KeySet {
        let data: Data
        if let path = configuration.staticJWKSPath {
            data = try readStaticFile(path)
        } else {
            let jwksURL = try await discoverJWKSURL()
            data = try await get(jwksURL, reason: .jwksUnavailable, what: "JWKS")
        }
        return try await KeySet.parse(data, allowed: configuration.allowedAlgorithms)
    }

    private static let unavailable = "the identity provider's signing keys are unavailable"
    private static let discoveryUnavailable = "the identity provider's configuration could not be loaded"

    private func readStaticFile(_ path: String) throws(IdentityError) -> Data {
        let url = URL(fileURLWithPath: path)
        do {
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
            guard size <= KeySet.maximumDocumentSize else {
                throw IdentityError(.jwksUnavailable, Self.unavailable,
                                    operatorDetail: "static JWKS \(path) is larger than \(KeySet.maximumDocumentSize) bytes")
            }
            return try Data(contentsOf: url)
        } catch let error as IdentityError {
            throw error
        } catch {
            throw IdentityError(.jwksUnavailable, Self.unavailable,
                                operatorDetail: "cannot read static JWKS \(path): \(error.localizedDescription)")
        }
    }

    private func discoverJWKSURL() async throws(IdentityError) -> URL {
        guard let discoveryURL = configuration.discoveryURL else {
            throw IdentityError(.configuration, "issuer is not a URL")
        }
        let data = try await get(discoveryURL, reason: .discoveryFailed, what: "discovery document")
        guard let document = JSONValue.object(from: data) else {
            throw IdentityError(.discoveryFailed, Self.discoveryUnavailable,
                                operatorDetail: "\(discoveryURL) did not return a JSON object")
        }
        // OIDC Discovery §4.3: the document's issuer must be exactly the configured one, or a
        // provider (or whoever answers at that URL) could vouch for another issuer's keys.
        guard document["issuer"]?.stringValue == configuration.issuer else {
            throw IdentityError(.discoveryFailed, Self.discoveryUnavailable,
                                operatorDetail: "discovery document at \(discoveryURL) names issuer "
                                    + "\(document["issuer"]?.stringValue ?? "(none)"), not \(configuration.issuer)")
        }
        guard let text = document["jwks_uri"]?.stringValue, let jwksURL = URL(string: text),
              let scheme = jwksURL.scheme?.lowercased(), let host = jwksURL.host, !host.isEmpty else {
            throw IdentityError(.discoveryFailed, Self.discoveryUnavailable,
                                operatorDetail: "discovery document at \(discoveryURL) has no valid jwks_uri")
        }
        do {
            try IdentityConfiguration.checkScheme(scheme: scheme, host: host, policy: configuration.plainHTTP,
                                                  what: "jwks_uri \(text)")
        } catch {
            throw IdentityError(.discoveryFailed, Self.discoveryUnavailable, operatorDetail: error.message)
        }
        return jwksURL
    }

    private func get(_ url: URL, reason: IdentityError.Reason, what: String) async throws(IdentityError) -> Data {
        let message = reason == .discoveryFailed ? Self.discoveryUnavailable : Self.unavailable
        guard let session else { throw IdentityError(reason, message, operatorDetail: "no HTTP session") }
        var request = URLRequest(url: url)
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        request.timeoutInterval = configuration.httpTimeout.timeInterval
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: request)
        } catch {
            throw IdentityError(reason, message, operatorDetail: "GET \(url) (\(what)) failed: \(error.localizedDescription)")
        }
        guard let http = response as? HTTPURLResponse else {
            throw IdentityError(reason, message, operatorDetail: "GET \(url) (\(what)): not an HTTP response")
        }
        guard http.statusCode == 200 else {
            throw IdentityError(reason, message, operatorDetail: "GET \(url) (\(what)) answered HTTP \(http.statusCode)")
        }
        // URLSession follows redirects: the URL that finally answered must satisfy the same policy
        // (no silent downgrade from https to http).
        if let final = http.url, let scheme = final.scheme?.lowercased() {
            do {
                try IdentityConfiguration.checkScheme(scheme: scheme, host: final.host ?? "", policy: configuration.plainHTTP,
                                                      what: "redirect target \(final)")
            } catch {
                throw IdentityError(reason, message, operatorDetail: error.message)
            }
        }
        guard data.count <= KeySet.maximumDocumentSize else {
            throw IdentityError(reason, message, operatorDetail: "GET \(url) (\(what)): response larger than \(KeySet.maximumDocumentSize) bytes")
        }
        return data
    }
}
