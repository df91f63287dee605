import Foundation

/// A secret the configuration names but never holds: `NAME_env` (an environment variable) or
/// `NAME_file` (a file, trailing newlines dropped). An inline `NAME` is refused.
struct ConfigSecret {
    var value: String?
    /// Where it came from, for `check` and logs ("env X", "file /p"): never the value.
    var source: String

    /// Reads `name` from the mapping `fields` of `node`. `requireSecrets: false` (commands that do
    /// not connect) accepts a variable that is unset or a file that cannot be read.
    static func read(_ name: String, from fields: [String: ConfigNode], of node: ConfigNode, resolve: (String) -> String,
                     environment: [String: String], requireSecrets: Bool, what: String) throws -> ConfigSecret? {
        if let inline = fields[name] {
            throw inline.errorAtKey("inline \(what)s are not allowed: use \(name)_env or \(name)_file")
        }
        if let envNode = fields[name + "_env"] {
            let variable = try envNode.string()
            let value = environment[variable] ?? ""
            if value.isEmpty && requireSecrets { throw envNode.error("environment variable \(variable) is not set") }
            return ConfigSecret(value: value.isEmpty ? nil : value, source: "env \(variable)")
        }
        if let fileNode = fields[name + "_file"] {
            let path = resolve(try fileNode.string())
            let text = FileManager.default.contents(atPath: path).flatMap { String(data: $0, encoding: .utf8) }
            if text == nil && requireSecrets { throw fileNode.error("cannot read \(what) file \(path)") }
            return ConfigSecret(value: text?.trimmingCharacters(in: .newlines), source: "file \(path)")
        }
        return nil
    }
}
