import Foundation
import GateRuntime
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import Prometheus
import ProxyCore
import ServiceLifecycle

/// The admin API: its own listener (TLS when configured), bearer tokens from the gate's OIDC
/// issuer, JSON in and out. Reference: docs/admin-api.md and docs/admin-api.openapi.yaml.
public enum AdminServer {
    /// The API as a service for the gate's `ServiceGroup`. `reload` reads the configuration file
    /// again (as SIGHUP does); `registry` holds the metrics `/metrics` serves.
    public static func service(gate: Gate, settings: AdminSettings, registry: PrometheusCollectorRegistry,
                               reload: @escaping @Sendable () throws -> GateConfig, logger: Logger) throws -> any Service {
        let router = Router(context: AdminContext.self)
        var routes = AdminRoutes(gate: gate, operators: Set(settings.groups), registry: registry, reload: reload, logger: logger)
        if let login = settings.login {
            guard gate.verifier.configuration.audiences.contains(login.clientID) else {
                throw GateError("admin.login.client_id '\(login.clientID)' is not one of identity.audiences: the page's ID tokens would be refused")
            }
            routes.page = ApprovalsPage(approvals: gate.approvals, operators: Set(settings.groups),
                                        login: OIDCLogin(settings: login, verifier: gate.verifier), sessions: PageSessions(), recent: gate.sessions.recent,
                                        secureCookies: settings.tls != nil, logger: logger)
        }
        routes.register(on: router, authentication: BearerAuthentication(verifier: gate.verifier))
        let configuration = ApplicationConfiguration(address: .hostname(settings.listen.host, port: settings.listen.port),
                                                     serverName: "tollgate-admin")
        let onRunning: @Sendable (any Channel) async -> Void = { channel in
            logger.info("admin API ready", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "")",
                                                      "tls": "\(settings.tls != nil)"])
        }
        guard let tls = settings.tls else {
            return Application(router: router, configuration: configuration, onServerRunning: onRunning,
                               eventLoopGroupProvider: .shared(gate.group), logger: logger)
        }
        let configurationTLS: TLSConfiguration
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(tls.certificate).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: tls.key, format: .pem)
            configurationTLS = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        } catch {
            throw GateError("admin API: TLS certificate or key: \(error)")
        }
        return Application(router: router, server: try .tls(.http1(), tlsConfiguration: configurationTLS), configuration: configuration,
                           onServerRunning: onRunning, eventLoopGroupProvider: .shared(gate.group), logger: logger)
    }
}
