@testable import Forensics
import Foundation
import TestSupport
import Testing

@Suite("tar")
struct TarTests {
    func tree(_ s: Scratch) throws -> [String] {
        let root = s.path("root")
        let long = "sessions/" + String(repeating: "d", count: 90) + "/" + String(repeating: "f", count: 80) + ".jsonl"  // needs the ustar prefix
        let veryLong = "sessions/" + String(repeating: "x", count: 130) + ".cast"  // no slash to split at: a pax path
        let files = ["manifest.json", "captures/a.sesscap", long, veryLong, "sessions/é-ü.txt", "empty"]
        for (i, f) in files.enumerated() {
            let p = (root as NSString).appendingPathComponent(f)
            try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let bytes = f == "empty" ? Data() : Data((0..<(i * 700 + 3)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) })
            try bytes.write(to: URL(fileURLWithPath: p))
        }
        return files
    }

    @Test func roundTripsNamesAndBytesDeterministically() throws {
        let s = try Scratch()
        defer { s.remove() }
        let files = try tree(s)
        try Tar.write(root: s.path("root"), files: files, prefix: "bundle", mtime: 1_790_000_000, to: s.path("a.tar"))
        try Tar.write(root: s.path("root"), files: files, prefix: "bundle", mtime: 1_790_000_000, to: s.path("b.tar"))
        let a = try Data(contentsOf: URL(fileURLWithPath: s.path("a.tar")))
        #expect(a == (try Data(contentsOf: URL(fileURLWithPath: s.path("b.tar")))), "same input, same bytes")
        #expect(a.count % Tar.record == 0)

        let entries = try Tar.entries(a)
        let regular = entries.filter { $0.kind == .file }
        #expect(regular.map(\.name) == files.map { "bundle/" + $0 })
        for (e, f) in zip(regular, files) {
            let original = try Data(contentsOf: URL(fileURLWithPath: s.path("root/" + f)))
            #expect(a.subdata(in: e.range) == original, "\(f)")
        }
        #expect(entries.contains { $0.kind == .directory && $0.name == "bundle/captures/" })
    }

    @Test func systemTarReadsWhatWeWrite() throws {
        let s = try Scratch()
        defer { s.remove() }
        let files = try tree(s)
        try Tar.write(root: s.path("root"), files: files, prefix: "bundle", mtime: 1_790_000_000, to: s.path("a.tar"))
        let list = Process()
        list.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        list.arguments = ["tar", "-xf", s.path("a.tar"), "-C", s.dir.path]
        let err = Pipe()
        list.standardError = err
        try list.run()
        list.waitUntilExit()
        let warnings = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(list.terminationStatus == 0, "\(warnings)")
        #expect(warnings.isEmpty, "\(warnings)")
        for f in files {
            #expect(FileManager.default.contentsEqual(atPath: s.path("root/" + f), andPath: s.path("bundle/" + f)), "\(f)")
        }
    }

    @Test func readsWhatSystemTarWritesAndRefusesDamage() throws {
        let s = try Scratch()
        defer { s.remove() }
        let files = try tree(s)
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        make.arguments = ["tar", "--format=pax", "-cf", s.path("gnu.tar"), "-C", s.path("root")] + files
        try make.run()
        make.waitUntilExit()
        #expect(make.terminationStatus == 0)
        var data = try Data(contentsOf: URL(fileURLWithPath: s.path("gnu.tar")))
        let entries = try Tar.entries(data).filter { $0.kind == .file }
        #expect(Set(entries.map(\.name)) == Set(files))

        data[100] ^= 0x01  // the first header's mode field: its checksum no longer holds
        #expect(throws: ExportError.self) { _ = try Tar.entries(data) }
        #expect(throws: ExportError.self) { _ = try Tar.entries(Data("not a tar archive at all".utf8) + Data(count: 1024)) }
    }
}
