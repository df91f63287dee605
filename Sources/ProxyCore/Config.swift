import Foundation
import Policy

/// The gate's configuration file (YAML; reference in man/capture-proxy.1 and samples/tollgate.yaml).
public struct GateConfig: Sendable {
    public var proxy: ProxySettings
    public var identity: IdentitySettings
    public var targets: [TargetConfig]
    /// Least-privilege policies (`docs`: man/capture-proxy.1). Empty when the file has none.
    public var policies: PolicySet
    /// The upstream accounts policies name (`credentials:` in a policy), by policy name.
    public var policyCredentials: [String: TargetConfig.Credentials] = [:]
    /// The admin API's listener; nil: none.
    public var admin: AdminSettings? = nil
    /// Receivers of the gate's events (approvals), by name.
    public var webhooks: [WebhookSettings] = []
    /// The approvals store and page.
    public var approvals: ApprovalsSettings = ApprovalsSettings(store: "approvals.sqlite")

    /// Which account each session logs in with (see `UpstreamCredentials`).
    public var upstreamCredentials: UpstreamCredentials { UpstreamCredentials(policies: policies, byPolicy: policyCredentials) }

    public struct ProxySettings: Sendable {
        /// Names this gate in every capture it writes.
        public var id: String
        /// Captures go under DIR/YYYY/MM/DD/SESSION.sesscap.
        public var captureDirectory: String
        /// Ed25519 key that signs captures; created (0600) if missing.
        public var signingKey: String
        /// On SIGTERM, how long running sessions may go on before they are closed.
        public var shutdownGrace: Duration
        /// Event-loop threads; nil: one per core the process may run on (its CPU affinity, a
        /// container's CPU limit or cpuset; not the host's core count).
        public var threads: Int?
    }

    public struct IdentitySettings: Sendable {
        public var issuer: String
        public var audiences: [String]
        public var groupsClaim: String
        public var subjectClaim: String
        /// A static JWKS for air-gapped sites: no discovery, no fetch.
        public var jwksFile: String?
        public var clockSkew: Duration
    }

    /// Reads and validates `path`. Every error names the file, line and column.
    /// `requireSecrets: false` reads a configuration without the upstream passwords (for commands that do not connect).
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment,
                            requireSecrets: Bool = true) throws -> GateConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, line: 0, column: 0, message: "cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: 0, column: 0, message: "the file is not UTF-8")
        }
        return try parse(yaml: text, file: path, baseDirectory: (path as NSString).deletingLastPathComponent, environment: environment,
                         requireSecrets: requireSecrets)
    }

    public static func parse(yaml: String, file: String, baseDirectory: String = ".",
                             environment: [String: String] = [:], requireSecrets: Bool = true) throws -> GateConfig {
        let root = try ConfigNode.parse(yaml: yaml, file: file)
        let top = try root.fields(["proxy", "identity", "targets", "policies", "admin", "webhooks", "approvals"])
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : (baseDirectory as NSString).appendingPathComponent(p) }

        guard let proxyNode = top["proxy"] else { throw root.error("missing 'proxy' section") }
        let p = try proxyNode.fields(["id", "captures", "signing_key", "shutdown_grace", "threads"])
        guard let id = try p["id"]?.string(), !id.isEmpty else { throw proxyNode.error("missing 'id'") }
        guard let captures = try p["captures"]?.string() else { throw proxyNode.error("missing 'captures' (directory for capture files)") }
        guard let key = try p["signing_key"]?.string() else { throw proxyNode.error("missing 'signing_key' (Ed25519 key file; created if missing)") }
        let proxy = ProxySettings(id: id, captureDirectory: resolve(captures), signingKey: resolve(key),
                                  shutdownGrace: try p["shutdown_grace"]?.duration() ?? .seconds(30),
                                  threads: try p["threads"]?.int(in: 1...256))

        guard let identityNode = top["identity"] else { throw root.error("missing 'identity' section (OIDC issuer and audiences)") }
        let i = try identityNode.fields(["issuer", "audiences", "groups_claim", "subject_claim", "jwks_file", "clock_skew"])
        guard let issuer = try i["issuer"]?.string(), URL(string: issuer)?.scheme != nil else {
            throw identityNode.error("missing or invalid 'issuer' (the OIDC issuer URL)")
        }
        guard let audiences = try i["audiences"]?.strings(), !audiences.isEmpty else {
            throw identityNode.error("missing 'audiences' (the token audiences this gate accepts)")
        }
        let identity = IdentitySettings(issuer: issuer, audiences: audiences,
                                        groupsClaim: try i["groups_claim"]?.string() ?? "groups",
                                        subjectClaim: try i["subject_claim"]?.string() ?? "sub",
                                        jwksFile: try i["jwks_file"].map { resolve(try $0.string()) },
                                        clockSkew: try i["clock_skew"]?.duration() ?? .seconds(60))

        guard let targetsNode = top["targets"] else { throw root.error("missing 'targets'") }
        var targets: [TargetConfig] = []
        for (name, node) in try targetsNode.mapping() {
            targets.append(try TargetConfig.parse(name: name, node: node, resolve: resolve, environment: environment, requireSecrets: requireSecrets))
        }
        guard !targets.isEmpty else { throw targetsNode.error("no targets") }
        var listens: [String: String] = [:]
        for t in targets {
            if let other = listens[t.listen.description] {
                throw targetsNode.error("targets '\(other)' and '\(t.name)' both listen on \(t.listen)")
            }
            listens[t.listen.description] = t.name
        }
        let (policies, credentials) = try top["policies"].map {
            try PolicyConfig.parse($0, targets: Set(targets.map(\.name)), credentials: {
                try TargetConfig.Credentials.parse($0, resolve: resolve, environment: environment, requireSecrets: requireSecrets)
            })
        } ?? (PolicySet(policies: []), [:])
        let admin = try top["admin"].map { try AdminSettings.parse($0, resolve: resolve, environment: environment, requireSecrets: requireSecrets, audiences: audiences) }
        if let admin, let target = targets.first(where: { $0.listen.description == admin.listen.description }) {
            throw top["admin"]!.error("the admin API and target '\(target.name)' both listen on \(admin.listen)")
        }
        var webhooks: [WebhookSettings] = []
        for (name, node) in try top["webhooks"]?.mapping() ?? [] {
            webhooks.append(try WebhookSettings.parse(name: name, node: node, resolve: resolve, environment: environment, requireSecrets: requireSecrets))
        }
        let approvals = try ApprovalsSettings.parse(top["approvals"], captureDirectory: proxy.captureDirectory, resolve: resolve)
        return GateConfig(proxy: proxy, identity: identity, targets: targets, policies: policies, policyCredentials: credentials, admin: admin,
                          webhooks: webhooks, approvals: approvals)
    }
}

public struct TargetConfig: Sendable {
    /// zlib level 1. Compression is the gate's largest cost on results of many rows. Measured
    /// with the same transactions through the gate (pgbench, 2026-12-01): against level 3, level 1
    /// took 11 % less of the gate's CPU on 50-row results, for files 6 % larger (1 % on
    /// select-only); level 3 had halved level 6's compression time for files 3–8 % larger.
    public static let defaultCompressionLevel = 1

    public enum ProtocolKind: String, Sendable { case postgres, http }
    /// As libpq's sslmode: prefer and require encrypt without verifying the server; verify-ca
    /// checks its certificate chain against `upstreamCAFile`, verify-full also its name.
    public enum UpstreamTLS: String, Sendable {
        case disable, prefer, require
        case verifyCA = "verify-ca", verifyFull = "verify-full"
        public var verifies: Bool { self == .verifyCA || self == .verifyFull }
    }

    public var name: String
    public var protocolKind: ProtocolKind
    public var listen: HostPort
    public var upstream: HostPort
    /// Client-facing TLS: certificate chain and key (PEM).
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// Plaintext clients on a non-loopback listener are refused unless this is set.
    public var allowPlaintext: Bool
    public var upstreamTLS: UpstreamTLS
    /// The CA certificates (PEM) the upstream's certificate must chain to (verify-ca, verify-full).
    public var upstreamCAFile: String? = nil
    /// The name the upstream's certificate must carry (verify-full), and the TLS server name sent;
    /// nil: the upstream's host (an IP address is then checked against the certificate's IP names).
    public var upstreamServerName: String? = nil
    public var credentials: Credentials
    public var maxMessageBytes: Int
    public var idleTimeout: Duration
    public var recordMaxRows: Int
    public var recordMaxValueBytes: Int
    /// zlib level for capture blocks (1 fastest … 9 smallest).
    public var recordCompressionLevel: Int
    /// Masks for every session on this target, whoever it is (policies may add more).
    public var masks: [MaskSpec]
    /// When a request's record must be on disk (see `RecordingDurability`).
    public var recordDurability: RecordingDurability = .batched
    /// `protocol: http` only: the upstream credential and request limits.
    public var http: HTTPTargetSettings? = nil

    /// The account the gate logs in with upstream: the client never learns it.
    public struct Credentials: Sendable {
        public var user: String
        /// Read from the environment variable or file named in the config; never inline.
        public var password: String?
        public var source: String
    }

    static func parse(name: String, node: ConfigNode, resolve: (String) -> String, environment: [String: String],
                      requireSecrets: Bool) throws -> TargetConfig {
        let f = try node.fields(["protocol", "listen", "upstream", "tls", "allow_plaintext", "upstream_tls",
                                 "upstream_ca_file", "upstream_server_name", "credentials", "limits", "recording", "masks", "kind",
                                 "impersonate"])
        guard let proto = try f["protocol"]?.oneOf(["postgres": ProtocolKind.postgres, "http": .http]) else {
            throw node.error("missing 'protocol' (postgres or http)")
        }
        if proto == .postgres, let kind = f["kind"] { throw kind.errorAtKey("'kind' is for protocol: http targets") }
        if proto == .postgres, let i = f["impersonate"] { throw i.errorAtKey("'impersonate' is for kind: kubernetes targets") }
        guard let listen = try f["listen"]?.hostPort() else { throw node.error("missing 'listen' (HOST:PORT)") }
        guard let upstream = try f["upstream"]?.hostPort() else { throw node.error("missing 'upstream' (HOST:PORT)") }
        let tls = try f["tls"].map { try ListenerTLS.parse($0, resolve: resolve) }
        let cert = tls?.certificate, key = tls?.key
        var maxMessage = 16 << 20, idle = Duration.seconds(900)
        let credentials: Credentials
        var http: HTTPTargetSettings?
        if proto == .http {
            // HTTP credentials are a token, basic auth or a client certificate, and its limits are its own (HTTPTargetSettings).
            let parsed = try HTTPTargetSettings.parse(credentials: f["credentials"], limits: f["limits"], kind: f["kind"],
                                                                   resolve: resolve, environment: environment, requireSecrets: requireSecrets)
            var settings = parsed.0
            let httpIdle = parsed.idle
            if let i = f["impersonate"] {
                settings.impersonate = try i.bool()
                if settings.impersonate && settings.kind != "kubernetes" { throw i.errorAtKey("'impersonate' is for kind: kubernetes targets") }
            }
            http = settings
            idle = httpIdle ?? idle
            credentials = Credentials(user: "", password: nil, source: settings.credentialSource)
        } else {
            guard let credNode = f["credentials"] else { throw node.error("missing 'credentials' (the upstream account the gate uses)") }
            credentials = try Credentials.parse(credNode, resolve: resolve, environment: environment, requireSecrets: requireSecrets)
        }
        if proto == .postgres, let limits = f["limits"] {
            let l = try limits.fields(["max_message_bytes", "idle_timeout"])
            maxMessage = try l["max_message_bytes"]?.bytes(max: 1 << 30) ?? maxMessage
            idle = try l["idle_timeout"]?.duration() ?? idle
        }
        var maxRows = 1000, maxValue = 64 << 10, level = TargetConfig.defaultCompressionLevel
        var durability = RecordingDurability.batched
        if let rec = f["recording"] {
            let r = try rec.fields(["max_rows", "max_value_bytes", "compression_level", "durability"])
            durability = try r["durability"]?.oneOf(["batched": .batched, "strict": .strict]) ?? durability
            maxRows = try r["max_rows"]?.int(in: 0...1_000_000) ?? maxRows
            maxValue = try r["max_value_bytes"]?.bytes(max: 16 << 20) ?? maxValue
            level = try r["compression_level"]?.int(in: 1...9) ?? level
        }
        let allowPlaintext = try f["allow_plaintext"]?.bool() ?? false
        if cert == nil && !listen.isLoopback && !allowPlaintext {
            throw node.error("listens on \(listen), which is not loopback, without 'tls': clients would send tokens in clear. Configure tls, or set allow_plaintext: true")
        }
        let modes: [String: UpstreamTLS] = ["disable": .disable, "prefer": .prefer, "require": .require,
                                            "verify-ca": .verifyCA, "verify-full": .verifyFull]
        // HTTP upstreams are http (disable) or https verified against a CA file and name (verify-full, the default).
        let upstreamTLS: UpstreamTLS = proto == .http
            ? try f["upstream_tls"]?.oneOf(["disable": .disable, "verify-full": .verifyFull]) ?? .verifyFull
            : try f["upstream_tls"]?.oneOf(modes) ?? .prefer
        let (caFile, serverName) = try upstreamVerification(f, mode: upstreamTLS, node: node, resolve: resolve)
        if case .clientCertificate = http?.credential, upstreamTLS == .disable {
            throw (f["credentials"] ?? node).error("a client certificate needs upstream TLS (upstream_tls: verify-full)")
        }
        var target = TargetConfig(name: name, protocolKind: proto, listen: listen, upstream: upstream, tlsCertificate: cert, tlsKey: key,
                            allowPlaintext: allowPlaintext,
                            upstreamTLS: upstreamTLS,
                            credentials: credentials,
                            maxMessageBytes: maxMessage, idleTimeout: idle, recordMaxRows: maxRows, recordMaxValueBytes: maxValue,
                            recordCompressionLevel: level,
                            masks: try f["masks"].map(MaskConfig.parse) ?? [], recordDurability: durability)
        target.upstreamCAFile = caFile
        target.upstreamServerName = serverName
        target.http = http
        return target
    }
}

extension MaskingSetup {
    /// The masks a configuration gives: per target, and per policy.
    public convenience init(_ config: GateConfig) {
        self.init(targetMasks: Dictionary(uniqueKeysWithValues: config.targets.map { ($0.name, $0.masks) }), policies: config.policies)
    }
}
