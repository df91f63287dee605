import Synchronization

/// One generation of the policies and masks in force: a reload makes the next one, and each
/// session moves to it at its next request (what it tallied so far is kept).
/// A class: sessions take it for every request, and a reference is one retain where the
/// pipeline's parts are several.
public final class PolicyState: Sendable {
    public let pipeline: ExchangePipeline
    /// Policies are configured: an adapter may decide early (PostgreSQL's Parse), not only when a request runs.
    public let enforcing: Bool
    public let generation: Int
    /// Which upstream account a session logs in with (policies may name their own).
    public let credentials: UpstreamCredentials

    public init(pipeline: ExchangePipeline, enforcing: Bool, generation: Int, credentials: UpstreamCredentials) {
        self.pipeline = pipeline; self.enforcing = enforcing; self.generation = generation; self.credentials = credentials
    }
}

/// The gate's current `PolicyState`, swapped whole by a reload. Sessions keep their copy and
/// read only the generation per request, without the lock; they take the lock when it changed.
public final class PolicyStore: Sendable {
    let state: Mutex<PolicyState>
    let currentGeneration: Atomic<Int>

    public init(_ initial: PolicyState) {
        state = Mutex(initial)
        currentGeneration = Atomic(initial.generation)
    }

    public var generation: Int { currentGeneration.load(ordering: .acquiring) }
    public var current: PolicyState { state.withLock { $0 } }

    /// Installs the next generation, made from its number by `make`.
    @discardableResult
    public func replace(_ make: (_ generation: Int) -> PolicyState) -> PolicyState {
        state.withLock {
            $0 = make($0.generation + 1)
            currentGeneration.store($0.generation, ordering: .releasing)
            return $0
        }
    }
}
