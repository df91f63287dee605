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
