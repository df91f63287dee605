import Foundation

/// A listener's TLS files (PEM certificate chain and key), as a target's `tls:` and the admin
/// API's `tls:` give them.
public struct ListenerTLS: Sendable, Equatable {
    public var certificate: String
    public var key: String

    /// Reads `tls: {certificate, key}`; both must be given and exist.
    static func parse(_ node: ConfigNode, resolve: (String) -> String) throws -> ListenerTLS {
        let t = try node.fields(["certificate", "key"])
        guard let c = try t["certificate"]?.string(), let k = try t["key"]?.string() else {
            throw node.error("needs both 'certificate' and 'key' (PEM files)")
        }
        let tls = ListenerTLS(certificate: resolve(c), key: resolve(k))
        for (label, path) in [("certificate", tls.certificate), ("key", tls.key)] where !FileManager.default.fileExists(atPath: path) {
            throw (t[label] ?? node).error("file not found: \(path)")
        }
        return tls
    }
}
