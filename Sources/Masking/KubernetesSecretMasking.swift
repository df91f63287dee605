/// The values of Kubernetes Secrets are masked in JSON bodies before the client or a capture sees
/// them: in a `Secret`, in the items of a `SecretList`, in a watch event's object, in a Table
/// row's object — anywhere an object says `"kind": "Secret"`. Each value of `data` and
/// `stringData` is replaced, its key kept, so `kubectl get secret -o yaml` still shows which keys
/// exist. `kubectl.kubernetes.io/last-applied-configuration`, which holds the applied Secret in
/// clear, is replaced whole. Every other byte of the document is left as it was.
///
/// Pure. One document (a response body, or one line of a watch stream) at a time; the caller caps
/// its size (`KubernetesSecretMasking.maxDocumentBytes`). A document that is not JSON is refused:
/// the caller must not pass it on unmasked.
public enum KubernetesSecretMasking {
    /// Replaces a `data` value: valid base64 (of `[REDACTED]`), because `data` values are base64
    /// and clients that decode them (Go's typed clients) should not be handed anything else.
    public static let dataMask = "W1JFREFDVEVEXQ=="
    /// Replaces a `stringData` value and the last-applied annotation.
    public static let textMask = "[REDACTED]"
    public static let lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"
    /// What the capture's mask summary counts these under.
    public static let detectorName: DetectorName = "kubernetes_secret"
    /// The largest document the gate masks (a body, or one watch event); larger ones are refused.
    public static let maxDocumentBytes = 64 << 20

    public struct Result: Sendable, Equatable {
        /// The document with the values replaced (the input itself when nothing was).
        public var bytes: [UInt8]
        /// How many values were replaced.
        public var masked: Int
    }

    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public var detail: String
        public var description: String { detail }
    }

    /// Masks one JSON document: a body, or one line of a watch stream (`{"type":…,"object":…}`).
    public static func mask(_ document: [UInt8], maxBytes: Int = maxDocumentBytes) throws(Refusal) -> Result {
        guard document.count <= maxBytes else {
            throw Refusal(detail: "a JSON document of \(document.count) bytes is over the \(maxBytes)-byte limit for Secret masking")
        }
        let root: JSONSpan
        do { root = try JSONSpanReader.read(document) } catch { throw Refusal(detail: "\(error)") }
        var replacements: [(Range<Int>, String)] = []
        collect(root, inSecretList: false, document, into: &replacements)
        guard !replacements.isEmpty else { return Result(bytes: document, masked: 0) }
        replacements.sort { $0.0.lowerBound < $1.0.lowerBound }
        var out: [UInt8] = []
        out.reserveCapacity(document.count)
        var at = 0
        for (range, mask) in replacements {
            out.append(contentsOf: document[at..<range.lowerBound])
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: mask.utf8)
            out.append(UInt8(ascii: "\""))
            at = range.upperBound
        }
        out.append(contentsOf: document[at...])
        return Result(bytes: out, masked: replacements.count)
    }

    /// Walks every value: an object is a Secret if any of its `kind` members says so (JSON may
    /// repeat a key; a reader could take either), or if it is an item of a SecretList.
    static func collect(_ node: JSONSpan, inSecretList: Bool, _ doc: [UInt8], into out: inout [(Range<Int>, String)]) {
        switch node {
        case .object(let members, _):
            let kinds = node.members("kind").compactMap(\.stringValue)
            let isSecret = inSecretList || kinds.contains("Secret")
            let isList = kinds.contains("SecretList")
            for m in members {
                if isSecret && (m.key == "data" || m.key == "stringData") {
                    maskValues(of: m.value, with: m.key == "data" ? dataMask : textMask, doc, into: &out)
                } else if isSecret && m.key == "metadata" {
                    for annotations in m.value.members("annotations") {
                        for v in annotations.members(lastAppliedAnnotation) { out.append((v.range, textMask)) }
                    }
                    collect(m.value, inSecretList: false, doc, into: &out)
                } else if isList && m.key == "items", case .array(let items, _) = m.value {
                    for item in items { collect(item, inSecretList: true, doc, into: &out) }
                } else {
                    collect(m.value, inSecretList: false, doc, into: &out)
                }
            }
        case .array(let items, _):
            for item in items { collect(item, inSecretList: false, doc, into: &out) }
        case .string, .scalar:
            break
        }
    }

    /// Each member's value of a `data`/`stringData` map; anything but a map (or null) is replaced
    /// whole, since its shape is not one the gate knows how to keep.
    static func maskValues(of node: JSONSpan, with mask: String, _ doc: [UInt8], into out: inout [(Range<Int>, String)]) {
        switch node {
        case .object(let members, _):
            for m in members { out.append((m.value.range, mask)) }
        case .scalar(let r) where doc[r].elementsEqual("null".utf8):
            break
        default:
            out.append((node.range, mask))
        }
    }
}
