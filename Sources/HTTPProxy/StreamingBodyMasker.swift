import Masking

/// Masks a text or JSON body as it streams, holding no more than a bounded window of it.
///
/// A body up to `window` bytes is masked whole, as one value. Past that, what has arrived is
/// masked and sent up to its last delimiter (a line break, a quote, `,` `{` `}` `[` `]` `<` `>`),
/// and the rest waits for more: no built-in detector's match (an email, a card or SSN, a token)
/// contains one of them, so a cut there never splits a match. What is held never exceeds
/// `maxHeld`: a body with no delimiter in that many bytes cannot be cut safely and is refused
/// (the connection is cut; nothing of it was sent unmasked).
public struct StreamingBodyMasker: Sendable {
    /// Bodies up to this size are masked whole.
    public static let window = 64 * 1024
    /// The most held back waiting for a delimiter.
    public static let maxHeld = 1024 * 1024

    let masker: Masker
    /// A stream read line by line (a pod's log, `logs -f`): each line is masked and sent as soon
    /// as it ends, not held for the window, so the client sees it while the stream stays open.
    let lineByLine: Bool
    /// A JSON body under `json_field` rules: their values masked first, as the body streams.
    var json: StreamingJSONFieldMasker?
    var held: [UInt8] = []
    public private(set) var tally = MaskTally()
    static let location = MaskLocation("body")

    public init(masker: Masker, lineByLine: Bool = false, json: Bool = false) {
        self.masker = masker; self.lineByLine = lineByLine
        if json && !masker.jsonFieldRules.isEmpty { self.json = StreamingJSONFieldMasker(rules: masker.jsonFieldRules) }
    }

    static func isDelimiter(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "\n"), UInt8(ascii: "\""), UInt8(ascii: ","), UInt8(ascii: "{"), UInt8(ascii: "}"),
             UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "<"), UInt8(ascii: ">"):
            true
        default:
            false
        }
    }

    public struct Unmaskable: Error, Equatable {
        public var detail: String
    }

    /// The masked bytes that may be sent now (possibly none).
    public mutating func feed(_ bytes: [UInt8]) -> Result<[UInt8], Unmaskable> {
        var bytes = bytes
        if var j = json {
            let before = j.masked
            switch j.feed(bytes) {
            case .success(let out): bytes = out
            case .failure(let f): return .failure(Unmaskable(detail: f.detail))
            }
            countJSON(j.masked - before)
            json = j
        }
        held.append(contentsOf: bytes)
        guard lineByLine || held.count > Self.window else { return .success([]) }
        // Line by line, only a line break ends what may be sent: a match never spans one.
        guard let cut = lineByLine ? held.lastIndex(of: UInt8(ascii: "\n")) : held.lastIndex(where: Self.isDelimiter) else {
            if held.count > Self.maxHeld {
                let what = lineByLine ? "line break" : "line break or JSON delimiter"
                return .failure(Unmaskable(detail: "the body has no \(what) in \(Self.maxHeld) bytes; the gate cannot mask it as it streams"))
            }
            return .success([])
        }
        let ready = Array(held[...cut])
        held.removeFirst(cut + 1)
        return .success(mask(ready))
    }

    /// The end of the body: what was held, masked; refused when a JSON body ends inside a value.
    public mutating func finish() -> Result<[UInt8], Unmaskable> {
        if var j = json {
            switch j.finish() {
            case .success(let out): held += out
            case .failure(let f): return .failure(Unmaskable(detail: f.detail))
            }
            json = j
        }
        defer { held = [] }
        return .success(mask(held))
    }

    mutating func countJSON(_ n: Int) {
        if n > 0 { tally.record([StreamingJSONFieldMasker.detectorName: n], at: Self.location) }
    }

    mutating func mask(_ bytes: [UInt8]) -> [UInt8] {
        guard !bytes.isEmpty, let m = masker.mask(bytes) else { return bytes }
        tally.record(m, at: Self.location)
        return m.bytes
    }
}
