import Approvals
import Metrics

/// Approvals by target and outcome, and how long they waited (swift-metrics; the admin API
/// serves them in Prometheus's format): `tollgate_approvals_total{target,outcome}` and the
/// histogram `tollgate_approval_wait_seconds{target,outcome}`, from the request to its final
/// outcome. Fed by the approvals service's changes; it returns at once.
public struct ApprovalMetrics: Sendable {
    public static let countLabel = "tollgate_approvals_total"
    public static let waitLabel = "tollgate_approval_wait_seconds"
    /// People take seconds to hours, not milliseconds: buckets up to the longest sensible timeout.
    public static let waitBuckets: [Duration] = [.seconds(1), .seconds(5), .seconds(15), .seconds(30), .seconds(60), .seconds(120),
                                                 .seconds(300), .seconds(900), .seconds(1800), .seconds(3600), .seconds(14400)]

    let factory: any MetricsFactory

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    /// The metric's outcome for a change; nil for changes it does not count (a partial approval, a revoked grant).
    static func outcome(_ kind: ApprovalChange.Kind) -> String? {
        switch kind {
        case .requested, .approved, .denied, .expired, .withdrawn, .abandoned: kind.rawValue
        case .grantReused: "reused_grant"
        case .approvedInPart, .grantRevoked: nil
        }
    }

    public func observe(_ change: ApprovalChange) {
        guard let outcome = Self.outcome(change.kind) else { return }
        let dimensions = [("target", change.record?.target ?? change.grant?.target ?? ""), ("outcome", outcome)]
        // Approvals are rare: a look-up by label per change costs nothing that matters.
        Counter(label: Self.countLabel, dimensions: dimensions, factory: factory).increment()
        if let wait = change.wait {
            Timer(label: Self.waitLabel, dimensions: dimensions, factory: factory).recordNanoseconds(Int64((wait * 1e9).rounded()))
        }
    }
}
