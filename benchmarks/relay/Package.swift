// swift-tools-version: 6.1
import PackageDescription

// A bare SwiftNIO TCP relay for benchmarks/pgbench.sh: what any proxy on SwiftNIO pays for
// its event loops and socket I/O alone, with nothing decoded, decided or recorded. A package of
// its own, so Tollgate's build and CI never compile it.
let package = Package(
    name: "bench-relay",
    dependencies: [.package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2")],
    targets: [
        .executableTarget(name: "bench-relay", dependencies: [.product(name: "NIOCore", package: "swift-nio"),
                                                              .product(name: "NIOPosix", package: "swift-nio")]),
    ],
    swiftLanguageModes: [.v6]
)
