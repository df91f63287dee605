import Metrics

/// The divergence counter (swift-metrics): whatever metrics backend the process bootstraps
/// (none by default: the gate has no exporter yet) sees `tollgate_divergences_total{target=…}`.
enum DivergenceMetrics {
    static let label = "tollgate_divergences_total"

    static func count(target: String, factory: any MetricsFactory = MetricsSystem.factory) {
        Counter(label: label, dimensions: [("target", target)], factory: factory).increment()
    }
}
