import GateRuntime
import Logging
import NIOSSL
import ProxyCore

/// The TLS client contexts the gate uses towards each target's database, made once at start.
/// A context that cannot be made is a start-up error naming the target and the cause: the gate
/// never falls back to plaintext because its TLS could not be set up.
struct UpstreamTLSContexts: Sendable {
    let byTarget: [String: NIOSSLContext]

    subscript(target: String) -> NIOSSLContext? { byTarget[target] }

    init(_ targets: [TargetConfig], logger: Logger) throws {
        var contexts: [String: NIOSSLContext] = [:]
        for target in targets where target.upstreamTLS != .disable {
            do {
                contexts[target.name] = try NIOSSLContext(configuration: Self.configuration(target))
            } catch {
                throw GateError("target \(target.name): upstream TLS (\(target.upstreamTLS.rawValue)) cannot be set up: \(error)")
            }
            // A credential broker hands its password to the server it reaches: beyond loopback,
            // an unverified server may be anyone on the path.
            if !target.upstreamVerified && !target.upstream.isLoopback {
                logger.warning("upstream TLS does not verify the database's certificate; use upstream_tls: verify-full",
                               metadata: ["target": "\(target.name)", "upstream": "\(target.upstream)",
                                          "upstream_tls": "\(target.upstreamTLS.rawValue)"])
            }
        }
        for plain in targets where plain.upstreamTLS == .disable && !plain.upstream.isLoopback {
            logger.warning("upstream TLS is disabled: the gate's login and every statement cross the network in clear",
                           metadata: ["target": "\(plain.name)", "upstream": "\(plain.upstream)"])
        }
        byTarget = contexts
    }

    static func configuration(_ target: TargetConfig) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch target.upstreamTLS {
        case .disable, .prefer, .require:
            // As libpq's sslmode=prefer/require: encrypts, does not verify the server.
            tls.certificateVerification = .none
        case .verifyCA, .verifyFull:
            guard let caFile = target.upstreamCAFile else { throw GateError("no upstream_ca_file") }
            // Loaded now, not when the first session connects: an unreadable file fails the start.
            let roots = try NIOSSLCertificate.fromPEMFile(caFile)
            guard !roots.isEmpty else { throw GateError("no PEM certificate in \(caFile)") }
            tls.trustRoots = .certificates(roots)
            tls.certificateVerification = target.upstreamTLS == .verifyFull ? .fullVerification : .noHostnameVerification
        }
        return tls
    }
}

extension TargetConfig {
    /// The name sent as TLS SNI and, under verify-full, checked against the certificate: the
    /// configured server name, else the upstream's host unless it is an IP address (NIOSSL then
    /// checks the address it connected to against the certificate's IP names).
    var upstreamTLSHostname: String? {
        if let upstreamServerName { return upstreamServerName }
        let host = upstream.host
        return host.first?.isNumber == true || host.contains(":") ? nil : host
    }
}
