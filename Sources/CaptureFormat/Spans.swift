// Exchange spans (format 1.1, docs/capture-format.md, "Exchange spans"): for each
// events block, how many blocks before and after it the exchanges it holds reach.
// A search that finds one event of an exchange in block j then knows that the rest
// of that exchange lies in blocks j - before ... j + after, without decompressing
// anything, and that blocks outside cannot complete it.

/// How far the exchanges with an event in one block reach into earlier and later blocks.
public struct ExchangeSpan: Sendable, Equatable, WireMessage {
    /// Every exchange with an event in this block has its first event at most this many blocks earlier.
    public var before: UInt32
    /// ... and its last event at most this many blocks later.
    public var after: UInt32

    public init(before: UInt32 = 0, after: UInt32 = 0) { self.before = before; self.after = after }

    /// Whether this span reaches at least as far as `other` on both sides (a writer may over-approximate).
    public func covers(_ other: ExchangeSpan) -> Bool { before >= other.before && after >= other.after }

    public func encode(to w: inout WireWriter) { w.uint(1, UInt64(before)); w.uint(2, UInt64(after)) }

    public init(wire r: inout WireReader) throws {
        self.init()
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: before = UInt32(clamping: try r.uint(t))
            case 2: after = UInt32(clamping: try r.uint(t))
            default: try r.skip(t)
            }
        }
    }
}

/// Computes exchange spans from events in file order. The writer, recovery and the verifier
/// share it. With `maxTracked` set, exchanges not seen in the last two blocks are forgotten when
/// more than that many are tracked; if a forgotten one has another event later, its span is taken
/// to reach back to block 0, which over-approximates (allowed) and never under-approximates.
public struct ExchangeSpanBuilder: Sendable {
    var ranges: [UInt64: (first: Int, last: Int)] = [:]
    public private(set) var spans: [ExchangeSpan] = []
    let maxTracked: Int
    var forgottenMax: UInt64 = 0
    var forgotAny = false
    /// The previous event's exchange and block: an exchange's events mostly come together, and
    /// a second event in the same block changes nothing.
    var previous: (exchangeID: UInt64, block: Int) = (0, -1)

    public init(maxTracked: Int = .max) { self.maxTracked = maxTracked }

    /// Notes an event of exchange `exchangeID` (0: none) in block `block`; blocks come in order from 0.
    public mutating func add(exchangeID: UInt64, block: Int) {
        if spans.count <= block { open(block) }
        guard exchangeID != 0, previous != (exchangeID, block) else { return }
        previous = (exchangeID, block)
        if let r = ranges[exchangeID] {
            if r.last < block {
                extend(first: r.first, last: r.last, to: block)
                ranges[exchangeID] = (r.first, block)
            }
        } else if forgotAny && exchangeID <= forgottenMax {
            extend(first: 0, last: -1, to: block)
            ranges[exchangeID] = (0, block)
        } else {
            ranges[exchangeID] = (block, block)
        }
    }

    /// The spans of blocks 0 ..< count (blocks without exchange events reach nowhere).
    public func build(count: Int) -> [ExchangeSpan] {
        var s = Array(spans.prefix(count))
        while s.count < count { s.append(ExchangeSpan()) }
        return s
    }

    mutating func open(_ block: Int) {
        while spans.count <= block { spans.append(ExchangeSpan()) }
        guard ranges.count > maxTracked else { return }
        for (id, r) in ranges where r.last < block - 1 {
            ranges[id] = nil
            forgottenMax = max(forgottenMax, id)
            forgotAny = true
        }
    }

    /// An exchange known in blocks first...last now also has an event in block `to`: every block in
    /// first...to is covered by it.
    mutating func extend(first: Int, last: Int, to block: Int) {
        for j in first..<block {
            spans[j].after = max(spans[j].after, UInt32(clamping: block - j))
        }
        for j in max(first, last + 1)...block {
            spans[j].before = max(spans[j].before, UInt32(clamping: j - first))
        }
    }
}
