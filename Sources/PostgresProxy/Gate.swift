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
import Synchronization

let gateVersion = "0.1.0"

/// The running gate: one listener per PostgreSQL target, shared identity verifier,
/// signing key, cancel registry and pipeline; tracks live sessions for graceful shutdown.
public final class PostgresGate: Sendable {
    public let config: GateConfig
    let verifier: OIDCVerifier
    let signingKey: SigningKey
    let cancels = CancelRegistry()
    /// The policies and masks in force, swapped whole by a reload (SIGHUP): requests decided
    /// after the swap use the new ones, sessions stay open.
    let policies: PolicyStore
    /// Every request is inspected, with or without policies: the recorded facts (statement kinds,
    /// tables, fingerprints) are what investigators search by.
    let inspector: SQLRequestInspector
    /// Each target's relations and columns, for column rules and search-path resolution.
    let catalogs: [String: CatalogCache]
    let tlsContexts: [String: NIOSSLContext]
    let upstreamTLS: UpstreamTLSContexts
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    /// Where the sessions' captures are written: one idle-priority thread per usable core.
    let writerThreads = WriterThreads(count: PostgresGate.usableCores())
    let servers = NIOLockedValueBox<[Channel]>([])
    /// Live client channels by session id, and sessions whose capture is still being sealed.
    let live = NIOLockedValueBox<(channels: [String: Channel], sealing: Set<String>)>(([:], []))

    public init(config: GateConfig, verifier: OIDCVerifier, logger: Logger) throws {
        self.config = config
        self.verifier = verifier
        var catalogs: [String: CatalogCache] = [:]
        for t in config.targets { catalogs[t.name] = CatalogCache() }
        self.catalogs = catalogs
        inspector = SQLRequestInspector(catalogs: catalogs)
        policies = PolicyStore(PostgresGate.policyState(config, inspector: inspector, generation: 0))
        self.logger = logger
        do {
            signingKey = try SigningKey.loadOrCreate(path: config.proxy.signingKey)
        } catch {
            throw GateError("signing key: \(error)")
        }
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
        group = MultiThreadedEventLoopGroup(numberOfThreads: Self.eventLoops(config))
    }

    /// How many event loops a gate with `config` runs: `proxy.threads`, else one per usable core.
    public static func eventLoops(_ config: GateConfig) -> Int {
        config.proxy.threads ?? usableCores()
    }

    /// Cores this process may run on: a container's CPU limit or cpuset (NIO's `System.coreCount`)
    /// and its CPU affinity (taskset, systemd's CPUAffinity=), not the host's core count.
    /// More event loops than cores only adds context switches.
    static func usableCores() -> Int {
        var cores = System.coreCount
        #if os(Linux)
        // Glibc's sched_getaffinity is not visible to Swift without _GNU_SOURCE; the kernel shows the mask here.
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8), let allowed = cpusAllowed(status: status) {
            cores = min(cores, allowed)
        }
        #endif
        return max(1, cores)
    }

    /// The number of CPUs in a `/proc/PID/status` affinity mask ("Cpus_allowed:\tff,ffffffff").
    static func cpusAllowed(status: String) -> Int? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return nil }
        let allowed = line.dropFirst("Cpus_allowed:".count).reduce(0) { n, c in n + (c.hexDigitValue?.nonzeroBitCount ?? 0) }
        return allowed > 0 ? allowed : nil
    }

    static func policyState(_ config: GateConfig, inspector: SQLRequestInspector, generation: Int) -> PolicyState {
        let masking = MaskingSetup(config)
        let policy: any RequestPolicy = config.policies.policies.isEmpty ? AllowAll() : PolicyEnforcement(config.policies)
        return PolicyState(pipeline: ExchangePipeline(inspector: inspector, policy: policy, masking: masking),
                           enforcing: !config.policies.policies.isEmpty, generation: generation, credentials: config.upstreamCredentials)
    }

    /// Takes the policies and masks of a newly read configuration. Listeners, targets and
    /// identity settings need a restart; a reload changes what is allowed and masked, without
    /// dropping a session.
    public func reload(_ config: GateConfig) {
        policies.replace { PostgresGate.policyState(config, inspector: inspector, generation: $0) }
        logger.notice("policies reloaded", metadata: ["policies": "\(config.policies.policies.count)"])
    }

    /// Whether a session needs the target's catalog: column rules identify columns by it, and
    /// policies resolve unqualified names with it.
    func needsCatalog(_ session: SessionContext) -> Bool {
        let state = policies.current
        return state.enforcing || state.pipeline.masking.masker(for: session)?.hasColumnRules == true
    }

    /// Binds every target's listener. Fails (and binds nothing) if any address is taken.
    public func start() async throws {
        for target in config.targets where target.protocolKind == .postgres {
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.autoRead, value: true)
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        let ops = channel.pipeline.syncOperations
                        try ops.addHandler(IdleStateHandler(readTimeout: TimeAmount.nanoseconds(target.idleTimeout.nanoseconds)))
                        try ops.addHandler(PostgresSessionHandler(gate: self, target: target))
                    }
                }
            do {
                let channel = try await bootstrap.bind(host: target.listen.host, port: target.listen.port).get()
                servers.withLockedValue { $0.append(channel) }
                logger.info("listening", metadata: ["target": "\(target.name)", "listen": "\(target.listen)", "upstream": "\(target.upstream)"])
            } catch {
                await stopListening()
                throw GateError("target \(target.name): cannot listen on \(target.listen): \(error)")
            }
        }
    }

    /// The bound address of each listener (useful when a config asks for port 0).
    public var listeningAddresses: [SocketAddress] {
        servers.withLockedValue { $0.compactMap(\.localAddress) }
    }

    func stopListening() async {
        let channels = servers.withLockedValue { s in defer { s = [] }; return s }
        for c in channels { try? await c.close() }
    }

    func sessionStarted(_ handler: PostgresSessionHandler, channel: Channel) {
        guard let id = handler.session?.sessionID else { return }
        live.withLockedValue { $0.channels[id] = channel }
    }

    func sessionEnding(_ id: String) {
        live.withLockedValue { state in
            state.channels[id] = nil
            state.sealing.insert(id)
        }
    }

    func sessionEnded(_ id: String) {
        _ = live.withLockedValue { $0.sealing.remove(id) }
    }

    var liveSessions: Int { live.withLockedValue { $0.channels.count + $0.sealing.count } }

    /// Graceful shutdown: stop accepting, let sessions finish for up to `grace`, then close
    /// the rest; returns once every capture is sealed.
    public func shutdown(grace: Duration) async {
        await stopListening()
        logger.info("shutting down", metadata: ["sessions": "\(liveSessions)", "grace": "\(grace)"])
        let deadline = ContinuousClock.now + grace
        while live.withLockedValue({ !$0.channels.isEmpty }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
        }
        let remaining = live.withLockedValue { Array($0.channels.values) }
        for channel in remaining {
            channel.pipeline.fireUserInboundEventTriggered(GateShutdown())
        }
        // Sealing a capture is a few writes; wait for all of them.
        let sealDeadline = ContinuousClock.now + .seconds(30)
        while liveSessions > 0, ContinuousClock.now < sealDeadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        try? await group.shutdownGracefully()
    }
}

/// Sent to sessions still open when the shutdown grace period ends.
struct GateShutdown {}

public struct GateError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

