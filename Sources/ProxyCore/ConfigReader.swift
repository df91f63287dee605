import Foundation
import Yams

/// A configuration error with the line and column it is about.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public var description: String { "\(file):\(line):\(column): \(message)" }
}

/// A YAML node with its position, and typed accessors that fail with a line-numbered error.
/// Every key of a mapping must be read (or the mapping refused): unknown keys are errors,
/// because a misspelt security setting silently ignored is worse than a refusal.
struct ConfigNode {
    let node: Node
    let path: String
    let file: String

    var line: Int { node.mark?.line ?? 0 }
    var column: Int { node.mark?.column ?? 0 }

    func error(_ message: String) -> ConfigError {
        ConfigError(file: file, line: line, column: column, message: path.isEmpty ? message : "\(path): \(message)")
    }

    static func parse(yaml: String, file: String) throws -> ConfigNode {
        do {
            guard let root = try Yams.compose(yaml: yaml) else {
                throw ConfigError(file: file, line: 1, column: 1, message: "the file is empty")
            }
            return ConfigNode(node: root, path: "", file: file)
        } catch let e as YamlError {
            switch e {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
                 .composer(let context, let problem, let mark, _):
                // libyaml marks where it gave up (often the end of the file) and, separately, where the construct began.
                let what = context.map { "\(problem) (\($0.text) that starts at line \($0.mark.line), column \($0.mark.column))" } ?? problem
                throw ConfigError(file: file, line: mark.line, column: mark.column, message: "YAML: \(what)")
            default:
                throw ConfigError(file: file, line: 1, column: 1, message: "YAML: \(e)")
            }
        }
    }

    func mapping() throws -> [(key: String, value: ConfigNode)] {
        guard case .mapping(let m) = node else { throw error("expected a mapping (key: value)") }
        var seen = Set<String>()
        return try m.map { k, v in
            guard let key = k.string else {
                throw ConfigNode(node: k, path: path, file: file).error("keys must be strings")
            }
            guard seen.insert(key).inserted else {
                throw ConfigNode(node: k, path: path, file: file).error("duplicate key '\(key)'")
            }
            return (key, ConfigNode(node: v, path: path.isEmpty ? key : "\(path).\(key)", file: file))
        }
    }

    /// Reads a mapping whose allowed keys are `known`; refuses others.
    func fields(_ known: Set<String>) throws -> [String: ConfigNode] {
        var out: [String: ConfigNode] = [:]
        for (key, value) in try mapping() {
            guard known.contains(key) else {
                throw value.errorAtKey("unknown key '\(key)' (expected one of: \(known.sorted().joined(separator: ", ")))")
            }
            out[key] = value
        }
        return out
    }

    func errorAtKey(_ message: String) -> ConfigError {
        let parent = path.split(separator: ".").dropLast().joined(separator: ".")
        return ConfigError(file: file, line: line, column: column, message: parent.isEmpty ? message : "\(parent): \(message)")
    }

    func string() throws -> String {
        guard case .scalar(let s) = node else { throw error("expected a string") }
        return s.string
    }

    func strings() throws -> [String] {
        switch node {
        case .scalar(let s): return [s.string]
        case .sequence(let seq):
            return try seq.map { n in try ConfigNode(node: n, path: path, file: file).string() }
        default: throw error("expected a string or a list of strings")
        }
    }

    func bool() throws -> Bool {
        guard let b = node.bool else { throw error("expected true or false") }
        return b
    }

    func int(in range: ClosedRange<Int>) throws -> Int {
        guard let i = node.int else { throw error("expected a whole number") }
        guard range.contains(i) else { throw error("\(i) is outside \(range.lowerBound)...\(range.upperBound)") }
        return i
    }

    /// A size: a number of bytes, or with a unit (64KiB, 16MiB, 1GiB; KB/MB/GB are taken as powers of 1024 too).
    func bytes(max: Int) throws -> Int {
        let text = try string().trimmingCharacters(in: .whitespaces)
        let units: [(String, Int)] = [("GIB", 1 << 30), ("MIB", 1 << 20), ("KIB", 1 << 10), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1)]
        var number = text.uppercased(), factor = 1
        for (u, f) in units where number.hasSuffix(u) {
            number = String(number.dropLast(u.count)).trimmingCharacters(in: .whitespaces)
            factor = f
            break
        }
        guard let n = Int(number), n >= 0, n <= max / factor else { throw error("expected a size such as 512KiB or 16MiB, at most \(max) bytes") }
        return n * factor
    }

    /// A duration: 30s, 15m, 2h, 500ms, or a number of seconds.
    func duration() throws -> Duration {
        let text = try string().trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (u, f) in units where text.hasSuffix(u) {
            if let v = Double(text.dropLast(u.count)), v >= 0 { return .milliseconds(Int64(v * f * 1000)) }
        }
        if let v = Double(text), v >= 0 { return .milliseconds(Int64(v * 1000)) }
        throw error("expected a duration such as 30s, 15m or 2h")
    }

    func hostPort() throws -> HostPort {
        let text = try string()
        guard let hp = HostPort(text) else { throw error("expected HOST:PORT, e.g. 127.0.0.1:6432 or [::1]:6432") }
        return hp
    }

    func oneOf<T>(_ choices: [String: T]) throws -> T {
        let s = try string()
        guard let v = choices[s] else { throw error("'\(s)' is not one of: \(choices.keys.sorted().joined(separator: ", "))") }
        return v
    }
}

public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init?(_ text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("["), let close = t.firstIndex(of: "]") {
            host = String(t[t.index(after: t.startIndex)..<close])
            let rest = t[t.index(after: close)...]
            guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (1...65535).contains(p) else { return nil }
            port = p
        } else {
            guard let colon = t.lastIndex(of: ":"), let p = Int(t[t.index(after: colon)...]), (1...65535).contains(p),
                  !t[..<colon].isEmpty, !t[..<colon].contains(":") else { return nil }
            host = String(t[..<colon])
            port = p
        }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Loopback addresses, where plaintext and plain-http are tolerated.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
