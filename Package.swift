// swift-tools-version: 6.1
import PackageDescription

// No target has unsafeFlags: SwiftPM refuses them in a package that another package depends on
// by version, and CaptureFormat is a library other teams' tools depend on to read captures
// (ToolTests/PackageManifestTests checks). Runtime exclusivity checks stay on in release builds.

let package = Package(
    name: "Tollgate",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "CaptureFormat", targets: ["CaptureFormat"]),
        .executable(name: "sessinfo", targets: ["sessinfo"]),
        .executable(name: "sessgrep", targets: ["sessgrep"]),
        .executable(name: "capture-proxy", targets: ["capture-proxy"]),
        .executable(name: "sessexport", targets: ["sessexport"]),
        .executable(name: "sessdiff", targets: ["sessdiff"]),
        .executable(name: "sessreplay", targets: ["sessreplay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.1.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        // Already in the graph through SwiftNIO; the writer threads' schedule is its Heap.
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        // The gate's counters (divergences between the server's answers and the gate's reading).
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        // The gate's services (listeners, SIGHUP reload) and their graceful shutdown.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // The admin API's HTTP server (approvals, sessions, reload, metrics). Without its default
        // traits: swift-configuration support is not used.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1", traits: []),
        // Webhooks: signed deliveries of the gate's events, with retries.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.30.0"),
        // The gate's metrics in Prometheus's text format, as the swift-metrics backend.
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // The approvals' state store (SQLite through the system's libsqlite3; Debian: libsqlite3-dev).
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
    ],
    targets: [
        // zlib from the system (Debian: zlib1g-dev): block compression and CRC32.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "CaptureFormat",
            dependencies: ["CZlib", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // What the investigator's tools share: reports, terminal output; and the engines (export).
        .target(name: "Forensics", dependencies: ["CaptureFormat", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                                  .product(name: "Crypto", package: "swift-crypto")]),
        .executableTarget(
            name: "sessinfo",
            dependencies: ["Forensics", "CaptureFormat", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Searches captures; the engine is in Forensics (Search/), the gate's config gives the capture directory.
        .executableTarget(
            name: "sessgrep",
            dependencies: ["Forensics", "CaptureFormat", "ProxyCore", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Evidence bundles: export and verify (engine in Forensics/Export).
        .executableTarget(
            name: "sessexport",
            dependencies: ["Forensics", "CaptureFormat", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Compares two captures exchange by exchange (engine in Forensics/Diff).
        .executableTarget(
            name: "sessdiff",
            dependencies: ["Forensics", "CaptureFormat", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Replays PostgreSQL sessions against another database and records the replay (issue 21); the
        // plan and schedule are in Forensics/Replay, the login is the gate's (PostgresProxy).
        .executableTarget(
            name: "sessreplay",
            dependencies: ["Forensics", "CaptureFormat", "PostgresProxy", "PostgresWire", "ProxyCore", "Masking",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           // The HTTP replay's client (already built for Webhooks).
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl")]
        ),
        // Deterministic, realistic synthetic sessions: samples, benchmark corpora, test data.
        .target(
            name: "SyntheticSessions",
            dependencies: ["CaptureFormat"]
        ),
        .executableTarget(
            name: "capgen",
            dependencies: ["CaptureFormat", "SyntheticSessions", "Forensics", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/capgen"
        ),
        .testTarget(
            name: "CaptureFormatTests",
            dependencies: ["CaptureFormat", "CZlib", "TestSupport", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "PropertyBased", package: "swift-property-based")],
            exclude: ["Fixtures"]
        ),
        // PostgreSQL frontend/backend protocol v3: message framing both ways, SCRAM-SHA-256 and md5.
        .target(name: "PostgresWire", dependencies: [.product(name: "NIOCore", package: "swift-nio"),
                                                     .product(name: "Crypto", package: "swift-crypto")]),
        // OIDC: discovery, JWKS cache with rotation, token validation. HTTP through the toolchain's
        // FoundationNetworking, so no HTTP client dependency is built for two GETs.
        .target(name: "Identity", dependencies: [.product(name: "JWTKit", package: "jwt-kit")]),
        // PostgreSQL's own SQL parser (Debian: libpg-query-dev), for statement inspection.
        .systemLibrary(name: "CPgQuery", path: "Sources/CPgQuery", providers: [.apt(["libpg-query-dev"])]),
        .target(name: "SQLInspection", dependencies: ["CPgQuery"]),
        // Least-privilege decisions: pure (no I/O, no clock).
        .target(name: "Policy", dependencies: ["CaptureFormat"]),
        // Detectors and masks for sensitive values in responses.
        .target(name: "Masking"),
        // The exchange pipeline every protocol adapter feeds, the gate's config, and session recording.
        .target(name: "ProxyCore", dependencies: ["CaptureFormat", "Policy", "Masking", "Yams",
                                                  .product(name: "HeapModule", package: "swift-collections"),
                                                  .product(name: "Metrics", package: "swift-metrics")]),
        // The gate every protocol shares: listeners chosen by the target's protocol, live sessions,
        // reload, graceful shutdown as a service.
        .target(name: "GateRuntime", dependencies: ["ProxyCore", "Identity", "CaptureFormat", "Approvals", "Policy",
                                                    .product(name: "NIOCore", package: "swift-nio"),
                                                    .product(name: "NIOPosix", package: "swift-nio"),
                                                    .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                                                    .product(name: "Logging", package: "swift-log"),
                                                    .product(name: "Metrics", package: "swift-metrics"),
                                                    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]),
        .target(name: "PostgresProxy", dependencies: ["PostgresWire", "ProxyCore", "GateRuntime", "Approvals", "Identity", "SQLInspection", "Policy", "Masking",
                                                      .product(name: "NIOCore", package: "swift-nio"),
                                                      .product(name: "Logging", package: "swift-log"),
                                                      .product(name: "NIOPosix", package: "swift-nio"),
                                                      .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                                                      .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                      // TLSUserEvent: the upstream handshake's end, for verify-full's name check.
                                                      .product(name: "NIOTLS", package: "swift-nio"),
                                                      .product(name: "Metrics", package: "swift-metrics")]),
        // HTTP/1.1 reverse proxy (issue 20): strict request framing, hop-by-hop fields, credential
        // swap and recording, as value types; the framing handler (NIO) in front of them.
        .target(name: "HTTPProxy", dependencies: ["CaptureFormat", "ProxyCore", "GateRuntime", "Identity", "Approvals", "Policy", "Masking", "CZlib",
                                                  .product(name: "NIOCore", package: "swift-nio"),
                                                  .product(name: "NIOPosix", package: "swift-nio"),
                                                  .product(name: "NIOHTTP1", package: "swift-nio"),
                                                  .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                  .product(name: "Crypto", package: "swift-crypto"),
                                                  .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "HTTPProxyTests", dependencies: ["HTTPProxy", "CaptureFormat", "Masking", "Policy", .product(name: "NIOCore", package: "swift-nio"),
                                                           .product(name: "NIOEmbedded", package: "swift-nio")]),
        // Signed deliveries of the gate's events to webhook receivers (approvals), never on the data path.
        .target(name: "Webhooks", dependencies: ["ProxyCore", "Approvals", "Policy",
                                                 .product(name: "AsyncHTTPClient", package: "async-http-client"),
                                                 .product(name: "Crypto", package: "swift-crypto"),
                                                 .product(name: "NIOCore", package: "swift-nio"),
                                                 .product(name: "NIOHTTP1", package: "swift-nio"),
                                                 .product(name: "Logging", package: "swift-log"),
                                                 .product(name: "Metrics", package: "swift-metrics"),
                                                 .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]),
        .testTarget(name: "WebhooksTests", dependencies: ["Webhooks", "ProxyCore", "TestSupport", "Approvals", "Policy", "CaptureFormat",
                                                          .product(name: "Crypto", package: "swift-crypto"),
                                                          .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                                          .product(name: "MetricsTestKit", package: "swift-metrics")]),
        // The admin API: its own listener, bearer tokens from the gate's issuer, JSON.
        .target(name: "AdminAPI", dependencies: ["GateRuntime", "ProxyCore", "Identity", "Approvals", "Policy",
                                                 // The approvals page's login: PKCE's S256 challenge.
                                                 .product(name: "Crypto", package: "swift-crypto"),
                                                 .product(name: "Hummingbird", package: "hummingbird"),
                                                 .product(name: "HummingbirdTLS", package: "hummingbird"),
                                                 .product(name: "Prometheus", package: "swift-prometheus"),
                                                 .product(name: "NIOCore", package: "swift-nio"),
                                                 .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                 .product(name: "Logging", package: "swift-log"),
                                                 .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]),
        // Held statements waiting for people: approvals, grants, the admin audit, and their SQLite store.
        .target(name: "Approvals", dependencies: ["CaptureFormat", "Policy", "Identity",
                                                  .product(name: "GRDB", package: "GRDB.swift")]),
        .executableTarget(
            name: "capture-proxy",
            dependencies: ["PostgresProxy", "HTTPProxy", "GateRuntime", "AdminAPI", "Webhooks",
                           .product(name: "Prometheus", package: "swift-prometheus"),
                           .product(name: "Metrics", package: "swift-metrics"), "ProxyCore", "Identity", "Forensics", "CaptureFormat", "Policy", "SQLInspection",
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           // `approvals` and `grants`: the CLI's calls to the admin API (already built for Webhooks).
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl")]
        ),
        .testTarget(name: "PostgresWireTests", dependencies: ["PostgresWire", .product(name: "NIOTestUtils", package: "swift-nio"),
                                                             .product(name: "NIOEmbedded", package: "swift-nio")]),
        .testTarget(name: "SQLInspectionTests", dependencies: ["SQLInspection"]),
        // The gate's protocol-level pieces without a network: result masking, COPY rows, catalog.
        .testTarget(name: "PostgresProxyTests", dependencies: ["PostgresProxy", "GateRuntime", "ProxyCore", "Masking", "PostgresWire", "CaptureFormat",
                                                               .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                                                               "TestSupport", "SQLInspection", "Identity",
                                                               .product(name: "Metrics", package: "swift-metrics"),
                                                               .product(name: "MetricsTestKit", package: "swift-metrics")]),
        // The exchange session driven as an adapter drives it: no sockets, no database.
        .testTarget(name: "ProxyCoreTests", dependencies: ["ProxyCore", "CaptureFormat", "Policy", "Masking", "TestSupport",
                                                           .product(name: "MetricsTestKit", package: "swift-metrics")]),
        // The gate's runtime: live sessions and their waits.
        .testTarget(name: "GateRuntimeTests", dependencies: ["GateRuntime", .product(name: "NIOEmbedded", package: "swift-nio")]),
        .testTarget(name: "MaskingTests", dependencies: ["Masking"]),
        .testTarget(name: "PolicyTests", dependencies: ["Policy", "CaptureFormat", "ProxyCore", "HTTPProxy"]),
        // The approvals service and its store, with an injected clock and real SQLite files.
        .testTarget(name: "ApprovalsTests", dependencies: ["Approvals", "Policy", "Identity", "CaptureFormat"]),
        // The export engine's parts: formats, manifest, integrity classes, tar, custody log.
        .testTarget(name: "ExportTests", dependencies: ["Forensics", "CaptureFormat", "TestSupport"]),
        .testTarget(name: "IdentityTests", dependencies: ["Identity"], exclude: ["Fixtures"]),
        // The built capture-proxy between real clients (psql, pgbench, psycopg) and a real PostgreSQL,
        // with identities from a real OIDC provider (scripts/test starts the database).
        .testTarget(name: "GateTests", dependencies: ["CaptureFormat", "TestSupport", "HTTPProxy", "Masking"], exclude: ["Fixtures"]),
        // Running built executables and other programs from tests.
        .target(name: "TestSupport", dependencies: ["CaptureFormat", "SyntheticSessions"], path: "Tests/TestSupport"),
        // Runs the built executables as a user would (scripts/test builds them first).
        .testTarget(name: "ToolTests", dependencies: ["CaptureFormat", "SyntheticSessions", "TestSupport"], exclude: ["Fixtures"]),
        // The search engine against a slow, obvious oracle; globs, times, patterns, filter options.
        .testTarget(name: "ForensicsTests", dependencies: ["Forensics", "CaptureFormat", "SyntheticSessions", "TestSupport",
                                                           .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    ],
    swiftLanguageModes: [.v6]
)
