import CaptureFormat
import Crypto

/// A body as the capture keeps it, built as it streams: the first `cap` bytes, and past them
/// only the count and a SHA-256 of the rest (docs/capture-format.md, CappedBytes), so that a
/// huge body costs the gate no more than its cap.
struct BodyRecording {
    let cap: Int
    var kept: [UInt8] = []
    var total: UInt64 = 0
    var rest: SHA256?

    init(cap: Int) { self.cap = cap }

    mutating func append(_ bytes: [UInt8]) {
        total &+= UInt64(bytes.count)
        let room = max(0, cap - kept.count)
        if room >= bytes.count {
            kept.append(contentsOf: bytes)
            return
        }
        kept.append(contentsOf: bytes[..<room])
        if rest == nil { rest = SHA256() }
        rest?.update(data: bytes[room...])
    }

    /// The capped body; `transform` (the secrets pass) applies to what is kept.
    func capped(_ transform: ([UInt8]) -> [UInt8]) -> CappedBytes {
        let data = transform(kept)
        guard let rest else { return CappedBytes(data: data) }
        return CappedBytes(data: data, totalSize: total, cutSHA256: Array(rest.finalize()))
    }
}
