import CaptureFormat

/// A capture's exchanges one at a time, in request order, holding only the exchanges still open:
/// memory stays flat however long the capture is (`ExchangeAssembler` holds them all).
///
/// An exchange is handed out once no later event can belong to it. With exchange spans (format
/// 1.1, sealed files) that is exact: an exchange first seen in block `j` ends by block
/// `j + after(j)`. Without spans (a 1.0 file, an unsealed one), an exchange is handed out once
/// `lag` newer exchanges have started: an event later than that (an approval minutes after)
/// would be missed, so such files are read as that bound says (`assumedComplete` counts them).
public struct ExchangeStream {
    public let capture: CaptureFile
    let keepsRows: Bool
    let lag: Int
    var blockIndex = -1
    var events: [Event] = []
    var position = 0
    /// Open exchanges by id, and their ids in order of their first event.
    var open: [UInt64: (exchange: Exchange, lastBlock: Int)] = [:]
    var order: Deque<UInt64> = Deque()
    var finished = false
    /// Exchanges handed out by the lag bound (no spans), not by proof.
    public private(set) var assumedComplete = 0
    /// The most exchanges held open at once.
    public private(set) var peakOpen = 0
    /// Where reading stopped early: a damaged block (the error names its offset). Reading never
    /// throws past it; the exchanges before it are handed out first.
    public private(set) var damage: CaptureError?
    /// The damaged block: its index (0-based) and the byte offset where it starts.
    public private(set) var damagedBlock: (index: Int, offset: UInt64)?

    /// Where and why reading stopped early, for a message: nil when it did not.
    public var damageDescription: String? {
        guard let damage, let b = damagedBlock else { return nil }
        return "block \(b.index) at byte \(b.offset): \(damage)"
    }

    public init(_ capture: CaptureFile, keepsRows: Bool = true, lag: Int = 4096) {
        self.capture = capture; self.keepsRows = keepsRows; self.lag = lag
    }

    var spansKnown: Bool { capture.blocks.allSatisfy { $0.exchangeSpan != nil } }

    /// The next exchange in order of its first event, or nil at the end (or at damage: see `damage`).
    public mutating func next() -> Exchange? {
        while true {
            if let x = popCompleted() { return x }
            if finished { return popAny() }
            guard let e = nextEvent() else { finished = true; continue }
            guard e.exchangeID != 0 else { continue }
            if open[e.exchangeID] == nil {
                open[e.exchangeID] = (Exchange(id: e.exchangeID), lastBlock(from: blockIndex))
                order.append(e.exchangeID)
                peakOpen = max(peakOpen, order.count)
            }
            ExchangeAssembler.add(e, to: &open[e.exchangeID]!.exchange, keepsRows: keepsRows)
        }
    }

    /// The last block an exchange first seen in block `j` may reach.
    func lastBlock(from j: Int) -> Int {
        guard j >= 0, j < capture.blocks.count, let span = capture.blocks[j].exchangeSpan else { return Int.max }
        return j + Int(span.after)
    }

    /// The oldest open exchange, if it is complete: its last possible block is behind us, or (no
    /// spans) `lag` newer exchanges have started.
    mutating func popCompleted() -> Exchange? {
        guard let id = order.first, let entry = open[id] else { return nil }
        if entry.lastBlock < blockIndex { return take(id) }
        if entry.lastBlock == Int.max, order.count > lag {
            assumedComplete += 1
            return take(id)
        }
        return nil
    }

    mutating func popAny() -> Exchange? {
        guard let id = order.first else { return nil }
        return take(id)
    }

    mutating func take(_ id: UInt64) -> Exchange? {
        _ = order.removeFirst()
        return open.removeValue(forKey: id)?.exchange
    }

    mutating func nextEvent() -> Event? {
        while position >= events.count {
            guard damage == nil, blockIndex + 1 < capture.blocks.count else {
                // Past the last block: nothing more can arrive for any exchange.
                blockIndex = Int.max - 1
                return nil
            }
            blockIndex += 1
            // The blocks before this one are read: their pages need not stay resident.
            if blockIndex > 0, blockIndex % 16 == 0 { capture.releasePages(before: Int(capture.blocks[blockIndex].offset)) }
            do {
                events = try capture.events(in: capture.blocks[blockIndex])
            } catch {
                damage = error
                damagedBlock = (blockIndex, capture.blocks[blockIndex].offset)
                events = []
            }
            position = 0
        }
        position += 1
        return Event.take(&events[position - 1])
    }
}

/// A minimal FIFO (two stacks), so the stream does not depend on swift-collections.
struct Deque<Element> {
    var front: [Element] = []
    var back: [Element] = []

    init() {}

    var count: Int { front.count + back.count }
    var first: Element? { back.last ?? front.first }

    mutating func append(_ e: Element) { front.append(e) }

    mutating func removeFirst() -> Element {
        if back.isEmpty {
            back = front.reversed()
            front.removeAll(keepingCapacity: true)
        }
        return back.removeLast()
    }
}
