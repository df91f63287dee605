// What the built-in detectors' byte-level scanners share (PersonalDataDetectors.swift,
// SecretDetectors.swift): matches, replacements, byte classes and word boundaries. Each
// scanner finds matches anywhere inside a value and validates them exactly, so that ordinary
// data (dates, amounts, IDs, floats) passes through untouched. No Foundation, no String: this
// runs for every result value.

typealias Bytes = UnsafeBufferPointer<UInt8>

/// One detection: the byte range to replace and its replacement.
struct Match {
    var start: Int
    var end: Int
    var detector: DetectorName
    var replacement: Replacement
}

/// How a match is rewritten. Described rather than built: the masked value is written once,
/// straight into its output, so the common masks (digits, e-mails, fixed text) need no buffer per
/// match; an IBAN's or a token's replacement is still made for its match (both are rare in results).
enum Replacement {
    /// The match's digits starred but the last `keep`; other characters kept.
    case digits(keep: Int)
    /// The first character, `****`, then the match from byte `from` on (an e-mail's `@domain`).
    case keepFirst(from: Int)
    case bytes([UInt8])
    /// A constant: no reference counting, which would be shared by every thread masking with it.
    case fixed(StaticString)
    /// `[REDACTED:detector]`.
    case redacted

    func write(_ m: Match, of b: Bytes, into out: inout [UInt8]) {
        switch self {
        case .digits(let keep): maskDigits(b, m.start, m.end, keep: keep, into: &out)
        case .keepFirst(let from):
            out.append(b[m.start])
            ("****" as StaticString).withUTF8Buffer { out.append(contentsOf: $0) }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: b[from..<m.end]))
        case .bytes(let bytes): out.append(contentsOf: bytes)
        case .fixed(let text): text.withUTF8Buffer { out.append(contentsOf: $0) }
        case .redacted: out.append(contentsOf: Masking.redacted(m.detector))
        }
    }
}

// MARK: - byte classes

@inline(__always) func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }
@inline(__always) func isUpper(_ b: UInt8) -> Bool { b &- 0x41 < 26 }
@inline(__always) func isLower(_ b: UInt8) -> Bool { b &- 0x61 < 26 }
@inline(__always) func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) &- 0x61 < 26 }
@inline(__always) func isAlnum(_ b: UInt8) -> Bool { isDigit(b) || isAlpha(b) }
@inline(__always) func isBase64URL(_ b: UInt8) -> Bool { isAlnum(b) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") }

let star = UInt8(ascii: "*")
let dash = UInt8(ascii: "-")
let dot = UInt8(ascii: ".")
let space = UInt8(ascii: " ")

/// Shared replacement for token shapes: readable and says which detector fired.
func redacted(_ name: DetectorName) -> [UInt8] { Array("[REDACTED:\(name.rawValue)]".utf8) }

/// Cheap single pass that decides which scanners can possibly match, so the common
/// value ("42", "Alice", "2026-11-25") costs one loop and no allocation.
struct ByteStats {
    var digits = 0, letters = 0, upper = 0, dashes = 0, dots = 0
    var at = false, plus = false, underscore = false
    init(_ b: Bytes) {
        for c in b {
            if isDigit(c) { digits += 1 }
            else if isAlpha(c) { letters += 1; if isUpper(c) { upper += 1 } }
            else if c == dash { dashes += 1 }
            else if c == dot { dots += 1 }
            else if c == UInt8(ascii: "@") { at = true }
            else if c == UInt8(ascii: "+") { plus = true }
            else if c == UInt8(ascii: "_") { underscore = true }
        }
    }
}

// MARK: - boundaries

/// A digit-shaped match must not continue a word or a number: no letter/digit before it, and
/// no `.` (or `extra`, e.g. `-`) joined to a preceding digit (a float's fraction, a longer chain).
@inline(__always) func leadOK(_ b: Bytes, _ i: Int, dashJoins: Bool) -> Bool {
    if i == 0 { return true }
    let p = b[i - 1]
    if isAlnum(p) || p == UInt8(ascii: "_") { return false }
    if (p == dot || (dashJoins && p == dash)) && i >= 2 && isDigit(b[i - 2]) { return false }
    return true
}

/// Mirror of `leadOK` for the byte after a match (`e` is the end index, exclusive).
@inline(__always) func trailOK(_ b: Bytes, _ e: Int, dashJoins: Bool) -> Bool {
    if e >= b.count { return true }
    let n = b[e]
    if isAlnum(n) || n == UInt8(ascii: "_") { return false }
    if (n == dot || (dashJoins && n == dash)) && e + 1 < b.count && isDigit(b[e + 1]) { return false }
    return true
}

/// Replace digits with `*` except the last `keep`, leaving separators: the readable shape.
func maskDigits(_ b: Bytes, _ s: Int, _ e: Int, keep: Int, into out: inout [UInt8]) {
    var total = 0
    for i in s..<e where isDigit(b[i]) { total += 1 }
    var seen = 0
    for i in s..<e {
        let c = b[i]
        if isDigit(c) {
            seen += 1
            out.append(seen > total - keep ? c : star)
        } else {
            out.append(c)
        }
    }
}
