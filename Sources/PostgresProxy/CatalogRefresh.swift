import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// One refresh of a target's catalog at a time, shared by its sessions: the first session that
/// finds the catalog missing or stale reads it; sessions logging in meanwhile wait for that
/// read instead of each sending the catalog query and parsing up to `viewLimit` view
/// definitions of their own. The parsing runs on NIO's thread pool, off the event loop.
final class CatalogRefresh: Sendable {
    enum Claim {
        /// The catalog is fresh: nothing to do.
        case fresh
        /// This session reads it, and must call `end()` whatever happens.
        case load
        /// Another session is reading it: go on once this completes.
        case wait(EventLoopFuture<Void>)
    }

    private let waiting = NIOLockedValueBox<(inFlight: Bool, waiters: [EventLoopPromise<Void>])>((false, []))
    /// Refreshes started since the gate started (logged with each, for operators and tests).
    let started = Atomic<Int>(0)

    func claim(_ catalog: CatalogCache, on loop: any EventLoop) -> Claim {
        waiting.withLockedValue { state in
            if state.inFlight {
                let promise = loop.makePromise(of: Void.self)
                state.waiters.append(promise)
                return .wait(promise.futureResult)
            }
            // Checked under this lock: a refresh that just ended has stored its snapshot already.
            guard catalog.needsLoad else { return .fresh }
            state.inFlight = true
            started.add(1, ordering: .relaxed)
            return .load
        }
    }

    /// The refresh is over (stored, failed, or its connection lost): the waiting sessions go on.
    func end() {
        let waiters = waiting.withLockedValue { state in
            state.inFlight = false
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.succeed() }
    }

    /// Builds the snapshot (parsing the view definitions) off the event loop.
    static func finish(_ loader: CatalogCache.Loader, on loop: any EventLoop) -> EventLoopFuture<CatalogCache.Snapshot> {
        NIOThreadPool.singleton.runIfActive(eventLoop: loop) {
            var loader = loader
            return loader.finish()
        }
    }
}
