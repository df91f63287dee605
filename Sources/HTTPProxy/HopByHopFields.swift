/// Connection-specific fields a proxy must not forward (RFC 9110 §7.6.1): `Connection` and every
/// field it names, and the ones defined as hop-by-hop whether named or not. `Transfer-Encoding`
/// and `Content-Length` go too: the gate frames each message it sends itself.
public enum HopByHopFields {
    static let always: Set<String> = [
        "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-connection", "content-length",
    ]

    /// The fields minus the hop-by-hop ones and `Proxy-*` (Proxy-Authorization and its kin are
    /// credentials for this hop only).
    public static func removing(from fields: [HTTPField]) -> [HTTPField] {
        // Most messages have no Connection field: the set of names is built only when there is one.
        let named = fields.contains { $0.hasName("connection") } ? Set(fields.listElements("connection").map { $0.lowercased() }) : []
        return fields.filter {
            let n = $0.canonicalName
            return !always.contains(n) && !named.contains(n) && !n.hasPrefix("proxy-")
        }
    }
}
