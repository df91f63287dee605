import ArgumentParser
import Foundation
import ProxyCore

/// Where the admin API is and who is calling it, shared by `approvals` and `grants`.
///
/// The bearer token is read from `$TOLLGATE_TOKEN` or `--token-file`, never from an argument:
/// arguments are visible to every user of the machine (`ps`, /proc) and stay in shell history.
struct AdminOptions: ParsableArguments {
    @Option(name: .customLong("admin"), help: ArgumentHelp("The admin API's base URL (default: $TOLLGATE_ADMIN_URL).", valueName: "URL"))
    var adminURL: String?

    @Option(name: .long, help: ArgumentHelp("Find the admin API in the gate's configuration (admin.listen; https when admin.tls is set).", valueName: "FILE"))
    var config: String?

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("Trust this CA (PEM) for the admin API's certificate instead of the system's.", valueName: "PEM"))
    var caFile: String?

    @Option(name: .customLong("token-file"), help: ArgumentHelp("Read the bearer token from FILE (default: $TOLLGATE_TOKEN).", valueName: "FILE"))
    var tokenFile: String?

    @Flag(name: .customLong("allow-plaintext"), help: "Send the token over plain http to a host that is not loopback (as the gate's admin.allow_plaintext).")
    var allowPlaintext = false

    @Option(name: .long, help: ArgumentHelp("Give up on the admin API after this many seconds.", valueName: "SECONDS"))
    var timeout: Int = 30

    @Flag(name: .long, help: "Print the API's JSON document as it answered (see docs/admin-api.openapi.yaml).")
    var json = false

    /// Only so that `--token` is refused with the reason rather than "unknown option"; its value
    /// is never used, printed or logged.
    @Option(name: .customLong("token"), help: .hidden)
    var tokenArgument: String?

    func validate() throws {
        if tokenArgument != nil {
            throw ValidationError("--token is not an option: a token in the arguments is visible to every user of this machine (ps) and stays in shell history. Set TOLLGATE_TOKEN, or give --token-file FILE")
        }
        guard (1...3600).contains(timeout) else { throw ValidationError("--timeout must be between 1 and 3600 seconds") }
    }

    /// The API's base URL and the TLS trust to reach it with.
    func endpoint(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AdminEndpoint {
        let text: String
        switch (adminURL, config) {
        case (.some, .some):
            throw ToolFailure(description: "give --admin or --config, not both")
        case (.some(let url), nil):
            text = url
        case (nil, .some(let path)):
            text = try Self.url(fromConfig: path)
        case (nil, nil):
            guard let url = environment["TOLLGATE_ADMIN_URL"], !url.isEmpty else {
                throw ToolFailure(description: "where is the admin API? Give --admin URL (e.g. https://gate.example:9440), --config FILE (the gate's configuration), or set TOLLGATE_ADMIN_URL")
            }
            text = url
        }
        return try AdminEndpoint(text, caFile: caFile, allowPlaintext: allowPlaintext)
    }

    /// `admin.listen` of the gate's configuration, https when the listener has TLS. A wildcard
    /// listen address is reached on loopback.
    static func url(fromConfig path: String) throws -> String {
        let config: GateConfig
        do {
            config = try GateConfig.load(path: path, requireSecrets: false)
        } catch {
            throw ToolFailure(description: "\(error)")
        }
        guard let admin = config.admin else {
            throw ToolFailure(description: "\(path): no 'admin:' section, so the gate serves no admin API")
        }
        var host = admin.listen.host
        if host == "0.0.0.0" || host == "*" { host = "127.0.0.1" }
        if host == "::" { host = "::1" }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "\(admin.tls == nil ? "http" : "https")://\(hostPart):\(admin.listen.port)"
    }

    /// The bearer token: `--token-file`, else `$TOLLGATE_TOKEN`, surrounding whitespace trimmed.
    func token(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let token: String
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else {
                throw ToolFailure(description: "cannot read the token file \(tokenFile)")
            }
            token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw ToolFailure(description: "the token file \(tokenFile) is empty") }
        } else {
            token = (environment["TOLLGATE_TOKEN"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else {
                throw ToolFailure(description: "no bearer token: set TOLLGATE_TOKEN to an OIDC token from the gate's issuer, or give --token-file FILE (a token is never taken from the arguments)")
            }
        }
        // A header value cannot hold line breaks; a file with several lines is not one token.
        guard !token.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw ToolFailure(description: "the token holds control characters or several lines; give one token")
        }
        return token
    }
}

/// The admin API's base URL, checked: http or https, a host, and plain http only to loopback
/// unless allowed. There is no way to skip certificate verification: a private CA is given
/// with `--ca-file`.
struct AdminEndpoint: Sendable {
    let base: String
    let isTLS: Bool
    let caFile: String?

    init(_ text: String, caFile: String?, allowPlaintext: Bool) throws {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty else {
            throw ToolFailure(description: "the admin URL '\(text)' is not an http:// or https:// URL with a host")
        }
        guard url.query == nil, url.fragment == nil, url.user == nil else {
            throw ToolFailure(description: "the admin URL '\(text)' must be a base URL, without user, query or fragment")
        }
        isTLS = scheme == "https"
        let bare = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        let loopback = bare == "localhost" || bare == "::1" || bare.hasPrefix("127.")
        if !isTLS, !loopback, !allowPlaintext {
            throw ToolFailure(description: "\(text) is plain http to a host that is not loopback: the token would cross the network in clear. Use https (with --ca-file for a private CA), or --allow-plaintext")
        }
        if caFile != nil, !isTLS {
            throw ToolFailure(description: "--ca-file is for https; \(text) is plain http")
        }
        var base = text
        while base.hasSuffix("/") { base.removeLast() }
        self.base = base
        self.caFile = caFile
    }
}
