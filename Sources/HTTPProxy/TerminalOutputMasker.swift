import Masking

/// Masks an exec's stdout or stderr as it streams, for a terminal: what arrives is masked and sent
/// up to its last line break; the rest of the line is held until the line ends, more output comes,
/// or the stream is quiet (`KubernetesStreamRelay.flushLater`: the handler flushes after
/// `quiet`), so a prompt or a key's echo still shows at once while a value a program writes in
/// two pieces close together is masked whole. A line over `window` bytes is cut at its last
/// delimiter (`StreamingBodyMasker`'s, which no built-in detector's match contains); a line with
/// none in `maxHeld` bytes cannot be cut safely: refused, nothing of it sent.
struct TerminalOutputMasker: Sendable {
    static let window = 64 * 1024
    static let maxHeld = 1024 * 1024
    /// How long a partial line waits for the rest (a human does not notice; two writes of one program land within it).
    static let quietMillis: Int64 = 30

    let masker: Masker?
    let location: MaskLocation
    private var held: [UInt8] = []
    private(set) var tally = MaskTally()

    init(masker: Masker?, location: String) {
        self.masker = masker
        self.location = MaskLocation(location)
    }

    var isHolding: Bool { !held.isEmpty }

    /// The masked bytes that may be sent now (possibly none).
    mutating func feed(_ bytes: [UInt8]) -> Result<[UInt8], StreamingBodyMasker.Unmaskable> {
        held += bytes
        var cut = held.lastIndex { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }
        if cut == nil, held.count > Self.window {
            cut = held.lastIndex(where: StreamingBodyMasker.isDelimiter)
            if cut == nil, held.count > Self.maxHeld {
                return .failure(.init(detail: "the output has no line break or delimiter in \(Self.maxHeld) bytes; the gate cannot mask it as it streams"))
            }
        }
        guard let cut else { return .success([]) }
        let ready = Array(held[...cut])
        held.removeFirst(cut + 1)
        return .success(mask(ready))
    }

    /// What is held, masked (the stream was quiet, or ends).
    mutating func finish() -> [UInt8] {
        defer { held = [] }
        return mask(held)
    }

    private mutating func mask(_ bytes: [UInt8]) -> [UInt8] {
        guard !bytes.isEmpty, let masker, let m = masker.mask(bytes) else { return bytes }
        tally.record(m, at: location)
        return m.bytes
    }
}
