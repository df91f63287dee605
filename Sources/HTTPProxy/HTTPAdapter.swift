import CaptureFormat
import GateRuntime
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ProxyCore

/// What HTTP targets (`protocol: http`) bring to the gate: client-side TLS, upstream TLS
/// (verified against the target's CA file and name), and for each accepted connection the
/// framing handler and an `HTTPSessionHandler`.
public final class HTTPAdapter: ProtocolAdapter {
    public static let version = "0.1.0"
    public var protocolKind: TargetConfig.ProtocolKind { .http }
    /// The facts HTTP requests are decided on (see `ProtocolInspectors`).
    public let inspector = HTTPRequestInspector()
    let tlsContexts: [String: NIOSSLContext]
    let upstreamTLS: [String: NIOSSLContext]

    public init(config: GateConfig, logger: Logger) throws {
        var listeners: [String: NIOSSLContext] = [:], upstreams: [String: NIOSSLContext] = [:]
        for target in config.targets where target.protocolKind == .http {
            if let cert = target.tlsCertificate, let key = target.tlsKey {
                do {
                    let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
                    let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
                    var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
                    tls.applicationProtocols = ["http/1.1"]
                    listeners[target.name] = try NIOSSLContext(configuration: tls)
                } catch {
                    throw GateError("target \(target.name): TLS certificate or key: \(error)")
                }
            }
            guard target.upstreamTLS != .disable else {
                if !target.upstream.isLoopback {
                    logger.warning("upstream TLS is disabled: requests and the upstream credential cross the network in clear",
                                   metadata: ["target": "\(target.name)", "upstream": "\(target.upstream)"])
                }
                continue
            }
            do {
                guard let caFile = target.upstreamCAFile else { throw GateError("no upstream_ca_file") }
                let roots = try NIOSSLCertificate.fromPEMFile(caFile)
                guard !roots.isEmpty else { throw GateError("no PEM certificate in \(caFile)") }
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.trustRoots = .certificates(roots)
                tls.certificateVerification = .fullVerification
                tls.applicationProtocols = ["http/1.1"]
                if case .clientCertificate(let certificate, let key) = target.http?.credential {
                    tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                    tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
                }
                upstreams[target.name] = try NIOSSLContext(configuration: tls)
            } catch {
                throw GateError("target \(target.name): upstream TLS cannot be set up: \(error)")
            }
        }
        tlsContexts = listeners
        upstreamTLS = upstreams
    }

    /// The TLS server name sent and checked: the configured one, else the upstream's host unless
    /// it is an IP address (NIOSSL then checks the address against the certificate's IP names).
    static func serverName(_ target: TargetConfig) -> String? {
        if let name = target.upstreamServerName { return name }
        let host = target.upstream.host
        return host.first?.isNumber == true || host.contains(":") ? nil : host
    }

    /// The negotiated TLS version as the capture's session start names it.
    static func name(of version: TLSVersion) -> String {
        switch version {
        case .tlsv1: "TLSv1.0"
        case .tlsv11: "TLSv1.1"
        case .tlsv12: "TLSv1.2"
        case .tlsv13: "TLSv1.3"
        }
    }

    public func initializeConnection(_ channel: any Channel, target: TargetConfig, gate: Gate) throws {
        let ops = channel.pipeline.syncOperations
        if let tls = tlsContexts[target.name] { try ops.addHandler(NIOSSLServerHandler(context: tls)) }
        try ops.addHandler(IdleStateHandler(readTimeout: TimeAmount.nanoseconds(target.idleTimeout.nanoseconds)))
        let settings = target.http ?? HTTPTargetSettings()
        let session = HTTPSessionHandler(gate: gate, adapter: self, target: target)
        if tlsContexts[target.name] != nil { session.tls = TLSInfo(version: "TLS", cipher: "") }
        // Refusals come down the pipeline to the session, which answers them in turn (after
        // the responses to the requests before them) and records them.
        try ops.addHandler(HTTPFramingHandler(limits: HTTPLimits(maxHeaderBytes: settings.maxHeaderBytes, maxBodyBytes: settings.maxBodyBytes),
                                              answersRefusals: false))
        try ops.addHandler(session)
    }
}
