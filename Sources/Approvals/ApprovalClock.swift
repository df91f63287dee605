import Foundation

/// The approvals' time: wall-clock instants (stored, shown to approvers, compared with deadlines
/// and grant expiries) and a sleep until one of them (a hold's timeout). Injected so that tests
/// move time by hand instead of waiting for it.
public protocol ApprovalClock: Sendable {
    func now() -> Date
    /// Returns once `now() >= deadline`; throws `CancellationError` if the task is cancelled first.
    func sleep(until deadline: Date) async throws
}

/// The system's wall clock. Its sleeps may end early or late (the wall clock can be set): the
/// service checks the deadline again when a sleep ends and sleeps again if it is not due.
public struct SystemApprovalClock: ApprovalClock {
    public init() {}

    public func now() -> Date { Date() }

    public func sleep(until deadline: Date) async throws {
        let seconds = deadline.timeIntervalSinceNow
        if seconds > 0 { try await Task.sleep(for: .milliseconds(Int64((seconds * 1000).rounded(.up)))) }
    }
}

extension Date {
    /// Whole milliseconds since 1970: what the store keeps, so a stored instant reads back equal.
    var approvalMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }

    init(approvalMilliseconds ms: Int64) { self.init(timeIntervalSince1970: Double(ms) / 1000) }

    /// This instant as the store will read it back.
    var storedPrecision: Date { Date(approvalMilliseconds: approvalMilliseconds) }
}

extension Duration {
    var timeInterval: TimeInterval {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
