import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// One call to the admin API at a time, for the CLI: the bearer token in the header, JSON in and
/// out, a deadline on every call. Errors say what was attempted and what the API answered; the
/// token is never part of one.
struct AdminClient {
    let endpoint: AdminEndpoint
    let token: String
    let timeout: Int

    /// The API's answer: its status and body (a JSON document).
    struct Reply {
        var status: Int
        var body: Data
    }

    /// Sends `method path` (with `body` as JSON) and returns the reply when it is a 2xx; any other
    /// status, or no answer, throws a `ToolFailure` that begins with `action`.
    func call(_ method: HTTPMethod, _ path: String, body: Data? = nil, action: String) async throws -> Reply {
        var tls: TLSConfiguration?
        if endpoint.isTLS {
            var configuration = TLSConfiguration.makeClientConfiguration()  // full verification: chain and host name
            if let caFile = endpoint.caFile {
                do {
                    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
                } catch {
                    throw ToolFailure(description: "\(action): cannot read the CA file \(caFile): \(error)")
                }
            }
            tls = configuration
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow)
        configuration.timeout.connect = .seconds(Int64(min(timeout, 10)))
        // One attempt: a refused connection or an untrusted certificate is the answer, at once
        // (the pool would otherwise retry until the connect timeout and report the same error).
        configuration.connectionPool.retryConnectionEstablishment = false
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let result: Result<Reply, any Error>
        do {
            result = .success(try await send(client, method, path, body: body))
        } catch {
            result = .failure(error)
        }
        // Shut down on every path (the client must not be dropped running); a failure to shut down
        // changes nothing for the answer already had.
        try? await client.shutdown()
        let reply: Reply
        switch result {
        case .success(let r): reply = r
        case .failure(let error as HTTPClientError) where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout:
            throw ToolFailure(description: "\(action): no answer from the admin API at \(endpoint.base) within \(timeout)s")
        case .failure(let error as HTTPClientError) where error == .remoteConnectionClosed && !endpoint.isTLS:
            throw ToolFailure(description: "\(action): the admin API at \(endpoint.base) closed the connection (does its listener use TLS? then the URL is https://)")
        case .failure(let error):
            throw ToolFailure(description: "\(action): cannot reach the admin API at \(endpoint.base): \(Self.describe(error))")
        }
        guard (200..<300).contains(reply.status) else {
            throw ToolFailure(description: "\(action): \(reply.status) \(Self.message(reply))\(Self.hint(reply.status))")
        }
        return reply
    }

    private func send(_ client: HTTPClient, _ method: HTTPMethod, _ path: String, body: Data?) async throws -> Reply {
        var request = HTTPClientRequest(url: endpoint.base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Accept", value: "application/json")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await client.execute(request, deadline: .now() + .seconds(Int64(timeout)))
        // The API's documents are small (at most 500 approvals); 16 MiB bounds a wrong server.
        let bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
        return Reply(status: Int(response.status.code), body: Data(bytes.readableBytesView))
    }

    /// The API's own error message (`{"error": "..."}`), or what came instead.
    static func message(_ reply: Reply) -> String {
        if let object = try? JSONSerialization.jsonObject(with: reply.body) as? [String: Any], let error = object["error"] as? String {
            return Printable.line(error)
        }
        let text = Printable.line(String(decoding: reply.body.prefix(200), as: UTF8.self))
        return text.isEmpty ? HTTPResponseStatus(statusCode: reply.status).reasonPhrase : text
    }

    static func hint(_ status: Int) -> String {
        switch status {
        case 401: " (give a current token from the gate's OIDC issuer, for its audience)"
        default: ""
        }
    }

    /// NIOSSL's and AsyncHTTPClient's errors, shortened to what a person can act on.
    static func describe(_ error: any Error) -> String {
        if let ssl = error as? NIOSSLError {
            return "TLS: \(ssl) (is the certificate signed by a CA this machine trusts? --ca-file PEM names a private CA)"
        }
        if let ssl = error as? BoringSSLError {
            return "TLS: \(ssl) (is the certificate signed by a CA this machine trusts? --ca-file PEM names a private CA)"
        }
        return "\(error)"
    }
}

extension String {
    /// An id as one path segment: nothing in it may reach another endpoint.
    var pathSegment: String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return addingPercentEncoding(withAllowedCharacters: allowed) ?? self
    }
}
