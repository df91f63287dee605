/// The header fields the gate sends upstream for an admitted request.
public enum UpstreamRequestFields {
    /// - Hop-by-hop fields removed (HopByHopFields);
    /// - the client's `Authorization` (its OIDC token, already checked) removed and the target's
    ///   own credential put in its place, so the upstream never sees the client's token;
    /// - the client's `X-Forwarded-For` dropped and the peer's address set: the gate is the trust
    ///   boundary, a value the client wrote is not the gate's word;
    /// - `Via` extended with the gate (RFC 9110 §7.6.3);
    /// - framing set by the gate: `Content-Length` for a known length, `Transfer-Encoding: chunked`
    ///   for a chunked body it streams on.
    public static func make(_ head: RequestHead, framing: BodyFraming, credential: UpstreamCredential,
                            clientAddress: String, gateName: String = "tollgate") -> [HTTPField] {
        var out = HopByHopFields.removing(from: head.fields).filter {
            !$0.hasName("authorization") && !$0.hasName("x-forwarded-for") && !$0.hasName("via")
        }
        if let auth = credential.authorization { out.append(HTTPField("Authorization", auth)) }
        let via = head.fields.values("via") + ["1.\(head.minorVersion) \(gateName)"]
        out.append(HTTPField("Via", via.joined(separator: ", ")))
        out.append(HTTPField("X-Forwarded-For", clientAddress))
        switch framing {
        case .none: break
        case .length(let n): out.append(HTTPField("Content-Length", String(n)))
        case .chunked: out.append(HTTPField("Transfer-Encoding", "chunked"))
        }
        return out
    }
}
