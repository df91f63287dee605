@testable import CaptureFormat
import CZlib
import TestSupport
import Testing

/// The writer's kept deflate stream compresses exactly as `compress2` does, block after block.
@Suite struct CodecTests {
    static func compress2Output(_ raw: [UInt8], level: Int32) -> [UInt8] {
        var outLen = compressBound(uLong(raw.count))
        var out = [UInt8](repeating: 0, count: Int(outLen))
        let rc = out.withUnsafeMutableBytes { o in
            raw.withUnsafeBytes { i in
                compress2(o.baseAddress!.assumingMemoryBound(to: Bytef.self), &outLen,
                          i.baseAddress?.assumingMemoryBound(to: Bytef.self), uLong(raw.count), level)
            }
        }
        #expect(rc == Z_OK)
        return Array(out[..<Int(outLen)])
    }

    @Test(arguments: [Int32(1), 6, 9])
    func aKeptStreamMatchesCompress2BlockAfterBlock(level: Int32) throws {
        var generator = SeededRNG(seed: UInt64(level))
        // Text-like blocks of several sizes (empty, one byte, larger than zlib's window), then
        // incompressible ones, through one stream: each must be what a fresh compress2 makes.
        let words = ["SELECT", "abalance", "FROM", "pgbench_accounts", "WHERE", "aid", "=", "$1", "UPDATE", "\u{1}\u{0}"]
        var blocks: [[UInt8]] = [[], [42]]
        for size in [100, 10_000, 131_072, 300_000] {
            var b: [UInt8] = []
            while b.count < size { b += Array(words[Int(generator.next() % UInt64(words.count))].utf8) + [32] }
            blocks.append(b)
        }
        blocks.append((0..<70_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
        let deflater = Deflater(level: level)
        for block in blocks + blocks.reversed() {
            let stored = deflater.compress(block)
            #expect(stored == CodecTests.compress2Output(block, level: level), "a block of \(block.count) bytes")
            let back = try stored.withUnsafeBytes { try BlockCodec.zlib.decompress($0, rawLength: block.count) }
            #expect(back == block)
        }
    }

    /// Through the pool, from several threads at once and at two levels: every block is still
    /// exactly `compress2`'s, and the pool keeps no more streams than its bound.
    @Test func thePooledStreamsMatchCompress2FromManyThreads() async throws {
        let blocks: [[UInt8]] = (0..<16).map { n in Array(String(repeating: "UPDATE pgbench_accounts SET abalance = \(n); ", count: 50 + n * 40).utf8) }
        let expected = blocks.map { (CodecTests.compress2Output($0, level: 1), CodecTests.compress2Output($0, level: 6)) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for round in 0..<20 {
                        let i = (worker + round) % blocks.count
                        let level: Int32 = (worker + round) % 2 == 0 ? 1 : 6
                        let stored = BlockCodec.zlib.compress(blocks[i], level: level)
                        #expect(stored == (level == 1 ? expected[i].0 : expected[i].1))
                        let back = try stored.withUnsafeBytes { try BlockCodec.zlib.decompress($0, rawLength: blocks[i].count) }
                        #expect(back == blocks[i])
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(Deflater.pool.withLock { $0.count } <= Deflater.keep)
    }
}
