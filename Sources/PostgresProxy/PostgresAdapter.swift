import CaptureFormat
import Foundation
import Identity
import Logging
import Masking
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Policy
import PostgresWire
import ProxyCore
import GateRuntime
import Synchronization

let gateVersion = "0.1.0"

/// What PostgreSQL targets need beyond the gate every protocol shares: the cancel registry,
/// statement inspection and each target's catalog, client-side TLS, upstream TLS. It sets up
/// each accepted connection with a `PostgresSessionHandler`.
public final class PostgresAdapter: ProtocolAdapter {
    public var protocolKind: TargetConfig.ProtocolKind { .postgres }
    let cancels = CancelRegistry()
    /// Every request is inspected, with or without policies: the recorded facts (statement kinds,
    /// tables, fingerprints) are what investigators search by.
    let inspector: SQLRequestInspector
    /// Each target's relations and columns, for column rules and search-path resolution.
    let catalogs: [String: CatalogCache]
    let tlsContexts: [String: NIOSSLContext]
    let upstreamTLS: UpstreamTLSContexts
    let logger: Logger

    public init(config: GateConfig, logger: Logger) throws {
        self.logger = logger
        var catalogs: [String: CatalogCache] = [:]
        for t in config.targets { catalogs[t.name] = CatalogCache() }
        self.catalogs = catalogs
        inspector = SQLRequestInspector(catalogs: catalogs)
        var contexts: [String: NIOSSLContext] = [:]
        for target in config.targets {
            guard let cert = target.tlsCertificate, let key = target.tlsKey else { continue }
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
                // Loaded as PEM explicitly: NIOSSL would guess the format from the file name.
                let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
                let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
                contexts[target.name] = try NIOSSLContext(configuration: tls)
            } catch {
                throw GateError("target \(target.name): TLS certificate or key: \(error)")
            }
        }
        tlsContexts = contexts
        upstreamTLS = try UpstreamTLSContexts(config.targets, logger: logger)
    }


    static func policyState(_ config: GateConfig, inspector: SQLRequestInspector, generation: Int) -> PolicyState {
        let masking = MaskingSetup(config)
        let policy: any RequestPolicy = config.policies.policies.isEmpty ? AllowAll() : PolicyEnforcement(config.policies)
        return PolicyState(pipeline: ExchangePipeline(inspector: inspector, policy: policy, masking: masking),
                           enforcing: !config.policies.policies.isEmpty, generation: generation, credentials: config.upstreamCredentials)
    }

    /// Whether a session needs the target's catalog: column rules identify columns by it, and
    /// policies resolve unqualified names with it.
    func needsCatalog(_ session: SessionContext, policies: PolicyStore) -> Bool {
        let state = policies.current
        return state.enforcing || state.pipeline.masking.masker(for: session)?.hasColumnRules == true
    }

    /// The policies for a configuration, with this adapter's inspector (a reload makes the next generation).
    public func policies(_ config: GateConfig, generation: Int) -> PolicyState {
        Self.policyState(config, inspector: inspector, generation: generation)
    }

    public func initializeConnection(_ channel: any Channel, target: TargetConfig, gate: Gate) throws {
        let ops = channel.pipeline.syncOperations
        try ops.addHandler(IdleStateHandler(readTimeout: TimeAmount.nanoseconds(target.idleTimeout.nanoseconds)))
        try ops.addHandler(PostgresSessionHandler(gate: PostgresGate(gate: gate, postgres: self), target: target))
    }
}

/// What a PostgreSQL session reaches: the gate every protocol shares and this adapter's parts.
struct PostgresGate {
    let gate: Gate
    let postgres: PostgresAdapter

    var config: GateConfig { gate.config }
    var logger: Logger { gate.logger }
    var verifier: OIDCVerifier { gate.verifier }
    var signingKey: SigningKey { gate.signingKey }
    var policies: PolicyStore { gate.policies }
    var writerThreads: WriterThreads { gate.writerThreads }
    var cancels: CancelRegistry { postgres.cancels }
    var catalogs: [String: CatalogCache] { postgres.catalogs }
    var tlsContexts: [String: NIOSSLContext] { postgres.tlsContexts }
    var upstreamTLS: UpstreamTLSContexts { postgres.upstreamTLS }
    var inspector: SQLRequestInspector { postgres.inspector }

    func needsCatalog(_ session: SessionContext) -> Bool { postgres.needsCatalog(session, policies: gate.policies) }

    func sessionStarted(_ handler: PostgresSessionHandler, channel: any Channel) {
        guard let session = handler.session else { return }
        gate.sessions.started(session.sessionID, channel: channel,
                              listing: LiveSession(id: session.sessionID, target: session.target, subject: session.subject, groups: session.groups,
                                                   clientAddress: session.clientAddress, applicationName: session.applicationName))
    }

    func sessionEnding(_ id: String) { gate.sessions.ending(id) }
    func sessionEnded(_ id: String) { gate.sessions.ended(id) }
}
