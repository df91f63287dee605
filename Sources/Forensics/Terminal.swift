import Foundation

/// Colour and progress for the command-line tools: colour only on a terminal and
/// never with NO_COLOR set; progress only when standard error is a terminal.
public struct Terminal: Sendable {
    public let colour: Bool
    public let progress: Bool

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let noColor = environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        colour = isatty(STDOUT_FILENO) == 1 && !noColor && environment["TERM"] != "dumb"
        progress = isatty(STDERR_FILENO) == 1
    }

    public enum Style: String, Sendable { case ok = "32", bad = "31;1", warn = "33", dim = "2", bold = "1", match = "1;35" }

    public func paint(_ text: String, _ style: Style) -> String {
        colour ? "\u{1B}[\(style.rawValue)m\(text)\u{1B}[0m" : text
    }

    /// Rewrites one status line on standard error.
    public func status(_ text: String) {
        guard progress else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
    }

    public func clearStatus() {
        guard progress else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

/// Writes to standard error, for messages that are not the tool's data.
public func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Human sizes: 1023 B, 12.3 KiB, 4.5 MiB.
public func humanBytes<T: BinaryInteger>(_ n: T) -> String {
    let v = Double(n)
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var i = 0, x = v
    while x >= 1024 && i < units.count - 1 { x /= 1024; i += 1 }
    return i == 0 ? "\(n) B" : String(format: "%.1f %@", x, units[i])
}

/// Parses RFC 3339 times (2026-11-25T19:02:05Z, fractional seconds and offsets allowed),
/// a date alone (2026-11-25, as UTC midnight), or Unix seconds; returns microseconds since the epoch.
public func parseTime(_ text: String) -> Int64? {
    if let seconds = Double(text) { return Int64(seconds * 1_000_000) }
    let full = ISO8601DateFormatter()
    full.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    let plain = ISO8601DateFormatter()
    plain.formatOptions = [.withInternetDateTime]
    let day = ISO8601DateFormatter()
    day.formatOptions = [.withFullDate]
    for f in [full, plain, day] {
        if let d = f.date(from: text) { return Int64((d.timeIntervalSince1970 * 1_000_000).rounded()) }
    }
    return nil
}
