/// The header fields the gate sends the client for an upstream response: hop-by-hop fields
/// removed (RFC 9110 §7.6.1), `Via` extended, and framing set by the gate, since masking changes
/// a body's length (`Content-Length` only for a body the gate has whole and unchanged in length).
public enum DownstreamResponseFields {
    public static func make(_ fields: [HTTPField], framing: BodyFraming, gateName: String = "tollgate") -> [HTTPField] {
        var out = HopByHopFields.removing(from: fields).filter { !$0.hasName("via") }
        out.append(HTTPField("Via", (fields.values("via") + ["1.1 \(gateName)"]).joined(separator: ", ")))
        switch framing {
        case .none: out.append(HTTPField("Content-Length", "0"))
        case .length(let n): out.append(HTTPField("Content-Length", String(n)))
        case .chunked: out.append(HTTPField("Transfer-Encoding", "chunked"))
        }
        return out
    }
}
