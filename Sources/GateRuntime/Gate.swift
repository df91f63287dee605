import Approvals
import CaptureFormat
import Foundation
import Identity
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProxyCore
import ServiceLifecycle

/// The running gate, whatever its targets' protocols: one listener per target, handed to the
/// adapter of the target's protocol; the identity verifier, signing key, policies and writer
/// threads every session shares; the live sessions; reload; graceful shutdown as a
/// swift-service-lifecycle `Service`.
public final class Gate: Service, Sendable {
    public let config: GateConfig
    public let verifier: OIDCVerifier
    public let signingKey: SigningKey
    /// The policies and masks in force, swapped whole by a reload (SIGHUP): requests decided
    /// after the swap use the new ones, sessions stay open.
    public let policies: PolicyStore
    public let logger: Logger
    public let group: MultiThreadedEventLoopGroup
    /// Where the sessions' captures are written: one idle-priority thread per usable core.
    public let writerThreads: WriterThreads
    public let sessions = LiveSessions()
    /// Each target's exchange counters and latencies, shared by its sessions.
    public let exchangeMetrics: [String: ExchangeMetrics]
    /// Held requests, approvers' decisions, grants and the admin audit (`approvals.store`).
    public let approvals: Approvals
    let adapters: [TargetConfig.ProtocolKind: any ProtocolAdapter]
    let makePolicies: @Sendable (GateConfig, Int) -> PolicyState
    let listeners = NIOLockedValueBox<[any Channel]>([])

    /// `policies`: the policy state for a configuration and a generation (its inspector is the
    /// adapters' concern). `approvalObservers` hear every approval change besides the gate's
    /// approval metrics (the webhooks). Fails if the signing key cannot be loaded or created.
    public init(config: GateConfig, verifier: OIDCVerifier, logger: Logger, adapters: [any ProtocolAdapter],
                policies: @escaping @Sendable (GateConfig, Int) -> PolicyState, approvalObservers: [ApprovalObserver] = []) throws {
        self.config = config
        self.verifier = verifier
        self.logger = logger
        self.adapters = Dictionary(adapters.map { ($0.protocolKind, $0) }, uniquingKeysWith: { first, _ in first })
        makePolicies = policies
        self.policies = PolicyStore(policies(config, 0))
        do {
            signingKey = try SigningKey.loadOrCreate(path: config.proxy.signingKey)
        } catch {
            throw GateError("signing key: \(error)")
        }
        do {
            // Beside the captures by default, whose directory may not exist yet (0700, as the gate makes it).
            try FileManager.default.createDirectory(atPath: (config.approvals.store as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let metrics = ApprovalMetrics()
            approvals = Approvals(store: try SQLiteApprovalStore(path: config.approvals.store),
                                  observers: [{ metrics.observe($0) }] + approvalObservers)
        } catch {
            throw GateError("approvals store: \(error)")
        }
        writerThreads = WriterThreads(count: EventLoops.usableCores())
        exchangeMetrics = Dictionary(uniqueKeysWithValues: config.targets.map { ($0.name, ExchangeMetrics(target: $0.name)) })
        group = MultiThreadedEventLoopGroup(numberOfThreads: EventLoops.count(config))
    }

    /// Takes the policies and masks of a newly read configuration. Listeners, targets and
    /// identity settings need a restart; a reload changes what is allowed and masked, without
    /// dropping a session.
    public func reload(_ config: GateConfig) {
        policies.replace { makePolicies(config, $0) }
        logger.notice("policies reloaded", metadata: ["policies": "\(config.policies.policies.count)"])
    }

    /// Binds every target's listener, each with its protocol's adapter. Fails (and binds nothing)
    /// if an address is taken or a target's protocol has no adapter.
    public func start() async throws {
        for target in config.targets {
            guard let adapter = adapters[target.protocolKind] else {
                await stopListening()
                throw GateError("target \(target.name): protocol \(target.protocolKind.rawValue) is not served by this gate")
            }
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.autoRead, value: true)
                .childChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture { try adapter.initializeConnection(channel, target: target, gate: self) }
                }
            do {
                let channel = try await bootstrap.bind(host: target.listen.host, port: target.listen.port).get()
                listeners.withLockedValue { $0.append(channel) }
                logger.info("listening", metadata: ["target": "\(target.name)", "listen": "\(target.listen)", "upstream": "\(target.upstream)"])
            } catch {
                await stopListening()
                throw GateError("target \(target.name): cannot listen on \(target.listen): \(error)")
            }
        }
    }

    /// The bound address of each listener (useful when a config asks for port 0).
    public var listeningAddresses: [SocketAddress] {
        listeners.withLockedValue { $0.compactMap(\.localAddress) }
    }

    func stopListening() async {
        let channels = listeners.withLockedValue { s in defer { s = [] }; return s }
        for c in channels { try? await c.close() }
    }

    /// As a service: listens until the service group's graceful shutdown (SIGTERM, SIGINT), then
    /// drains.
    public func run() async throws {
        // What a previous run left pending is abandoned: its clients are gone.
        let abandoned = try await approvals.start()
        if !abandoned.isEmpty { logger.notice("approvals left pending by the last run marked abandoned", metadata: ["count": "\(abandoned.count)"]) }
        try await start()
        for address in listeningAddresses { logger.info("ready", metadata: ["address": "\(address)"]) }
        try? await gracefulShutdown()
        logger.info("shutdown requested")
        await shutdown(grace: config.proxy.shutdownGrace)
    }

    /// Graceful shutdown: stop accepting, let sessions finish for up to `grace`, then close the
    /// rest as their protocol's server would; returns once every capture is sealed and the
    /// writer threads have exited.
    public func shutdown(grace: Duration) async {
        await stopListening()
        logger.info("shutting down", metadata: ["sessions": "\(sessions.count)", "grace": "\(grace)"])
        await sessions.wait(untilNone: true, deadline: .now + grace)
        for channel in sessions.openChannels {
            channel.pipeline.fireUserInboundEventTriggered(GateShutdown())
        }
        // Sealing a capture is a few writes; wait for all of them.
        await sessions.wait(untilNone: false, deadline: .now + .seconds(30))
        try? await group.shutdownGracefully()
        await writerThreads.stop()
        logger.info("stopped: every capture is sealed")
    }
}

/// How many event loops a gate runs, and on how many cores.
public enum EventLoops {
    /// `proxy.threads`, else one per usable core.
    public static func count(_ config: GateConfig) -> Int {
        config.proxy.threads ?? usableCores()
    }

    /// Cores this process may run on: a container's CPU limit or cpuset (NIO's `System.coreCount`)
    /// and its CPU affinity (taskset, systemd's CPUAffinity=), not the host's core count.
    /// More event loops than cores only adds context switches.
    public static func usableCores() -> Int {
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
    public static func cpusAllowed(status: String) -> Int? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return nil }
        let allowed = line.dropFirst("Cpus_allowed:".count).reduce(0) { n, c in n + (c.hexDigitValue?.nonzeroBitCount ?? 0) }
        return allowed > 0 ? allowed : nil
    }
}

public struct GateError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
