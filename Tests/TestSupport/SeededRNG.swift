import SyntheticSessions

/// A seeded generator for tests: SplitMix64 (the synthetic sessions' own), deterministic for a given seed.
public struct SeededRNG: RandomNumberGenerator {
    var mix: SplitMix64
    public init(seed: UInt64) { mix = SplitMix64(seed: seed) }
    public mutating func next() -> UInt64 { mix.next() }
}
