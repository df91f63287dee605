/// The global start order across concurrent sessions at run time: a step starts only once every
/// step before it in `ReplaySchedule` order has started (been released). A session releases its
/// next step early when its current statement runs longer than it did when recorded, so a slow
/// statement in one session does not stall the others.
public actor ReplayTurns {
    var released: [Bool]
    /// Every step before this one has been released.
    var frontier = 0
    var waiters: [Int: [CheckedContinuation<Void, Never>]] = [:]

    public init(count: Int) { released = Array(repeating: false, count: count) }

    /// Returns once every step before `order` has been released.
    public func waitTurn(_ order: Int) async {
        if order <= frontier { return }
        await withCheckedContinuation { waiters[order, default: []].append($0) }
    }

    /// Step `order` started (or stopped blocking others); idempotent.
    public func release(_ order: Int) {
        guard order < released.count, !released[order] else { return }
        released[order] = true
        let before = frontier
        while frontier < released.count, released[frontier] { frontier += 1 }
        guard frontier > before else { return }
        for o in (before + 1)...frontier {
            if let ws = waiters.removeValue(forKey: o) { ws.forEach { $0.resume() } }
        }
    }

    /// Releases every step of a session that stopped early (an error ended it), so no one waits for it.
    public func release(_ orders: [Int]) { orders.forEach { release($0) } }
}
