import Approvals
import CaptureFormat
import Foundation
import Identity
import Policy
import Testing

/// A wall clock moved by the test. Sleepers wake when it is moved past their deadline.
/// @unchecked Sendable: every stored property is read and written only while `lock` is held.
final class ManualClock: ApprovalClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date
    private var sleepers: [Int: (deadline: Date, continuation: CheckedContinuation<Void, any Error>)] = [:]
    private var cancelled: Set<Int> = []
    private var nextSleeper = 0

    /// Whether moving the clock wakes sleepers (false: timers never fire, only explicit checks see time pass).
    private let wakesSleepers: Bool

    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000), wakesSleepers: Bool = true) {
        current = start
        self.wakesSleepers = wakesSleepers
    }

    func now() -> Date { lock.withLock { current } }

    func advance(by seconds: TimeInterval) {
        let due: [CheckedContinuation<Void, any Error>] = lock.withLock {
            current = current.addingTimeInterval(seconds)
            let ready = wakesSleepers ? sleepers.filter { $0.value.deadline <= current } : [:]
            for key in ready.keys { sleepers[key] = nil }
            return ready.map(\.value.continuation)
        }
        for c in due { c.resume() }
    }

    func sleep(until deadline: Date) async throws {
        let id: Int = lock.withLock { nextSleeper += 1; return nextSleeper }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                let resumeNow: Result<Void, any Error>? = lock.withLock {
                    if cancelled.contains(id) { return .failure(CancellationError()) }
                    if current >= deadline && wakesSleepers { return .success(()) }
                    sleepers[id] = (deadline, c)
                    return nil
                }
                if let resumeNow { c.resume(with: resumeNow) }
            }
        } onCancel: {
            let c: CheckedContinuation<Void, any Error>? = lock.withLock {
                cancelled.insert(id)
                return sleepers.removeValue(forKey: id)?.continuation
            }
            c?.resume(throwing: CancellationError())
        }
    }
}

/// A fresh store file in a directory of its own, and a service over it.
struct Fixture {
    let directory: URL
    let path: String
    let clock: ManualClock
    let approvals: Approvals

    init(clock: ManualClock = ManualClock()) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("approvals19-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = SQLiteApprovalStore.defaultPath(captureDirectory: directory.path)
        self.clock = clock
        approvals = Approvals(store: try SQLiteApprovalStore(path: path), clock: clock)
    }

    /// Another service over the same file: the gate after a restart.
    func reopened() throws -> Approvals {
        Approvals(store: try SQLiteApprovalStore(path: path), clock: clock)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

func person(_ subject: String, _ groups: String...) -> VerifiedIdentity {
    VerifiedIdentity(subject: subject, groups: groups, issuer: "https://idp.example", audience: "tollgate",
                     expiresAt: Date(timeIntervalSince1970: 4_000_000_000), algorithm: .rs256)
}

func hold(_ id: String = UUID().uuidString.lowercased(), subject: String = "ai-agent", groups: [String] = ["ai-assistants"],
          target: String = "orders-db", statement: String = "UPDATE customers SET email = 'x' WHERE id = 2",
          fingerprint: String = "fp-update-customers", rule: String = "writes",
          requirement: ApprovalRequirement = ApprovalRequirement(anyOf: ["dba"])) -> HoldRequest {
    HoldRequest(approvalID: id, session: "session-1", exchange: 7, target: target,
                requester: Principal(subject: subject, groups: groups), statement: statement, fingerprint: fingerprint,
                decision: Decision(action: .review, policy: "assistants", rule: rule), requirement: requirement)
}

/// Collects the events an adapter would hear.
final class EventLog: @unchecked Sendable {
    // @unchecked Sendable: `events` is only touched while `lock` is held.
    private let lock = NSLock()
    private var events: [ApprovalEvent] = []
    func add(_ e: ApprovalEvent) { lock.withLock { events.append(e) } }
    var all: [ApprovalEvent] { lock.withLock { events } }
}

/// The error an action throws, or a test failure if it succeeds or throws something else.
func refusal(_ action: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> ApprovalError? {
    do {
        try await action()
        Issue.record("expected a refusal", sourceLocation: sourceLocation)
        return nil
    } catch let error as ApprovalError {
        return error
    } catch {
        Issue.record("expected an ApprovalError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
