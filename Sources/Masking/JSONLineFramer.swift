/// Splits a Kubernetes watch stream (one JSON event per line; `\n` after each) into whole events
/// as its chunks arrive, so each can be masked (`KubernetesSecretMasking.mask`) before it is
/// passed on. Memory is bounded: a line longer than `maxLineBytes` is refused, not buffered.
public struct JSONLineFramer: Sendable {
    public let maxLineBytes: Int
    var pending: [UInt8] = []

    public struct Overflow: Error, Sendable, Equatable, CustomStringConvertible {
        public var limit: Int
        public var description: String { "a watch event longer than \(limit) bytes" }
    }

    public init(maxLineBytes: Int = KubernetesSecretMasking.maxDocumentBytes) { self.maxLineBytes = maxLineBytes }

    /// The whole lines `chunk` completes, without their `\n`; the rest waits for the next chunk.
    public mutating func append(_ chunk: some Collection<UInt8>) throws(Overflow) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        for byte in chunk {
            if byte == 0x0A {
                lines.append(pending)
                pending.removeAll(keepingCapacity: true)
            } else {
                guard pending.count < maxLineBytes else { throw Overflow(limit: maxLineBytes) }
                pending.append(byte)
            }
        }
        return lines
    }

    /// At the end of the stream: the last line if it had no `\n` (empty if none).
    public mutating func finish() -> [UInt8] {
        defer { pending = [] }
        return pending
    }
}
