import ArgumentParser
import CaptureFormat
import Dispatch
import Synchronization
import Forensics
import Foundation
import Identity
import Logging
import PostgresProxy
import ProxyCore

struct CaptureProxy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture-proxy",
        abstract: "The Tollgate gate: verifies OIDC identities, brokers credentials and records every session.",
        discussion: "Exit status: 0 on success (check: the configuration is valid); 2 on errors.",
        subcommands: [Run.self, Check.self, PublicKey.self]
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
    static let configuration = CommandConfiguration(abstract: "Start the gate: one listener per target, until SIGTERM or SIGINT.")

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
        let gate = try PostgresGate(config: config, verifier: verifier, logger: logger)
        try await gate.start()
        for address in gate.listeningAddresses { logger.info("ready", metadata: ["address": "\(address)"]) }
        let signal = await waitForSignal([SIGTERM, SIGINT])
        logger.info("signal received", metadata: ["signal": "\(signal == SIGTERM ? "SIGTERM" : "SIGINT")"])
        await gate.shutdown(grace: config.proxy.shutdownGrace)
        logger.info("stopped: every capture is sealed")
    }
}

/// Suspends until one of `signals` arrives (they are no longer delivered the default way).
func waitForSignal(_ signals: [Int32]) async -> Int32 {
    await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
        let queue = DispatchQueue(label: "signals")
        let once = OnceFlag()
        var sources: [DispatchSourceSignal] = []
        for s in signals {
            signal(s, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: s, queue: queue)
            source.setEventHandler {
                if once.claim() { continuation.resume(returning: s) }
            }
            source.resume()
            sources.append(source)
        }
        // Keep the sources alive for the life of the process.
        retainedSignalSources.append(contentsOf: sources)
    }
}

/// Signal sources live as long as the process; only touched on the main path before suspension.
nonisolated(unsafe) var retainedSignalSources: [DispatchSourceSignal] = []

final class OnceFlag: Sendable {
    let claimed = Mutex(false)
    func claim() -> Bool { claimed.withLock { was in defer { was = true }; return !was } }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a configuration; errors name the file, line and column.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let config = try options.load()
        print("\(options.config): OK: gate \(config.proxy.id), \(config.targets.count) target(s)")
        for t in config.targets {
            let tls = t.tlsCertificate != nil ? "TLS" : (t.listen.isLoopback ? "plaintext (loopback)" : "plaintext (allowed)")
            print("  \(t.name): \(t.protocolKind.rawValue) \(t.listen) -> \(t.upstream) as \(t.credentials.user) (password: \(t.credentials.source)), \(tls)")
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
