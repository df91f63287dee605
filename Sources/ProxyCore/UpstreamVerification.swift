import Foundation

extension TargetConfig {
    /// `upstream_ca_file` and `upstream_server_name`: required and used only where the mode
    /// verifies. A verify mode without a CA file is refused rather than falling back to the
    /// system's trust store: the gate hands its password to whatever it verifies, so what it
    /// trusts is named in its configuration. A CA file or name under a mode that does not
    /// verify is refused too: it would read as verification that does not happen.
    static func upstreamVerification(_ f: [String: ConfigNode], mode: UpstreamTLS, node: ConfigNode,
                                     resolve: (String) -> String) throws -> (caFile: String?, serverName: String?) {
        let caNode = f["upstream_ca_file"], nameNode = f["upstream_server_name"]
        guard mode.verifies else {
            if let extra = caNode ?? nameNode {
                throw extra.error("only used with upstream_tls: verify-ca or verify-full (upstream_tls is \(mode.rawValue))")
            }
            return (nil, nil)
        }
        guard let caNode else {
            throw node.error("upstream_tls: \(mode.rawValue) needs 'upstream_ca_file' (PEM CA certificates the database's certificate must chain to)")
        }
        let caFile = resolve(try caNode.string())
        guard FileManager.default.fileExists(atPath: caFile) else { throw caNode.error("file not found: \(caFile)") }
        if let nameNode, mode != .verifyFull {
            throw nameNode.error("only used with upstream_tls: verify-full (verify-ca does not check the name)")
        }
        let name = try nameNode?.string()
        if let name, name.isEmpty { throw nameNode!.error("empty server name") }
        return (caFile, name)
    }

    /// Whether the upstream's identity is checked beyond the encryption: false for every mode
    /// but verify-ca and verify-full.
    public var upstreamVerified: Bool { upstreamTLS.verifies }
}
