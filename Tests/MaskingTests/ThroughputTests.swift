import Testing
import Masking

@Suite struct ThroughputTests {
    /// A realistic DataRow mix: mostly ints, names, timestamps and amounts, some sensitive values.
    @Test func throughput() {
        let texts: [String] = [
            "42", "1001", "Alice Smith", "2026-11-25 20:21:18.123456+00", "19.99", "t", "active",
            "550e8400-e29b-41d4-a716-446655440000", "alice@example.com", "4111 1111 1111 1111", "123-45-6789",
            "+44 20 7946 0958", "Lorem ipsum dolor sit amet, consectetur adipiscing elit", "ORD-2026-000123",
            #"{"id":7,"email":"bob@example.org","tags":["a","b"]}"#, "3.141592653589793", "DE89370400440532013000",
            "192.168.1.20", "1732569678123", "Nothing sensitive here at all, just a longer text value of some size.",
        ]
        let mix = texts.map { Array($0.utf8) }
        // Built-ins alone, then with the DESIGN.md custom regex and column rules configured.
        for (label, masker) in [("built-in detectors", try! Masker()), ("with custom regex", fullMasker)] {
            let rounds = 20_000
            var changed = 0
            let clock = ContinuousClock()
            let elapsed = clock.measure {
                for _ in 0..<rounds {
                    for v in mix where masker.mask(v) != nil { changed += 1 }
                }
            }
            let values = Double(rounds * mix.count)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print("masking throughput (\(label)): \(Int(values / seconds)) values/s over \(Int(values)) values (\(changed) changed)")
        }
    }
}
