import Forensics
import Foundation

/// What to replay, the same for every kind of target: the captures named and the time window.
extension SessReplay {
    /// `--from` and `--to`, into `options`.
    func window(_ options: inout ReplayOptions) throws {
        for (text, name) in [(from, "--from"), (to, "--to")] {
            guard let text else { continue }
            guard let micros = parseTime(text) else { throw Failure("\(name) \(text): not a time (RFC 3339, a date, or Unix seconds)") }
            if name == "--from" { options.fromMicros = micros } else { options.toMicros = micros }
        }
    }

    /// The capture files to replay. Files named one by one are read by the caller (so a damaged or
    /// newer one gets replay's own message); directories and session ids are resolved as sessexport
    /// resolves them.
    func capturePaths() async throws -> [String] {
        var isDirectory: ObjCBool = false
        let allFiles = selection.allSatisfy { FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && !isDirectory.boolValue }
        let paths: [String]
        do {
            paths = allFiles ? selection : try await CaptureSelection(arguments: selection).resolve()
        } catch {
            let newer = error.message.contains("capture format version") ? " (a newer capture format: upgrade sessreplay)" : ""
            throw Failure(error.message + newer)
        }
        if paths.isEmpty { throw Failure("no captures found in \(selection.joined(separator: " "))") }
        return paths
    }
}
