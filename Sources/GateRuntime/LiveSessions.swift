import Metrics
import ProxyCore
import NIOCore
import Synchronization

/// The gate's live sessions: client channels by session id, and sessions whose capture is still
/// being sealed. Shutdown waits on it without polling.
public final class LiveSessions: Sendable {
    struct State {
        var channels: [String: any Channel] = [:]
        var listed: [String: LiveSession] = [:]
        var sealing: Set<String> = []
        var waiters: [(id: UInt64, open: Bool, continuation: CheckedContinuation<Void, Never>)] = []
        var nextWaiter: UInt64 = 0
        /// Waits that are over (met or timed out) before their waiter was registered.
        var over: Set<UInt64> = []

        /// The waiters whose condition now holds (removed).
        mutating func satisfied() -> [CheckedContinuation<Void, Never>] {
            let ready = waiters.filter { $0.open ? channels.isEmpty : channels.isEmpty && sealing.isEmpty }
            waiters.removeAll { w in ready.contains { $0.id == w.id } }
            return ready.map(\.continuation)
        }
    }

    let state = Mutex(State())
    /// Each open session's last exchanges, for the approvals page (fed only when it is served).
    public let recent = RecentExchanges()

    public init() {}

    public func started(_ id: String, channel: any Channel, listing: LiveSession? = nil) {
        let open = state.withLock { s in
            s.channels[id] = channel
            s.listed[id] = listing
            return s.channels.count
        }
        if let listing { Counter(label: "tollgate_sessions_total", dimensions: [("target", listing.target)]).increment() }
        Gauge(label: "tollgate_sessions_open").record(open)
    }

    /// The open sessions, oldest first.
    public var listing: [LiveSession] {
        state.withLock { Array($0.listed.values) }.sorted { ($0.started, $0.id) < ($1.started, $1.id) }
    }

    /// Ends an open session as an administrator's command would (see `GateShutdown`); false when
    /// no open session has that id.
    public func end(_ id: String, by operator: String) -> Bool {
        guard let channel = state.withLock({ $0.channels[id] }) else { return false }
        channel.pipeline.fireUserInboundEventTriggered(GateShutdown(endedBy: `operator`))
        return true
    }

    /// The session's connection is gone; its capture is being sealed.
    public func ending(_ id: String) {
        recent.forget(id)
        let (ready, open) = state.withLock { s in
            s.channels[id] = nil
            s.listed[id] = nil
            s.sealing.insert(id)
            return (s.satisfied(), s.channels.count)
        }
        Gauge(label: "tollgate_sessions_open").record(open)
        for c in ready { c.resume() }
    }

    /// The session's capture is sealed.
    public func ended(_ id: String) {
        let ready = state.withLock { s in
            s.sealing.remove(id)
            return s.satisfied()
        }
        for c in ready { c.resume() }
    }

    public var count: Int { state.withLock { $0.channels.count + $0.sealing.count } }
    public var openChannels: [any Channel] { state.withLock { Array($0.channels.values) } }

    /// Returns once no session is open (`open: true`), or none is open or sealing, or at `deadline`.
    public func wait(untilNone open: Bool, deadline: ContinuousClock.Instant) async {
        let id = state.withLock { s in s.nextWaiter += 1; return s.nextWaiter }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let ready = self.state.withLock { s in
                        if s.over.remove(id) != nil { return [continuation] }
                        s.waiters.append((id, open, continuation))
                        return s.satisfied()
                    }
                    for c in ready { c.resume() }
                }
            }
            group.addTask { try? await Task.sleep(until: deadline) }
            await group.next()
            // Whichever came first, the other ends now: the waiter is resumed, registered or not yet.
            let waiting = state.withLock { s in
                guard let w = s.waiters.first(where: { $0.id == id }) else { s.over.insert(id); return nil as CheckedContinuation<Void, Never>? }
                s.waiters.removeAll { $0.id == id }
                return w.continuation
            }
            waiting?.resume()
            group.cancelAll()
        }
    }
}
