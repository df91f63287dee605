import Foundation

/// Times on the command line, as investigators write them (all UTC):
/// RFC 3339 (`2026-11-20T09:00:00Z`, fractions and offsets allowed), `2026-11-20 09:00[:SS]`,
/// a date (`2026-11-20`, midnight), Unix seconds (`1795000000`), `now`, `today`, `yesterday`,
/// and durations back from now (`90s`, `15m`, `2h`, `7d`, `2w`, also `1h30m` and `2h ago`).
public enum TimeSpec {
    /// Microseconds since the epoch, or nil when `text` is none of the forms above.
    public static func parse(_ text: String, now: Int64) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let day: Int64 = 86_400_000_000
        switch t.lowercased() {
        case "now": return now
        case "today": return now.floorDiv(day) * day
        case "yesterday": return now.floorDiv(day) * day - day
        case "tomorrow": return now.floorDiv(day) * day + day
        default: break
        }
        if let ago = duration(t) { return now - ago }
        let b = Array(t.utf8)
        func digits(_ r: Range<Int>) -> Bool { r.upperBound <= b.count && b[r].allSatisfy { $0 >= 48 && $0 <= 57 } }
        let isDate = b.count >= 10 && digits(0..<4) && b[4] == UInt8(ascii: "-") && digits(5..<7) && b[7] == UInt8(ascii: "-") && digits(8..<10)
        if isDate && b.count == 10 { return parseTime(t) }
        // "2026-11-20 09:00[:05[.5]]" and the same with T, without a zone: UTC.
        if isDate, b.count >= 16, b[10] == 32 || b[10] == UInt8(ascii: "T"), digits(11..<13), b[13] == UInt8(ascii: ":"), digits(14..<16) {
            var s = String(t.prefix(10)) + "T" + String(t.dropFirst(11))
            if s.count == 16 { s += ":00" }
            let zoned = s.hasSuffix("Z") || s.dropFirst(16).contains("+") || s.dropFirst(16).contains("-")
            return parseTime(zoned ? s : s + "Z")
        }
        // Anything else that looks like a date must be a whole RFC 3339 time (the parser would take a prefix).
        if isDate { return nil }
        return parseTime(t)
    }

    /// A duration like `2h`, `1h30m`, `7d`, `2h ago`, in microseconds; nil if `text` is not one.
    public static func duration(_ text: String) -> Int64? {
        var s = text.lowercased()
        if s.hasSuffix(" ago") { s.removeLast(4) }
        s = s.replacingOccurrences(of: " ", with: "")
        guard !s.isEmpty, s.first!.isNumber else { return nil }
        let units: [(String, Int64)] = [("ms", 1000), ("s", 1_000_000), ("m", 60_000_000), ("h", 3_600_000_000),
                                        ("d", 86_400_000_000), ("w", 7 * 86_400_000_000)]
        var total: Int64 = 0
        var number = ""
        var chars = Array(s)
        var i = 0
        var sawUnit = false
        while i < chars.count {
            let c = chars[i]
            if c.isNumber || c == "." { number.append(c); i += 1; continue }
            var unitText = ""
            while i < chars.count, chars[i].isLetter { unitText.append(chars[i]); i += 1 }
            let aliases = ["sec": "s", "secs": "s", "min": "m", "mins": "m", "hour": "h", "hours": "h", "hr": "h",
                           "day": "d", "days": "d", "week": "w", "weeks": "w"]
            let unitName = aliases[unitText] ?? unitText
            guard let unit = units.first(where: { $0.0 == unitName })?.1, let value = Double(number) else { return nil }
            total += Int64(value * Double(unit))
            number = ""
            sawUnit = true
        }
        chars = []
        return sawUnit && number.isEmpty ? total : nil
    }
}

extension Int64 {
    func floorDiv(_ d: Int64) -> Int64 { self >= 0 ? self / d : -((-self + d - 1) / d) }
}
