import CaptureFormat
import MetricsTestKit
import ProxyCore
import Testing

/// The target's counters and latencies, as the session core keeps them: every decided request
/// counted once by its outcome with the gate's own time on it, every response's upstream time.
@Suite struct ExchangeMetricsTests {
    @Test func decisionsAreCountedByOutcomeWithTheirLatencies() async throws {
        let h = try Harness()
        let metrics = TestMetrics()
        var s = try h.opened(metrics: ExchangeMetrics(target: "lines", factory: metrics))
        guard case .forward(let read)? = s.request(line("read analytics.orders")).first else { Issue.record("not forwarded"); return }
        s.responded(.postgres(PostgresResponse(commandTag: "SELECT 2", durationMicros: 1_500)), exchange: read.exchange, rows: 2)
        _ = s.request(line("delete public.users"))
        _ = s.request(line("delete analytics.orders"))
        _ = s.request(line("read analytics.orders"))
        _ = try await h.finish(&s)

        func counted(_ outcome: String) throws -> Int64 {
            try metrics.expectCounter("tollgate_decisions_total", [("target", "lines"), ("outcome", outcome)]).totalValue
        }
        #expect(try counted("allow") == 2)
        #expect(try counted("deny") == 1)
        #expect(try counted("review") == 1)
        #expect(try metrics.expectCounter("tollgate_exchanges_total", [("target", "lines")]).totalValue == 4)
        let added = try metrics.expectTimer("tollgate_gate_added_latency_seconds", [("target", "lines")])
        #expect(added.values.count == 4)
        #expect(added.values.allSatisfy { $0 > 0 })
        // The unanswered second read has no upstream time; the first one's is its response's.
        #expect(try metrics.expectTimer("tollgate_upstream_latency_seconds", [("target", "lines")]).values == [1_500_000])
    }
}
