/// Connection-specific fields a proxy must not forward (RFC 9110 §7.6.1): `Connection` and every
/// field it names, and the ones defined as hop-by-hop whether named or not. `Transfer-Encoding`
/// and `Content-Length` go too: the gate frames each message it sends itself.
public enum HopByHopFields {
    static let always: Set<String> = [
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-connection", "content-length",
    ]
    static let alwaysNames = Array(always)

    /// The fields minus the hop-by-hop ones and `Proxy-*` (Proxy-Authorization and its kin are
    /// credentials for this hop only).
    public static func removing(from fields: [HTTPField]) -> [HTTPField] {
        // Most messages have no Connection field: the set of names is built only when there is one.
        // A list, not a set: it holds one or two names.
        let named = fields.contains { $0.hasName("connection") } ? fields.listElements("connection").map { $0.lowercased() } : []
        // Compared in place (`hasName`), not through a lowercased copy of every name (issue 20).
        return fields.filter { f in
            !alwaysNames.contains(where: f.hasName) && !named.contains(where: f.hasName) && !f.hasNamePrefix("proxy-")
        }
    }
}
