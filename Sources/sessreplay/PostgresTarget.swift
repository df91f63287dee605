import Foundation
import ProxyCore

/// Where `sessreplay` connects and as whom: a `postgres://` URL completed from the environment,
/// a service file and a password file as libpq completes it. A password is never taken from
/// the command line.
struct PostgresTarget: Sendable {
    var host: String
    var port: Int
    var database: String
    var user: String
    var password: String?
    var sslMode: TargetConfig.UpstreamTLS
    var sslRootCert: String?
    /// Where the password came from (never the password itself), for messages.
    var passwordSource: String

    /// The URL as recorded in the replay's capture: no password, ever.
    var display: String { "postgres://\(user)@\(host):\(port)/\(database)?sslmode=\(sslMode.rawValue)" }

    struct Problem: Error, CustomStringConvertible { var description: String }

    static func parse(_ text: String, environment env: [String: String] = ProcessInfo.processInfo.environment) throws -> PostgresTarget {
        let lower = text.lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            throw Problem(description: "--target \(text): HTTP targets are not built yet (the HTTP adapter does not exist); sessreplay replays PostgreSQL sessions only")
        }
        guard lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://"), let url = URLComponents(string: text) else {
            throw Problem(description: "--target \(text): not a postgres://host:port/database URL")
        }
        if url.password != nil {
            throw Problem(description: "--target: the URL holds a password; it would be in your shell history and the process list. Use PGPASSWORD, ~/.pgpass (PGPASSFILE) or a service file (PGSERVICE)")
        }
        var query: [String: String] = [:]
        for item in url.queryItems ?? [] { query[item.name] = item.value ?? "" }
        if query["password"] != nil {
            throw Problem(description: "--target: the URL holds a password parameter; use PGPASSWORD, ~/.pgpass (PGPASSFILE) or a service file (PGSERVICE)")
        }
        let serviceName = query["service"] ?? env["PGSERVICE"]
        var service: [String: String] = [:]
        if let serviceName, !serviceName.isEmpty {
            service = try Self.service(serviceName, environment: env)
        }
        func pick(_ urlValue: String?, _ key: String, _ envKey: String) -> String? {
            if let v = urlValue, !v.isEmpty { return v }
            if let v = service[key], !v.isEmpty { return v }
            if let v = env[envKey], !v.isEmpty { return v }
            return nil
        }
        let host = pick(url.host.map { $0.removingPercentEncoding ?? $0 }, "host", "PGHOST") ?? "127.0.0.1"
        let portText = pick(url.port.map(String.init), "port", "PGPORT") ?? "5432"
        guard let port = Int(portText), (1...65535).contains(port) else { throw Problem(description: "--target: bad port \(portText)") }
        let path = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        let user = pick(url.user.map { $0.removingPercentEncoding ?? $0 }, "user", "PGUSER") ?? env["USER"] ?? ""
        guard !user.isEmpty else { throw Problem(description: "--target: no user: put it in the URL (postgres://USER@host/db) or set PGUSER") }
        let database = pick(path.removingPercentEncoding ?? path, "dbname", "PGDATABASE") ?? user
        let modeText = pick(query["sslmode"], "sslmode", "PGSSLMODE") ?? "prefer"
        let mode: TargetConfig.UpstreamTLS
        switch modeText {
        case "allow", "prefer": mode = .prefer
        case "disable", "require", "verify-ca", "verify-full": mode = TargetConfig.UpstreamTLS(rawValue: modeText)!
        default: throw Problem(description: "--target: unknown sslmode \(modeText) (disable, prefer, require, verify-ca, verify-full)")
        }
        let rootCert = pick(query["sslrootcert"], "sslrootcert", "PGSSLROOTCERT")
        if mode.verifies && rootCert == nil {
            throw Problem(description: "--target: sslmode=\(modeText) needs sslrootcert (in the URL, the service or PGSSLROOTCERT)")
        }
        var target = PostgresTarget(host: host, port: port, database: database, user: user, password: nil, sslMode: mode,
                                    sslRootCert: rootCert, passwordSource: "none")
        if let p = env["PGPASSWORD"], !p.isEmpty {
            target.password = p; target.passwordSource = "PGPASSWORD"
        } else if let p = service["password"], !p.isEmpty {
            target.password = p; target.passwordSource = "service \(serviceName ?? "")"
        } else {
            let file = env["PGPASSFILE"] ?? (env["HOME"].map { $0 + "/.pgpass" } ?? "")
            if let p = Self.passfilePassword(file, host: host, port: port, database: database, user: user) {
                target.password = p; target.passwordSource = file
            }
        }
        return target
    }

    /// A section of the service file (PGSERVICEFILE, else ~/.pg_service.conf), as libpq reads it.
    static func service(_ name: String, environment env: [String: String]) throws -> [String: String] {
        let candidates = [env["PGSERVICEFILE"], env["HOME"].map { $0 + "/.pg_service.conf" }].compactMap { $0 }
        for file in candidates {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            var section: String?
            var values: [String: String] = [:]
            var found = false
            for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") { continue }
                if line.hasPrefix("[") && line.hasSuffix("]") {
                    section = String(line.dropFirst().dropLast())
                    if section == name { found = true }
                    continue
                }
                guard section == name, let eq = line.firstIndex(of: "=") else { continue }
                values[line[..<eq].trimmingCharacters(in: .whitespaces)] = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            }
            if found { return values }
        }
        throw Problem(description: "service \"\(name)\" not found in \(candidates.joined(separator: " or "))")
    }

    /// The password file's first matching line (`host:port:database:user:password`, `*` matches
    /// anything, `\:` and `\\` escaped). Ignored, as libpq does, when others can read it.
    static func passfilePassword(_ file: String, host: String, port: Int, database: String, user: String) -> String? {
        guard !file.isEmpty, let attributes = try? FileManager.default.attributesOfItem(atPath: file),
              let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        if let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
            FileHandle.standardError.write(Data("sessreplay: warning: \(file) has group or world access; it is not used (chmod 0600 it)\n".utf8))
            return nil
        }
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            var fields: [String] = [], current = "", escaped = false
            for c in line {
                if escaped { current.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == ":" && fields.count < 4 {
                    fields.append(current); current = ""
                } else { current.append(c) }
            }
            fields.append(current)
            guard fields.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }
}
