/// A shell-style wildcard pattern (`*`, `?`, `[a-z]`, `[!x]`, `\` to quote), matched against
/// a whole string byte by byte (UTF-8). `*` also matches `.` and `/`: `pii.*` is every table
/// of schema `pii`, `/api/*` every path under `/api/`.
public struct Glob: Sendable, Equatable, CustomStringConvertible {
    public let pattern: String
    let bytes: [UInt8]
    let caseInsensitive: Bool

    public init(_ pattern: String, caseInsensitive: Bool = false) {
        self.pattern = pattern
        self.caseInsensitive = caseInsensitive
        bytes = caseInsensitive ? Array(pattern.utf8).map(asciiLower) : Array(pattern.utf8)
    }

    public var description: String { pattern }

    /// The string the pattern stands for when it has no wildcard (quotes removed); nil otherwise.
    public var literal: String? {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            switch bytes[i] {
            case UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "["): return nil
            case UInt8(ascii: "\\") where i + 1 < bytes.count:
                out.append(bytes[i + 1]); i += 2; continue
            default: out.append(bytes[i])
            }
            i += 1
        }
        return caseInsensitive ? nil : String(decoding: out, as: UTF8.self)
    }

    public func matches(_ s: String) -> Bool {
        var s = s
        return s.withUTF8 { matches(UnsafeRawBufferPointer($0)) }
    }

    /// Iterative wildcard matching with one backtrack point per `*` (linear for ordinary patterns).
    public func matches(_ text: UnsafeRawBufferPointer) -> Bool {
        let p = bytes
        var pi = 0, ti = 0
        var starP = -1, starT = 0
        while ti < text.count {
            let c = caseInsensitive ? asciiLower(text[ti]) : text[ti]
            if pi < p.count {
                switch p[pi] {
                case UInt8(ascii: "*"):
                    starP = pi; starT = ti; pi += 1
                    continue
                case UInt8(ascii: "?"):
                    pi += 1; ti += 1
                    continue
                case UInt8(ascii: "["):
                    if let (ok, next) = Glob.bracket(p, at: pi, c) {
                        if ok { pi = next; ti += 1; continue }
                    } else if c == UInt8(ascii: "[") {
                        pi += 1; ti += 1; continue  // an unclosed bracket is a literal '['
                    }
                case UInt8(ascii: "\\") where pi + 1 < p.count:
                    if p[pi + 1] == c { pi += 2; ti += 1; continue }
                default:
                    if p[pi] == c { pi += 1; ti += 1; continue }
                }
            }
            guard starP >= 0 else { return false }
            pi = starP + 1
            starT += 1
            ti = starT
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }

    /// Whether `c` is in the bracket expression at `start`, and the index after it; nil if unclosed.
    static func bracket(_ p: [UInt8], at start: Int, _ c: UInt8) -> (Bool, Int)? {
        var i = start + 1
        var negate = false
        if i < p.count, p[i] == UInt8(ascii: "!") || p[i] == UInt8(ascii: "^") { negate = true; i += 1 }
        var matched = false
        var first = true
        while i < p.count {
            if p[i] == UInt8(ascii: "]") && !first { return (matched != negate, i + 1) }
            first = false
            var lo = p[i]
            if lo == UInt8(ascii: "\\"), i + 1 < p.count { i += 1; lo = p[i] }
            if i + 2 < p.count, p[i + 1] == UInt8(ascii: "-"), p[i + 2] != UInt8(ascii: "]") {
                let hi = p[i + 2]
                if lo <= c && c <= hi { matched = true }
                i += 3
            } else {
                if lo == c { matched = true }
                i += 1
            }
        }
        return nil
    }
}

@inline(__always) func asciiLower(_ b: UInt8) -> UInt8 {
    b >= 65 && b <= 90 ? b | 0x20 : b
}
