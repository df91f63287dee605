import CaptureFormat
import Foundation

/// What a filter says about one capture: selected or not, and anything the investigator must
/// hear (a damaged capture searched only as far as it could be read).
public struct FilterVerdict: Sendable, Equatable {
    public var selected: Bool
    public var warnings: [String]
    public init(selected: Bool, warnings: [String] = []) { self.selected = selected; self.warnings = warnings }
}

/// The seam for search filters: anything that can say whether a session is wanted. `sessgrep`'s
/// filters plug in through `QueryFilter` (a session is selected when any of its exchanges
/// matches, as `sessgrep -l` lists it); the export engine itself knows no filter.
public protocol SessionFilter: Sendable {
    /// Whether the session in `capture` (read from `path`) is selected. It may answer from the
    /// header and footer, or read events.
    func selects(path: String, capture: CaptureFile) async throws -> FilterVerdict
    /// The filter in words, recorded in the manifest's selection.
    var summary: String { get }
}

/// A filter from a closure, for tests and for adapting other query types.
public struct ClosureFilter: SessionFilter {
    public let summary: String
    let body: @Sendable (CaptureFile) throws -> Bool
    public init(_ summary: String, _ body: @escaping @Sendable (CaptureFile) throws -> Bool) { self.summary = summary; self.body = body }
    public func selects(path: String, capture: CaptureFile) async throws -> FilterVerdict { FilterVerdict(selected: try body(capture)) }
}

/// Which captures to export: files, directories (every `*.sesscap` under them) and session ids.
///
/// A session id is looked up under the directories given, or under `$TOLLGATE_CAPTURES` when no
/// directory is given: first by file name (the gate names files SESSION-ID.sesscap), then by
/// reading headers. A unique prefix of at least 8 characters is enough. When ids are given,
/// directories only say where to look; without ids, a directory selects every capture in it.
/// With no argument at all, a filter selects from `$TOLLGATE_CAPTURES`.
public struct CaptureSelection: Sendable {
    public var arguments: [String]
    public var filter: (any SessionFilter)?
    public var captureRoot: String?

    public init(arguments: [String], filter: (any SessionFilter)? = nil,
                captureRoot: String? = ProcessInfo.processInfo.environment["TOLLGATE_CAPTURES"]) {
        self.arguments = arguments; self.filter = filter; self.captureRoot = captureRoot?.isEmpty == true ? nil : captureRoot
    }

    /// What the manifest records.
    public var description: [String] { arguments + (filter.map { ["filter: " + $0.summary] } ?? []) }

    public static func looksLikeSessionID(_ s: String) -> Bool {
        s.count >= 8 && s.count <= 64 && s.allSatisfy { $0.isHexDigit || $0 == "-" }
    }

    /// The selected capture files, sorted by session start, then path. Throws `.usage` for an
    /// argument that is neither a file, a directory nor a known session id, `.capture` when a file
    /// cannot be read as a capture. `warn` hears what a filter reports (damage it searched around).
    public func resolve(warn: (String) -> Void = { _ in }) async throws(ExportError) -> [String] {
        var files: [String] = [], directories: [String] = [], ids: [String] = []
        for a in arguments {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: a, isDirectory: &isDir) {
                if isDir.boolValue { directories.append(a) } else { files.append(a) }
            } else if CaptureSelection.looksLikeSessionID(a) {
                ids.append(a)
            } else {
                throw ExportError.usage("\(a): no such file or directory, and not a session id")
            }
        }
        if arguments.isEmpty {
            guard filter != nil else { throw ExportError.usage("nothing to export: give capture files, directories or session ids") }
            guard let captureRoot else { throw ExportError.usage("no captures given and $TOLLGATE_CAPTURES is not set") }
            directories = [captureRoot]
        }
        if !ids.isEmpty {
            if directories.isEmpty {
                guard let captureRoot else {
                    throw ExportError.usage("session id \(ids[0]): give the directory to look in, or set $TOLLGATE_CAPTURES")
                }
                directories = [captureRoot]
            }
            var candidates: [String] = []
            for d in directories { candidates += try CaptureSelection.captures(under: d) }
            for id in ids { files += try CaptureSelection.find(id, in: candidates) }
        } else {
            for d in directories { files += try CaptureSelection.captures(under: d) }
        }

        var seen = Set<String>()
        var opened: [(path: String, start: Int64)] = []
        for f in files {
            let real = URL(fileURLWithPath: f).resolvingSymlinksInPath().path
            guard seen.insert(real).inserted else { continue }
            let capture: CaptureFile
            do { capture = try CaptureFile(path: f) } catch { throw ExportError.capture("\(f): \(error)") }
            if let filter {
                let verdict: FilterVerdict
                do { verdict = try await filter.selects(path: f, capture: capture) } catch { throw ExportError.capture("\(f): \(error)") }
                verdict.warnings.forEach(warn)
                if !verdict.selected { continue }
            }
            opened.append((f, capture.header.startMicros))
        }
        return opened.sorted { ($0.start, $0.path) < ($1.start, $1.path) }.map(\.path)
    }

    /// Every `*.sesscap` under `dir`, recursively, sorted.
    public static func captures(under dir: String) throws(ExportError) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: dir) else { throw ExportError.io("\(dir): cannot read directory") }
        var out: [String] = []
        while let rel = walker.nextObject() as? String {
            if rel.hasSuffix(".sesscap") { out.append((dir as NSString).appendingPathComponent(rel)) }
        }
        return out.sorted()
    }

    /// The captures of session `id` (or of the one session whose id starts with it) among `files`:
    /// all of them, since a session may have an original and a recovered copy. Reads every header
    /// (a recovered copy is named by whoever made it, so file names prove nothing).
    static func find(_ id: String, in files: [String]) throws(ExportError) -> [String] {
        let wanted = id.lowercased()
        var exact: [String] = [], prefixed: [String: [String]] = [:]
        for f in files {
            guard let c = try? CaptureFile(path: f) else { continue }
            let sid = c.header.sessionID.lowercased()
            if sid == wanted { exact.append(f) } else if sid.hasPrefix(wanted) { prefixed[sid, default: []].append(f) }
        }
        if !exact.isEmpty { return exact }
        if prefixed.count == 1 { return prefixed.first!.value }
        if prefixed.count > 1 {
            throw ExportError.usage("session id \(id) is ambiguous: \(prefixed.count) sessions start with it (\(prefixed.keys.sorted().prefix(3).joined(separator: ", "))…)")
        }
        throw ExportError.usage("session id \(id): no capture of that session found")
    }
}
