import ArgumentParser
import Foundation
import Masking
import NIOSSL

/// The options that only an http:// or https:// --target takes.
struct HTTPReplayOptions: ParsableArguments {
    @Option(name: .customLong("token-file"), help: ArgumentHelp("HTTP: the bearer token for the target, read from FILE (not readable by group or others). Else SESSREPLAY_TOKEN, or basic auth from SESSREPLAY_BASIC_USER and SESSREPLAY_BASIC_PASSWORD.", valueName: "FILE"))
    var tokenFile: String?

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("HTTP: the CA certificates (PEM) that the target's certificate is verified against (else the system's).", valueName: "FILE"))
    var caFile: String?

    @Option(name: .customLong("server-name"), help: ArgumentHelp("HTTP: the name the target's certificate is verified for (and sent as SNI and Host), when it is not the URL's host.", valueName: "NAME"))
    var serverName: String?

    @Flag(name: .customLong("insecure-skip-tls-verify"), help: "HTTP: do not verify the target's certificate (encrypted, not authenticated).")
    var insecureSkipTLSVerify = false

    @Option(name: .customLong("mask"), help: ArgumentHelp("HTTP: also mask responses with this built-in detector or group (all, email, us_ssn, phone, credit_card, iban, secrets…); repeatable.", valueName: "NAME"))
    var masks: [String] = []

    @Option(name: .customLong("mask-regex"), help: ArgumentHelp("HTTP: also mask responses with the pattern NAME=REGEX (the gate's custom mask of that name); repeatable.", valueName: "NAME=REGEX"))
    var maskRegexes: [String] = []

    @Option(name: .customLong("request-timeout"), help: ArgumentHelp("HTTP: seconds a request may take, response included (default 60).", valueName: "S"))
    var requestTimeout: Double = 60

    var given: Bool {
        tokenFile != nil || caFile != nil || serverName != nil || insecureSkipTLSVerify || !masks.isEmpty || !maskRegexes.isEmpty
    }
}

/// Where the HTTP replay sends requests, and with which credential. The credential comes from a
/// file or the environment, never from the command line: a URL with a user or password is refused.
struct HTTPTarget: Sendable {
    var scheme: String
    var host: String
    var port: Int
    /// The path prefix the recorded targets are appended to ("" for none).
    var basePath: String
    /// The value of the Authorization field sent, if any; never printed or recorded.
    var authorization: String?
    /// Where the credential came from (never the credential), for messages.
    var credentialSource: String
    var serverName: String?

    var display: String { "\(scheme)://\(host):\(port)\(basePath)" }
    /// The URL's host part the client connects by: the server name when given (resolved to `host`).
    var requestHost: String { serverName ?? host }

    static func isHTTP(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower.hasPrefix("http://") || lower.hasPrefix("https://")
    }

    static func parse(_ text: String, options: HTTPReplayOptions,
                      environment env: [String: String] = ProcessInfo.processInfo.environment) throws -> HTTPTarget {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = url.host, !host.isEmpty else {
            throw Failure("--target \(text): not an http(s)://host[:port][/prefix] URL")
        }
        if url.user != nil || url.password != nil {
            throw Failure("--target: the URL holds a user or password; it would be in your shell history and the process list. Use --token-file, SESSREPLAY_TOKEN or SESSREPLAY_BASIC_USER/SESSREPLAY_BASIC_PASSWORD")
        }
        if url.query != nil || url.fragment != nil { throw Failure("--target \(text): no query or fragment (the recorded requests carry their own)") }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else { throw Failure("--target: bad port \(port)") }
        var base = url.percentEncodedPath
        while base.hasSuffix("/") { base.removeLast() }
        if scheme == "http", options.caFile != nil || options.serverName != nil || options.insecureSkipTLSVerify {
            throw Failure("--ca-file, --server-name and --insecure-skip-tls-verify are for an https:// target")
        }
        if options.insecureSkipTLSVerify, options.caFile != nil || options.serverName != nil {
            throw Failure("--insecure-skip-tls-verify verifies nothing: it cannot go with --ca-file or --server-name")
        }
        var target = HTTPTarget(scheme: scheme, host: host, port: port, basePath: base, authorization: nil, credentialSource: "none",
                                serverName: options.serverName)
        if let file = options.tokenFile {
            target.authorization = "Bearer " + (try Self.token(file))
            target.credentialSource = "--token-file \(file)"
        } else if let token = env["SESSREPLAY_TOKEN"], !token.isEmpty {
            try Self.check(token, "SESSREPLAY_TOKEN")
            target.authorization = "Bearer " + token
            target.credentialSource = "SESSREPLAY_TOKEN"
        } else if let user = env["SESSREPLAY_BASIC_USER"], !user.isEmpty {
            guard let password = env["SESSREPLAY_BASIC_PASSWORD"] else {
                throw Failure("SESSREPLAY_BASIC_USER is set without SESSREPLAY_BASIC_PASSWORD")
            }
            guard !user.contains(":") else { throw Failure("SESSREPLAY_BASIC_USER holds a colon: basic auth cannot carry it") }
            try Self.check(user + password, "SESSREPLAY_BASIC_USER/SESSREPLAY_BASIC_PASSWORD")
            target.authorization = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
            target.credentialSource = "SESSREPLAY_BASIC_USER"
        }
        return target
    }

    /// The token file's one line: it must exist, be readable by its owner only, and hold a token.
    static func token(_ file: String) throws -> String {
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: file) } catch {
            throw Failure("--token-file \(file): cannot read it: \(error.localizedDescription)")
        }
        if let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
            throw Failure("--token-file \(file): readable by group or others (mode \(String(mode & 0o777, radix: 8))); chmod 0600 it")
        }
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw Failure("--token-file \(file): cannot read it, or it is not UTF-8 text")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if token.isEmpty { throw Failure("--token-file \(file): empty") }
        try check(token, "--token-file \(file)")
        return token
    }

    /// A field value cannot carry a line break or another control character.
    static func check(_ value: String, _ what: String) throws {
        if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) {
            throw Failure("\(what): holds a line break or another control character: not a token")
        }
    }

    /// TLS for an https target: verified against --ca-file (else the system's roots) for the host
    /// or --server-name; nothing verified only with --insecure-skip-tls-verify.
    func tls(_ options: HTTPReplayOptions) throws -> TLSConfiguration? {
        guard scheme == "https" else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        if options.insecureSkipTLSVerify {
            tls.certificateVerification = .none
        } else if let ca = options.caFile {
            do { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca)) } catch {
                throw Failure("--ca-file \(ca): not PEM certificates: \(error)")
            }
        }
        return tls
    }
}

/// The masks a replay's recorded responses go through: the detectors the original session's
/// gate applied (its mask summaries), those named with --mask or --mask-regex, and the secrets
/// pass always. A detector the original applied that the replay cannot (a custom pattern not
/// given) refuses the replay: its capture could hold what the gate's masked.
struct ReplayMasks: Sendable {
    let session: Masker?
    let secrets: Masker
    /// Kubernetes Secret values, masked in every JSON response of a Kubernetes capture.
    let kubernetes: Bool

    static func make(fired: Set<String>, options: HTTPReplayOptions, kubernetes: Bool) throws -> ReplayMasks {
        var detectors = Set<BuiltinDetector>()
        var patterns: [CustomPattern] = []
        for name in options.masks {
            guard let d = BuiltinDetector.named(name) else { throw Failure("--mask \(name): no such built-in detector") }
            detectors.formUnion(d)
        }
        for text in options.maskRegexes {
            guard let eq = text.firstIndex(of: "="), eq != text.startIndex else { throw Failure("--mask-regex \(text): give NAME=REGEX") }
            patterns.append(CustomPattern(name: String(text[..<eq]), pattern: String(text[text.index(after: eq)...])))
        }
        var unknown: [String] = []
        for name in fired where name != KubernetesSecretMasking.detectorName.rawValue {
            if let d = BuiltinDetector(rawValue: name) { detectors.insert(d) } else if !patterns.contains(where: { $0.name == name }) { unknown.append(name) }
        }
        if !unknown.isEmpty {
            throw Failure("the recorded session was masked with \(unknown.sorted().joined(separator: ", ")), which sessreplay does not know: give each as --mask-regex NAME=REGEX (the gate's pattern), so that the replay's capture is masked as the original was")
        }
        let session: Masker?
        do { session = detectors.isEmpty && patterns.isEmpty ? nil : try Masker(detectors: detectors, customPatterns: patterns) } catch {
            throw Failure("--mask-regex: \(error)")
        }
        return ReplayMasks(session: session, secrets: try! Masker(detectors: BuiltinDetector.secrets), kubernetes: kubernetes)
    }
}
