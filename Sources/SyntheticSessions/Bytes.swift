// Byte-level builders for generated values: rows are recorded as bytes, so
// values are built as bytes, without going through String on the hot path.

struct ByteBuilder {
    var bytes: [UInt8] = []

    init(capacity: Int = 32) { bytes.reserveCapacity(capacity) }

    @inline(__always) mutating func put(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    @inline(__always) mutating func put(_ s: String) { bytes.append(contentsOf: s.utf8) }
    @inline(__always) mutating func put(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    @inline(__always) mutating func byte(_ c: UInt8) { bytes.append(c) }

    /// Decimal digits of a non-negative integer, zero-padded to `width`.
    mutating func int(_ value: Int, width: Int = 0) {
        var v = value
        if v < 0 { bytes.append(UInt8(ascii: "-")); v = -v }
        var digits = [UInt8](repeating: 0, count: 20)
        var n = 0
        repeat {
            digits[n] = UInt8(48 + v % 10)
            v /= 10
            n += 1
        } while v > 0
        if width > n { for _ in 0..<(width - n) { bytes.append(48) } }
        while n > 0 { n -= 1; bytes.append(digits[n]) }
    }

    /// A fixed-point decimal with two places from an amount in cents.
    mutating func cents(_ c: Int) {
        if c < 0 { bytes.append(UInt8(ascii: "-")) }
        let a = abs(c)
        int(a / 100)
        bytes.append(UInt8(ascii: "."))
        int(a % 100, width: 2)
    }

    /// PostgreSQL's text output of a timestamptz in UTC (DateStyle ISO), microseconds kept when non-zero.
    mutating func timestamp(micros: Int64) {
        let c = Civil(micros: micros)
        date(c)
        bytes.append(UInt8(ascii: " "))
        int(c.hour, width: 2); bytes.append(58)
        int(c.minute, width: 2); bytes.append(58)
        int(c.second, width: 2)
        if c.micro != 0 { bytes.append(46); int(c.micro, width: 6) }
        put("+00")
    }

    mutating func date(_ c: Civil) {
        int(c.year, width: 4); bytes.append(45)
        int(c.month, width: 2); bytes.append(45)
        int(c.day, width: 2)
    }
}

/// A UTC calendar time, from microseconds since the Unix epoch (Hinnant's civil_from_days).
public struct Civil: Sendable, Equatable {
    public var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, micro: Int

    public init(micros: Int64) {
        let perDay: Int64 = 86_400_000_000
        var days = micros / perDay
        var rest = micros % perDay
        if rest < 0 { rest += perDay; days -= 1 }
        let z = Int(days) + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let r = Int(rest)
        hour = r / 3_600_000_000
        minute = r / 60_000_000 % 60
        second = r / 1_000_000 % 60
        micro = r % 1_000_000
    }

    /// Microseconds since the epoch for a UTC calendar time (days_from_civil).
    public static func micros(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return (Int64(days) * 86400 + Int64(hour * 3600 + minute * 60 + second)) * 1_000_000
    }

    /// "2026-11-20"
    public var dateString: String {
        var b = ByteBuilder()
        b.date(self)
        return String(decoding: b.bytes, as: UTF8.self)
    }
}

/// FNV-1a 64, for stable fingerprints.
func fnv1a64(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    return h
}

func hex16(_ v: UInt64) -> String {
    let table = Array("0123456789abcdef".utf8)
    var out = [UInt8](repeating: 0, count: 16)
    var x = v
    for i in stride(from: 15, through: 0, by: -1) { out[i] = table[Int(x & 0xF)]; x >>= 4 }
    return String(decoding: out, as: UTF8.self)
}
