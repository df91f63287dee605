import AdminAPI
import Webhooks
import ArgumentParser
import Metrics
import Prometheus
import CaptureFormat
import Dispatch
import Forensics
import Foundation
import Identity
import Logging
import Policy
import GateRuntime
import HTTPProxy
import PostgresProxy
import ServiceLifecycle
import UnixSignals
import ProxyCore
import SQLInspection

struct CaptureProxy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture-proxy",
        abstract: "The Tollgate gate: verifies OIDC identities, brokers credentials and records every session.",
        discussion: "Exit status: 0 on success (check: the configuration is valid); 2 on errors (approvals, grants: 1 when nothing is listed).",
        subcommands: [Run.self, Check.self, Explain.self, PublicKey.self, ApprovalsCommand.self, GrantsCommand.self]
    )
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The gate's configuration (YAML).", valueName: "FILE"))
    var config: String

    func load(requireSecrets: Bool = true) throws -> GateConfig {
        do {
            return try GateConfig.load(path: config, requireSecrets: requireSecrets)
        } catch let error as ConfigError {
            throw ToolFailure(description: "\(error)")
        }
    }
}

struct ToolFailure: Error, CustomStringConvertible { var description: String }

extension GateConfig.IdentitySettings {
    func identityConfiguration() throws(IdentityError) -> IdentityConfiguration {
        try IdentityConfiguration(issuer: issuer, audiences: audiences, groupsClaim: groupsClaim, subjectClaim: subjectClaim,
                                  clockSkew: clockSkew, staticJWKSPath: jwksFile)
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start the gate: one listener per target, until SIGTERM or SIGINT; SIGHUP reloads the policies.")

    @OptionGroup var options: ConfigOption

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func run() async throws {
        let config = try options.load()
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level '\(logLevel)'") }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "capture-proxy")
        // Every swift-metrics counter of the gate lands here; the admin API serves it at /metrics.
        let metrics = PrometheusCollectorRegistry()
        var metricsFactory = PrometheusMetricsFactory(registry: metrics)
        metricsFactory.durationHistogramBuckets[ApprovalMetrics.waitLabel] = ApprovalMetrics.waitBuckets
        MetricsSystem.bootstrap(metricsFactory)
        let verifier: OIDCVerifier
        do {
            verifier = OIDCVerifier(configuration: try config.identity.identityConfiguration())
        } catch {
            throw ToolFailure(description: "identity: \(error)")
        }
        // Load the issuer's keys now: a wrong issuer or an unreachable provider fails at launch, not at the first login.
        do {
            try await verifier.refresh()
        } catch {
            throw ToolFailure(description: "identity: cannot load the issuer's keys: \(error)\(error.operatorDetail.map { " (\($0))" } ?? "")")
        }
        let postgres = try PostgresAdapter(config: config, logger: logger)
        // Approval changes reach the receivers through the dispatcher's queues: the service never waits on them.
        let webhooks = config.webhooks.isEmpty ? nil : WebhookDispatcher(receivers: config.webhooks, gate: config.proxy.id, logger: logger)
        let pageURL = config.approvals.pageURL
        let http = try HTTPAdapter(config: config, logger: logger)
        let httpInspector = http.inspector
        // One policy pipeline for every target: each request is inspected by its protocol's inspector.
        let gate = try Gate(config: config, verifier: verifier, logger: logger, adapters: [postgres, http],
                            policies: { config, generation in
                                let state = postgres.policies(config, generation: generation)
                                return state.inspecting(with: ProtocolInspectors(postgres: state.pipeline.inspector, http: httpInspector))
                            },
                            approvalObservers: webhooks.map { w in [{ w.submit(ApprovalWebhookEvent.make($0, pageURL: pageURL)) }] } ?? [])
        let load = options
        let reloader = ReloadOnHangup(gate: gate, logger: logger) { try load.load() }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: gate), .init(service: reloader)]
        if let webhooks {
            services.append(.init(service: webhooks))
        }
        if let admin = config.admin {
            services.append(.init(service: try AdminServer.service(gate: gate, settings: admin, registry: metrics,
                                                                   reload: { try load.load() }, logger: logger)))
        }
        // SIGTERM and SIGINT shut the gate down gracefully; a second one during the drain does not cut it short.
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// SIGHUP reloads the policies; a file that does not load keeps the running ones.
struct ReloadOnHangup: Service {
    let gate: Gate
    let logger: Logger
    let load: @Sendable () throws -> GateConfig

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            do {
                gate.reload(try load())
            } catch {
                logger.error("reload failed; keeping the running policies", metadata: ["error": "\(error)"])
            }
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a configuration; errors name the file, line and column.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let config = try options.load()
        let loops = EventLoops.count(config)
        print("\(options.config): OK: gate \(config.proxy.id), \(config.targets.count) target(s), \(loops) event loop\(loops == 1 ? "" : "s")"
              + (config.proxy.threads == nil ? " (one per usable core)" : ""))
        for hook in config.webhooks {
            print("  webhook \(hook.name): \(hook.format.rawValue) to \(hook.url.scheme ?? "")://\(hook.url.host ?? "")…, events: "
                  + (hook.events.isEmpty ? "all" : hook.events.sorted().joined(separator: ", ")) + ", secret: \(hook.secretSource), \(hook.attempts) attempts")
        }
        if let admin = config.admin {
            let tls = admin.tls != nil ? "TLS" : (admin.listen.isLoopback ? "plaintext (loopback)" : "plaintext (allowed)")
            print("  admin API: \(admin.listen), \(tls), operators: \(admin.groups.joined(separator: ", "))")
        }
        for t in config.targets {
            let tls = t.tlsCertificate != nil ? "TLS" : (t.listen.isLoopback ? "plaintext (loopback)" : "plaintext (allowed)")
            let account = t.protocolKind == .http ? "with upstream credential: \(t.credentials.source)"
                : "as \(t.credentials.user) (password: \(t.credentials.source))"
            print("  \(t.name): \(t.protocolKind.rawValue) \(t.listen) -> \(t.upstream) \(account), \(tls), recording \(t.recordDurability.rawValue)")
            if !t.masks.isEmpty { print("    masks: \(t.masks.map(\.label).joined(separator: ", "))") }
        }
        for p in config.policies.policies {
            let who = (p.groups.map { "group \($0)" } + p.subjects.map { "subject \($0)" }).joined(separator: ", ")
            print("  policy \(p.name): \(who) on \(p.targets.isEmpty ? "every target" : p.targets.joined(separator: ", ")), \(p.rules.count) rule(s)")
            if let c = config.policyCredentials[p.name] { print("    logs in as \(c.user) (password: \(c.source))") }
            if !p.masks.isEmpty { print("    masks: \(p.masks.map(\.label).joined(separator: ", "))") }
        }
    }
}

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dry run: inspect a SQL string and show the decision the configured policies would take, with its reasons.",
        discussion: "No database is needed. Exit status: 0 allowed, 1 denied or held for review, 2 on errors.")

    @OptionGroup var options: ConfigOption

    @Option(name: .long, help: "The subject (as the token's subject claim would give it).")
    var subject: String

    @Option(name: .long, help: "The subject's groups, comma-separated.")
    var groups: String = ""

    @Option(name: .long, help: "The target the statement is sent to.")
    var target: String

    @Option(name: .long, help: "Protocol path: simple, extended or function-call.")
    var path: String = "simple"

    @Option(name: .customLong("search-path"), help: "Schemas unqualified names resolve to, comma-separated.")
    var searchPath: String = "public"

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Option(name: .customLong("repeat"), help: ArgumentHelp("Also time N inspections and decisions, without and with the gate's cache, and print the rates on standard error.", valueName: "N"))
    var repetitions: Int?

    @Argument(help: "The SQL text.")
    var sql: String

    func run() throws {
        let config = try options.load(requireSecrets: false)
        guard config.targets.contains(where: { $0.name == target }) else { throw ToolFailure(description: "unknown target '\(target)'") }
        guard PostgresRequest.Path(name: path) != nil else {
            throw ValidationError("unknown path '\(path)' (\(PostgresRequest.Path.allCases.map(\.name).joined(separator: ", ")))")
        }
        let who = Principal(subject: subject, groups: groups.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        // The gate's own inspection, so that the dry run decides exactly as the gate would.
        let dry = SQLRequestInspector.explain(sql, searchPath: searchPath.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let facts = dry.facts, infos = dry.request.statements
        let fingerprint = dry.fingerprint, normalized = dry.normalized
        let decision = config.policies.decide(infos, who: who, target: target, path: path)
        let masks = MaskingSetup(config).specs(for: who, target: target)
        if json {
            var w = JSONWriter()
            w.object { o in
                o.string("decision", decision.action.name)
                o.string("policy", decision.policy)
                o.string("rule", decision.rule)
                o.string("reason", decision.reason)
                o.strings("approvers", decision.approvers)
                o.field("fingerprint", fingerprint)
                o.field("normalized", normalized)
                o.strings("masks", masks.map(\.label))
                o.array("statements") { a in
                    for (i, d) in decision.statements.enumerated() {
                        a.object { s in
                            let info = infos[i]
                            if i < facts.count { s.string("text", facts[i].text) }
                            s.string("kind", info.kind)
                            s.array("relations") { r in
                                for res in info.resources {
                                    r.object { $0.string("schema", res.schema); $0.string("name", res.name); $0.string("access", res.access.name) }
                                }
                            }
                            s.strings("functions", info.functions)
                            s.strings("unknown_functions", info.unknownFunctions)
                            s.bool("writes", info.writes)
                            s.strings("side_effects", info.sideEffects)
                            s.string("decision", d.action.name)
                            s.string("policy", d.policy)
                            s.string("rule", d.rule)
                            s.string("reason", d.reason)
                        }
                    }
                }
            }
            print(w.text)
        } else {
            print("decision: \(decision.action.name) (policy \(decision.policy.isEmpty ? "-" : decision.policy), rule \(decision.rule)): \(decision.reason)")
            if !decision.approvers.isEmpty { print("approvers: \(decision.approvers.joined(separator: ", "))") }
            print("masks: \(masks.isEmpty ? "none" : masks.map(\.label).joined(separator: ", "))")
            for (i, d) in decision.statements.enumerated() {
                let info = infos[i]
                print("statement \(i + 1): \(info.kind)" + (i < facts.count ? ": \(facts[i].text)" : ""))
                for r in info.resources { print("  \(r.access.name) \(r.qualifiedName)") }
                if !info.functions.isEmpty { print("  functions: \(info.functions.joined(separator: ", "))") }
                if !info.unknownFunctions.isEmpty {
                    print("  not shipped with PostgreSQL: \(info.unknownFunctions.joined(separator: ", ")) (see the policy's unknown_functions)")
                }
                print("  writes: \(info.writes)" + (info.sideEffects.isEmpty ? "" : " (\(info.sideEffects.joined(separator: "; ")))"))
                print("  -> \(d.action.name) by \(d.policy.isEmpty ? "-" : d.policy)/\(d.rule): \(d.reason)")
            }
        }
        if let repetitions, repetitions > 0 { timeInspection(config: config, who: who, times: repetitions) }
        if decision.action != .allow { throw ExitCode(1) }
    }

    /// What the gate spends per statement: a parse for every new text, a lookup for a repeated one.
    func timeInspection(config: GateConfig, who: Principal, times: Int) {
        let request = Request.postgres(PostgresRequest(text: sql, path: .extended))
        let session = SessionContext(sessionID: "explain", target: target, subject: who.subject, groups: who.groups,
                                     clientAddress: "", applicationName: "explain")
        let policy = PolicyEnforcement(config.policies)
        let clock = ContinuousClock()
        func rate(_ body: () -> Void) -> Double {
            let elapsed = clock.measure { for _ in 0..<times { body() } }
            return Double(times) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        let uncached = rate {
            let inspector = SQLRequestInspector().makeSession(target: target, parameters: [])  // a fresh cache: parsed every time
            _ = policy.decide(inspector.inspect(request, in: session), in: session)
        }
        let inspector = SQLRequestInspector().makeSession(target: target, parameters: [])
        let cached = rate { _ = policy.decide(inspector.inspect(request, in: session), in: session) }
        let each = String(format: "%.1f µs vs %.2f µs each", 1e6 / uncached, 1e6 / cached)
        let line = "inspect+decide \(sql.utf8.count) chars x\(times): \(Int(uncached))/s without cache, \(Int(cached))/s with the exact-text cache (\(each))\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

extension MaskSpec {
    /// As written in the configuration.
    var label: String {
        switch self {
        case .detector(let name): name
        case .column(let glob): "column \(glob)"
        case .jsonField(let glob): "json_field \(glob)"
        case .pattern(let name, let regex): "\(name) /\(regex)/"
        }
    }
}

struct PublicKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "public-key",
        abstract: "Print the gate's capture-signing public key (PEM), creating the key if it does not exist yet.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let config = try options.load(requireSecrets: false)
        do {
            print(try SigningKey.loadOrCreate(path: config.proxy.signingKey).publicKeyPEM, terminator: "")
        } catch {
            throw ToolFailure(description: "\(error)")
        }
    }
}
await CaptureProxy.asyncMainWithGrepExitCodes()
