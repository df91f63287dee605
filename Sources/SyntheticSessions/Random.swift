// A seeded, platform-independent random number generator. The same seed gives
// the same sessions on every machine and Swift version: nothing here uses the
// standard library's or Foundation's randomness, whose algorithms may change.

/// SplitMix64: used to expand a 64-bit seed into xoshiro's 256-bit state.
public struct SplitMix64: Sendable {
    public private(set) var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** (Blackman and Vigna), seeded through SplitMix64.
public struct SyntheticRandom: Sendable {
    var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        s0 = sm.next(); s1 = sm.next(); s2 = sm.next(); s3 = sm.next()
    }

    @inline(__always) static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = SyntheticRandom.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = SyntheticRandom.rotl(s3, 45)
        return result
    }

    /// A new generator whose stream is independent of this one's next values
    /// (for one session out of a corpus, say).
    public mutating func fork() -> SyntheticRandom { SyntheticRandom(seed: next()) }

    /// Uniform in 0..<n (Lemire's multiply-shift with rejection: no modulo bias).
    @inline(__always)
    public mutating func below(_ n: Int) -> Int {
        precondition(n > 0)
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// Uniform in the closed range.
    @inline(__always)
    public mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + below(range.upperBound - range.lowerBound + 1)
    }

    /// Uniform in [0, 1).
    @inline(__always)
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    @inline(__always)
    public mutating func chance(_ p: Double) -> Bool { unit() < p }

    @inline(__always)
    public mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// Picks an index with probability proportional to its weight.
    public mutating func weighted(_ weights: [Double]) -> Int {
        let total = weights.reduce(0, +)
        var x = unit() * total
        for (i, w) in weights.enumerated() {
            if x < w { return i }
            x -= w
        }
        return weights.count - 1
    }

    /// Log-uniform between lo and hi: many small values, a few large ones (latencies, think times).
    public mutating func logUniform(_ lo: Double, _ hi: Double) -> Double {
        lo * pow2(log2Approx(hi / lo) * unit())
    }

    /// Skewed towards the low end of the range: `lo + (hi - lo) * u^power`.
    public mutating func skewed(_ range: ClosedRange<Int>, power: Double = 2) -> Int {
        let u = unit()
        var p = 1.0
        var i = 0.0
        while i < power { p *= u; i += 1 }
        return range.lowerBound + Int(Double(range.upperBound - range.lowerBound + 1) * p).clamped(to: 0...(range.upperBound - range.lowerBound))
    }

    /// Lower-case hex digits.
    public mutating func hex(_ digits: Int) -> String {
        let table = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(digits)
        var bits: UInt64 = 0, left = 0
        for _ in 0..<digits {
            if left == 0 { bits = next(); left = 16 }
            out.append(table[Int(bits & 0xF)])
            bits >>= 4; left -= 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A version-4 UUID string.
    public mutating func uuid() -> String {
        let h = Array(hex(32).utf8)
        var b = h
        b[12] = UInt8(ascii: "4")
        b[16] = Array("89ab".utf8)[Int(h[16] % 4)]
        let s = String(decoding: b, as: UTF8.self)
        let c = Array(s)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20]) + "-" + String(c[20..<32])
    }
}

// Small, exact-enough math without Foundation (log-uniform draws only need a smooth curve).
@inline(__always) func pow2(_ x: Double) -> Double {
    // 2^x = 2^floor(x) * 2^frac, 2^frac by a short series of e^(frac*ln2).
    let fl = x.rounded(.down)
    let f = (x - fl) * 0.693_147_180_559_945_3
    var term = 1.0, sum = 1.0
    for k in 1...12 { term *= f / Double(k); sum += term }
    return sum * Double(sign: .plus, exponent: Int(fl), significand: 1)
}

@inline(__always) func log2Approx(_ x: Double) -> Double {
    precondition(x > 0)
    let e = Double(x.exponent)
    let m = x.significand  // in [1, 2)
    // ln(m) via atanh series: ln(m) = 2 atanh((m-1)/(m+1)).
    let y = (m - 1) / (m + 1), y2 = y * y
    var term = y, sum = 0.0
    var k = 1.0
    while k < 30 { sum += term / k; term *= y2; k += 2 }
    return e + 2 * sum / 0.693_147_180_559_945_3
}

extension Comparable {
    func clamped(to r: ClosedRange<Self>) -> Self { min(max(self, r.lowerBound), r.upperBound) }
}
