import Foundation

public struct RecoveryResult: Sendable {
    public var blocksKept: Int
    public var eventsKept: UInt64
    public var bytesDropped: Int
    public var reason: String
}

extension CaptureFile {
    /// Writes a sealed copy of an unsealed (crashed or cut) capture to `output`:
    /// the header and every whole block whose CRC, chain and signature hold, byte for
    /// byte, then a footer marked recovered and a trailer signed by `sealer`.
    public func recover(to output: String, sealer: SigningKey) throws(CaptureError) -> RecoveryResult {
        guard case .unsealed = state else {
            throw CaptureError(.io, "\(path) is sealed: nothing to recover (use --verify to check it)")
        }
        // Keep the prefix that verifies; stop at the first block that does not.
        let report = verify()
        let firstBad = report.problems.first { $0.location.hasPrefix("block ") }
        let keep = firstBad.flatMap { p in blocks.firstIndex { Int($0.offset) + Int($0.length) > p.offset } } ?? blocks.count
        var kept = Array(blocks.prefix(keep))
        let keptEnd = kept.last.map { Int($0.offset) + Int($0.length) } ?? headerLength

        var summary = SummaryBuilder()
        var spans = ExchangeSpanBuilder()
        for (i, block) in kept.enumerated() {
            for e in try events(in: block) {
                summary.add(e)
                spans.add(exchangeID: e.exchangeID, block: i)
            }
        }
        for (i, span) in spans.build(count: kept.count).enumerated() { kept[i].exchangeSpan = span }
        let built = summary.build()
        let reason: String
        if let firstBad { reason = "\(firstBad)" } else if case .unsealed(_, _, let r) = state { reason = r } else { reason = "" }

        let fd = open(output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CaptureError(.io, "\(output): cannot create: \(String(cString: strerror(errno)))") }
        defer { Foundation.close(fd) }
        var bytes = withBytes { Array($0[0..<keptEnd]) }
        var chainer = BlockSealer(fileHeader: Array(bytes[0..<headerLength]))
        if let last = kept.last {
            let chainAt = last.payloadOffset + Int(last.storedLength)
            chainer.chainHash = Array(bytes[chainAt..<(chainAt + 32)])
        }
        let footer = Footer(sessionID: header.sessionID, blocks: kept, summary: built, sealedMicros: nowMicros(),
                            sealerPublicKey: sealer.publicKey,
                            recovery: RecoveryInfo(originalLength: UInt64(fileSize), keptLength: UInt64(keptEnd),
                                                   reason: reason, recoveredMicros: nowMicros()))
        bytes += sealFooter(footer, at: UInt64(keptEnd), sealer: &chainer, key: sealer, flags: .recovered, level: 6)
        try writeAll(fd: fd, bytes, path: output)
        guard fsync(fd) == 0 else { throw CaptureError(.io, "\(output): fsync failed") }
        return RecoveryResult(blocksKept: kept.count, eventsKept: built.eventCount, bytesDropped: fileSize - keptEnd, reason: reason)
    }
}
