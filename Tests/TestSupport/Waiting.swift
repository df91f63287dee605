import Foundation

/// `body`'s result, or nil if it has not returned within `seconds`. For an await that ignores
/// cancellation, which a test's time limit cannot end: the test fails instead of hanging the run
/// (the abandoned work goes on in the background).
public func within<T: Sendable>(seconds: Int, _ body: @escaping @Sendable () async -> T) async -> T? {
    let (results, result) = AsyncStream<T?>.makeStream()
    Task { result.yield(await body()) }
    Task { try? await Task.sleep(for: .seconds(seconds)); result.yield(nil) }
    var first = results.makeAsyncIterator()
    return await first.next() ?? nil
}

/// Polls `condition` every 50 ms until it holds; throws, naming what was waited for, after `timeout`.
public func waitUntil(_ what: String, timeout: Duration, _ condition: () -> Bool) throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw HarnessError(description: "timed out waiting for \(what)") }
        usleep(50_000)
    }
}

/// Polls `condition` every 50 ms, without holding a thread, until it holds; throws, naming what
/// was waited for, after `timeout`. For a count that another task updates after the event a test
/// can see (a receiver has a delivery before the sender has counted it).
public func pollUntil(_ what: String, timeout: Duration, _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        guard ContinuousClock.now < deadline else { throw HarnessError(description: "timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(50))
    }
}
