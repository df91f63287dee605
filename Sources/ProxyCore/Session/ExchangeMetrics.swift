import CaptureFormat
import Metrics

/// One target's exchange counters and latency histograms (swift-metrics: whatever backend the
/// process bootstraps; the gate's admin API serves them in Prometheus's format). Made once per
/// target, so that a request costs an increment, never a look-up by label.
public final class ExchangeMetrics: Sendable {
    let exchanges: Counter
    let allowed: Counter
    let denied: Counter
    let reviewed: Counter
    /// From forwarding a request to the end of its response, as the adapter measured it.
    let upstreamLatency: Timer
    /// The gate's own work on a request before it is forwarded or refused: inspection, decision,
    /// recording (not a write-ahead sync, nor a wait for an approver).
    let addedLatency: Timer

    public init(target: String, factory: any MetricsFactory = MetricsSystem.factory) {
        let t = ("target", target)
        exchanges = Counter(label: "tollgate_exchanges_total", dimensions: [t], factory: factory)
        allowed = Counter(label: "tollgate_decisions_total", dimensions: [t, ("outcome", "allow")], factory: factory)
        denied = Counter(label: "tollgate_decisions_total", dimensions: [t, ("outcome", "deny")], factory: factory)
        reviewed = Counter(label: "tollgate_decisions_total", dimensions: [t, ("outcome", "review")], factory: factory)
        upstreamLatency = Timer(label: "tollgate_upstream_latency_seconds", dimensions: [t], factory: factory)
        addedLatency = Timer(label: "tollgate_gate_added_latency_seconds", dimensions: [t], factory: factory)
    }

    func decided(_ action: Decision.Action, in elapsed: Duration) {
        exchanges.increment()
        switch action {
        case .allow: allowed.increment()
        case .deny: denied.increment()
        case .review: reviewed.increment()
        }
        addedLatency.recordNanoseconds(Int64(elapsed.components.seconds) * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }

    func responded(durationMicros: UInt64) {
        guard durationMicros > 0 else { return }
        upstreamLatency.recordMicroseconds(durationMicros)
    }
}
