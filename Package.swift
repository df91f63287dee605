// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Tollgate",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "CaptureFormat", targets: ["CaptureFormat"]),
        .executable(name: "sessinfo", targets: ["sessinfo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.1.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    ],
    targets: [
        // zlib from the system (Debian: zlib1g-dev): block compression and CRC32.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "CaptureFormat",
            dependencies: ["CZlib", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // What the investigator's tools share: reports, terminal output.
        .target(name: "Forensics", dependencies: ["CaptureFormat", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "sessinfo",
            dependencies: ["Forensics", "CaptureFormat", .product(name: "ArgumentParser", package: "swift-argument-parser")]
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
            dependencies: ["CaptureFormat", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        // Runs the built executables as a user would (scripts/test builds them first).
        .testTarget(name: "ToolTests", dependencies: ["CaptureFormat", "SyntheticSessions"]),
    ],
    swiftLanguageModes: [.v6]
)
