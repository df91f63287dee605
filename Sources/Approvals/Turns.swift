/// One change at a time across awaits: an actor is reentrant at every `await`, and the service
/// awaits its store in the middle of a change. Whoever enters waits, in arrival order, for the
/// one inside to leave. Kept in the actor's state, so it needs no lock of its own.
struct Turns {
    private var taken = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// True if the turn is now the caller's; false if it must wait (and call `wait`).
    mutating func enter() -> Bool {
        if taken { return false }
        taken = true
        return true
    }

    mutating func wait(_ continuation: CheckedContinuation<Void, Never>) { waiting.append(continuation) }

    /// The next waiter, whose turn it now is (resume it), or nil if the turn is free.
    mutating func leave() -> CheckedContinuation<Void, Never>? {
        if waiting.isEmpty {
            taken = false
            return nil
        }
        return waiting.removeFirst()
    }
}
