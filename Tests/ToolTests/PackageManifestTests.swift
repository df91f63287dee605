import Foundation
import Testing
import TestSupport

/// Another team's tool must be able to depend on this package by version to read captures, and
/// SwiftPM refuses a versioned dependency whose targets use unsafeFlags. Read from the manifest as
/// SwiftPM itself evaluates it (`swift package dump-package`), not by searching its text.
@Suite struct PackageManifestTests {
    @Test func noLibraryTargetHasUnsafeFlags() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("manifest-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let r = try run("swift", ["package", "--package-path", root.path, "--scratch-path", scratch.path, "dump-package"])
        try #require(r.status == 0, "dump-package failed: \(r.stderr)")
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let targets = try #require(manifest["targets"] as? [[String: Any]])
        let libraries = targets.filter { $0["type"] as? String == "regular" }
        #expect(libraries.contains { $0["name"] as? String == "CaptureFormat" })
        for target in libraries {
            let settings = target["settings"] as? [[String: Any]] ?? []
            let unsafe = settings.filter { ($0["kind"] as? [String: Any])?["unsafeFlags"] != nil }
            #expect(unsafe.isEmpty, "library target \(target["name"] ?? "?") has unsafeFlags: \(unsafe)")
        }
    }
}
