/// What the gate may do with an upstream response's body, decided from its header fields before
/// any of it reaches the client. Fail closed: a body the gate cannot read as text (a
/// Content-Encoding it does not decode) is not passed on unmasked; the client gets a 502.
public enum ResponseBodyHandling: Sendable, Equatable {
    /// Text or JSON in no content coding: masked with the `Masking` detectors as it streams.
    case maskText
    /// A media type the detectors do not read as text (images, archives, octet streams): passed
    /// as is; recorded capped and hashed only.
    case opaque
    /// Refused with 502, with the reason for the capture and the client.
    case refuse(String)

    public static func of(_ fields: [HTTPField]) -> ResponseBodyHandling {
        let codings = fields.listElements("content-encoding").map { $0.lowercased() }
        let real = codings.filter { $0 != "identity" }
        // One gzip or deflate coding is decoded by the gate (`ContentDecoder`); anything else is refused.
        if !real.isEmpty && !(real.count == 1 && ContentDecoder.decodes(real[0])) {
            return .refuse("the response has Content-Encoding `\(codings.joined(separator: ", "))`, which the gate does not decode to mask (it decodes one gzip or deflate coding)")
        }
        let types = fields.values("content-type")
        guard types.count <= 1 else { return .refuse("the response has \(types.count) Content-Type fields") }
        // No Content-Type: the client may sniff it as text, so it is masked as text.
        guard let type = types.first else { return .maskText }
        let media = type.split(separator: ";", maxSplits: 1).first.map { $0.trimmingOWS().lowercased() } ?? ""
        if media.hasPrefix("text/") || media == "application/json" || media.hasSuffix("+json")
            || media == "application/xml" || media.hasSuffix("+xml") || media == "application/x-www-form-urlencoded"
            || media == "application/javascript" || media == "application/x-ndjson" || media.isEmpty {
            return .maskText
        }
        // A coded body of another type is not passed unread (its type is the upstream's word only).
        if !real.isEmpty { return .refuse("the response has Content-Encoding `\(codings.joined(separator: ", "))` on `\(media)`, which the gate does not decode (only text and JSON bodies are)") }
        return .opaque
    }

    /// The one coding the gate decodes for this body (`gzip`, `x-gzip`, `deflate`), if it has one.
    public static func decodedCoding(_ fields: [HTTPField]) -> String? {
        let real = fields.listElements("content-encoding").map { $0.lowercased() }.filter { $0 != "identity" }
        return real.count == 1 && ContentDecoder.decodes(real[0]) ? real[0] : nil
    }

    /// The body is JSON (or JSON lines): `json_field` mask rules apply to it.
    public static func isJSON(_ fields: [HTTPField]) -> Bool {
        guard let type = fields.values("content-type").first else { return false }
        let media = type.split(separator: ";", maxSplits: 1).first.map { $0.trimmingOWS().lowercased() } ?? ""
        return media == "application/json" || media.hasSuffix("+json") || media == "application/x-ndjson"
    }
}
