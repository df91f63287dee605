import CaptureFormat
import SQLInspection

/// The run-time settings a client's startup packet gives, read the way PostgreSQL reads them, so
/// that the gate's view of the session (its search path above all) is the server's:
/// - `options` is split on spaces (a backslash escapes the next character) and may only hold
///   `-c name=value` and `--name=value` switches;
/// - setting names are case-insensitive, and `-` in a switch's name is `_`;
/// - the packet's own keys are applied after `options`, and a later value wins.
/// Settings that would change who the session is (`role`, `session_authorization`,
/// `session_replication_role`) are refused: the gate's account is the one it brokered; so are
/// settings that change how statements are read (`ParserSettings`) to a value the gate does not read with.
enum StartupSettings {
    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    /// Startup keys that are not settings.
    static let protocolKeys: Set<String> = ["user", "database", "replication", "options"]
    static let refused: Set<String> = ["role", "session_authorization", "session_replication_role"]

    /// The effective settings, by lowercased name.
    static func read(_ parameters: [KeyValue]) throws(Refusal) -> [String: String] {
        var settings: [String: String] = [:]
        if let options = parameters.last(where: { $0.key == "options" })?.value {
            let words = try split(options)
            var i = 0
            while i < words.count {
                let word = words[i]
                let assignment: String
                if word == "-c" {
                    guard i + 1 < words.count else { throw Refusal(description: "options: -c without a setting") }
                    assignment = words[i + 1]
                    i += 2
                } else if word.hasPrefix("-c") {
                    assignment = String(word.dropFirst(2))
                    i += 1
                } else if word.hasPrefix("--") {
                    assignment = String(word.dropFirst(2))
                    i += 1
                } else {
                    throw Refusal(description: "options: only -c name=value and --name=value are accepted, not '\(word)'")
                }
                guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
                    throw Refusal(description: "options: '\(assignment)' is not name=value")
                }
                let name = assignment[..<eq].lowercased().replacingOccurrences(of: "-", with: "_")
                settings[name] = String(assignment[assignment.index(after: eq)...])
            }
        }
        for p in parameters where !protocolKeys.contains(p.key) {
            settings[p.key.lowercased()] = p.value
        }
        for name in settings.keys where refused.contains(name) {
            throw Refusal(description: "the startup packet may not set \(name): the gate logs in with its own account")
        }
        // The effective value (the packet's key beats `options`) of each setting that changes how
        // statements are read must be the gate's own; login defaults are checked on the server's report.
        for (name, value) in settings.sorted(by: { $0.key < $1.key }) where ParserSettings.isParserSetting(name) {
            if !ParserSettings.isGateValue(name, value) {
                throw Refusal(description: "the startup packet sets \(name) to \(value): the gate reads statements only with \(name) = \(ParserSettings.gateValues[name]!)")
            }
        }
        return settings
    }

    /// PostgreSQL's pg_split_opts: whitespace separates, a backslash makes the next character literal.
    static func split(_ text: String) throws(Refusal) -> [String] {
        var words: [String] = [], current = "", escaped = false, inWord = false
        for c in text {
            if escaped { current.append(c); escaped = false; inWord = true; continue }
            if c == "\\" { escaped = true; inWord = true; continue }
            if c == " " || c == "\t" || c == "\n" || c == "\r" {
                if inWord { words.append(current); current = ""; inWord = false }
                continue
            }
            current.append(c)
            inWord = true
        }
        if escaped { throw Refusal(description: "options: ends with a backslash") }
        if inWord { words.append(current) }
        return words
    }
}
