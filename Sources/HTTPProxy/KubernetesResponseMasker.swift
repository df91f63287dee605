import Masking

/// Masks a Kubernetes API response's JSON body before any of it reaches the client: Secret
/// `data`/`stringData` values (`KubernetesSecretMasking`, unless the policies reveal them) and then
/// the target's own masks. A plain response is held whole up to the target's body limit and masked
/// as one document; a watch stream is masked one event (line) at a time as it arrives. What is not
/// JSON, or is larger than the limit, is refused: never passed on unmasked.
public struct KubernetesResponseMasker: Sendable {
    public enum Mode: Sendable {
        /// The whole body, up to `limit` bytes.
        case whole(limit: Int)
        /// A watch stream: one JSON event per line.
        case lines(JSONLineFramer)
    }

    public private(set) var mode: Mode
    /// The policies let this caller see Secret values: only the target's masks apply.
    let revealSecrets: Bool
    let text: Masker?
    var held: [UInt8] = []
    public private(set) var tally = MaskTally()
    static let location = MaskLocation("body")

    public init(watch: Bool, limit: Int, revealSecrets: Bool, text: Masker?) {
        mode = watch ? .lines(JSONLineFramer(maxLineBytes: min(limit, KubernetesSecretMasking.maxDocumentBytes))) : .whole(limit: limit)
        self.revealSecrets = revealSecrets
        self.text = text
    }

    public var isWatch: Bool { if case .lines = mode { true } else { false } }

    /// The masked bytes that may be sent now (none until the end for a whole body).
    public mutating func feed(_ bytes: [UInt8]) -> Result<[UInt8], StreamingBodyMasker.Unmaskable> {
        switch mode {
        case .whole(let limit):
            held.append(contentsOf: bytes)
            if held.count > limit {
                return .failure(.init(detail: "the Kubernetes response is over the target's \(limit)-byte body limit; the gate cannot mask it whole"))
            }
            return .success([])
        case .lines(var framer):
            let lines: [[UInt8]]
            do { lines = try framer.append(bytes) } catch { return .failure(.init(detail: "\(error)")) }
            mode = .lines(framer)
            var out: [UInt8] = []
            for line in lines {
                switch mask(line) {
                case .success(let m): out += m + [0x0A]
                case .failure(let f): return .failure(f)
                }
            }
            return .success(out)
        }
    }

    /// The end of the body: the held document (or the last unterminated event), masked.
    public mutating func finish() -> Result<[UInt8], StreamingBodyMasker.Unmaskable> {
        switch mode {
        case .whole:
            defer { held = [] }
            return mask(held)
        case .lines(var framer):
            let rest = framer.finish()
            mode = .lines(framer)
            return mask(rest)
        }
    }

    /// One JSON document masked. Blank (an empty body, a keep-alive blank line) passes as is.
    mutating func mask(_ document: [UInt8]) -> Result<[UInt8], StreamingBodyMasker.Unmaskable> {
        if document.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .success(document) }
        var bytes = document
        // Parsed even when Secrets are revealed: a body that is not JSON is not a Kubernetes answer the gate can follow.
        do {
            let r = try KubernetesSecretMasking.mask(document)
            if !revealSecrets {
                bytes = r.bytes
                if r.masked > 0 { tally.record([KubernetesSecretMasking.detectorName: r.masked], at: Self.location) }
            }
        } catch {
            return .failure(.init(detail: "the Kubernetes response is not JSON the gate can read: \(error.detail)"))
        }
        if let text, !text.jsonFieldRules.isEmpty {
            var fields = StreamingJSONFieldMasker(rules: text.jsonFieldRules)
            let fed = fields.feed(bytes)
            let ended = fields.finish()
            switch (fed, ended) {
            case (.success(let out), .success(let rest)): bytes = out + rest
            case (.failure(let f), _), (_, .failure(let f)): return .failure(.init(detail: f.detail))
            }
            if fields.masked > 0 { tally.record([StreamingJSONFieldMasker.detectorName: fields.masked], at: Self.location) }
        }
        if let text, let m = text.mask(bytes) {
            tally.record(m, at: Self.location)
            bytes = m.bytes
        }
        return .success(bytes)
    }
}
