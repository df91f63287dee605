import Foundation

/// gzip and deflate response bodies (`ContentDecoder`): decoded before masking and sent to the
/// client decoded, the Content-Encoding removed and the body framed by the gate.
extension HTTPSessionHandler {
    /// The decoder for a body in one gzip or deflate coding, with the coding taken out of the
    /// fields the client gets; nil (fields unchanged) for a body in no coding.
    func decodingBody(_ fields: inout [HTTPField]) -> ContentDecoder? {
        guard let coding = ResponseBodyHandling.decodedCoding(fields),
              let decoder = ContentDecoder(coding: coding, limit: settings.maxBodyBytes) else { return nil }
        fields.removeAll { $0.canonicalName == "content-encoding" }
        return decoder
    }

    /// A coded body the gate cannot decode (corrupt, a bomb, cut short): a whole Kubernetes body
    /// not yet sent is a 502 Status; otherwise the client's connection is cut mid-body.
    func undecodable(_ detail: String, held: Bool) {
        guard !held else { kubernetesUnmaskable(detail); return }
        logger.warning("HTTP response cut: its body cannot be decoded to mask", metadata: ["target": "\(target.name)", "detail": "\(detail)"])
        endReason = "unmaskable-response"
        dropUpstream()
        context?.close(promise: nil)
    }

    /// What the upstream may answer in: only the codings the gate decodes, of those the client
    /// accepts (a br or zstd answer would be refused). The client gets the body decoded whatever it chose.
    static func upstreamAcceptEncoding(_ fields: [HTTPField]) -> [HTTPField] {
        guard fields.contains(where: { $0.canonicalName == "accept-encoding" }) else { return fields }
        let accepted = fields.listElements("accept-encoding").filter {
            let coding = $0.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            return ContentDecoder.decodes(coding) || coding == "identity"
        }
        var out = fields.filter { $0.canonicalName != "accept-encoding" }
        if !accepted.isEmpty { out.append(HTTPField("Accept-Encoding", accepted.joined(separator: ", "))) }
        return out
    }
}
