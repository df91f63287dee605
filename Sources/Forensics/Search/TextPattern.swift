import Foundation

/// PATTERN: what to look for in the text of requests and (masked) responses.
public struct TextPattern: Sendable, Equatable {
    public enum Scope: String, Sendable, CaseIterable { case requests, responses, all }

    /// One or more patterns (OR); regular expressions unless `fixed`.
    public var patterns: [String]
    public var fixed: Bool
    public var ignoreCase: Bool
    /// Select exchanges where none of the texts matches.
    public var invert: Bool
    public var scope: Scope

    public init(patterns: [String], fixed: Bool = false, ignoreCase: Bool = false, invert: Bool = false, scope: Scope = .requests) {
        self.patterns = patterns; self.fixed = fixed; self.ignoreCase = ignoreCase; self.invert = invert; self.scope = scope
    }

    var searchesRequests: Bool { scope != .responses }
    var searchesResponses: Bool { scope != .requests }

    /// Compiles the patterns once to report syntax errors before a search starts.
    public func validate() throws {
        _ = try PatternMatcher(self)
    }

    /// Bytes that every match must contain, in every text the pattern is tried on, and that
    /// contain none of the separators the matcher puts between values (tab, newline, space),
    /// so they also appear verbatim in a block's raw payload: a block without them cannot match.
    /// Lowercase when case is ignored. nil when no such bytes are known.
    var requiredLiteral: [UInt8]? {
        guard patterns.count == 1, let p = patterns.first else { return nil }
        let literal: [UInt8]
        if fixed {
            literal = Array(p.utf8)
        } else {
            guard let l = TextPattern.longestRequiredLiteral(ofRegex: p) else { return nil }
            literal = l
        }
        let pieces = literal.split(whereSeparator: { $0 == 9 || $0 == 10 || $0 == 32 })
        guard let best = pieces.max(by: { $0.count < $1.count }), best.count >= 2 else { return nil }
        return ignoreCase ? best.map(asciiLower) : Array(best)
    }

    /// The longest run of literal characters that a POSIX extended regular expression requires,
    /// found conservatively: no top-level alternation, nothing inside groups or brackets, and a
    /// character followed by `*`, `?` or `{` dropped (it may occur zero times).
    static func longestRequiredLiteral(ofRegex regex: String) -> [UInt8]? {
        let b = Array(regex.utf8)
        var depth = 0
        var runs: [[UInt8]] = []
        var current: [UInt8] = []
        func cut() { if !current.isEmpty { runs.append(current) }; current = [] }
        var i = 0
        while i < b.count {
            let c = b[i]
            if depth > 0 {
                if c == UInt8(ascii: "\\") { i += 2; continue }
                if c == UInt8(ascii: "(") { depth += 1 } else if c == UInt8(ascii: ")") { depth -= 1 }
                i += 1
                continue
            }
            switch c {
            case UInt8(ascii: "|"):
                return nil
            case UInt8(ascii: "("):
                cut(); depth = 1
            case UInt8(ascii: "["):
                // A bracket with one plain member ([.] [*]) is that character: people write them to avoid escapes.
                if i + 2 < b.count, b[i + 2] == UInt8(ascii: "]"), ![UInt8(ascii: "^"), UInt8(ascii: "]"), UInt8(ascii: "["), UInt8(ascii: "\\")].contains(b[i + 1]) {
                    current.append(b[i + 1])
                    i += 2
                    break
                }
                cut()
                // Skip the bracket expression: a ']' right after '[' or '[^' is a member.
                var j = i + 1
                if j < b.count, b[j] == UInt8(ascii: "^") { j += 1 }
                if j < b.count, b[j] == UInt8(ascii: "]") { j += 1 }
                while j < b.count, b[j] != UInt8(ascii: "]") {
                    if b[j] == UInt8(ascii: "["), j + 1 < b.count, b[j + 1] == UInt8(ascii: ":") || b[j + 1] == UInt8(ascii: ".") || b[j + 1] == UInt8(ascii: "=") {
                        // [:alpha:] and friends end with their own ']'.
                        j += 2
                        while j < b.count, b[j] != UInt8(ascii: "]") { j += 1 }
                    }
                    j += 1
                }
                i = j
            case UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "{"):
                if !current.isEmpty { current.removeLast() }
                cut()
                if c == UInt8(ascii: "{") { while i < b.count, b[i] != UInt8(ascii: "}") { i += 1 } }
            case UInt8(ascii: "+"):
                cut()
            case UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "$"):
                cut()
            case UInt8(ascii: "\\"):
                guard i + 1 < b.count else { cut(); break }
                let n = b[i + 1]
                // GNU operators (\w \s \b \< \> \` \') and back-references are not literals.
                if n.isLetterOrDigit || [UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "`"), UInt8(ascii: "'")].contains(n) {
                    cut()
                } else {
                    current.append(n)
                }
                i += 1
            default:
                current.append(c)
            }
            i += 1
        }
        cut()
        return runs.max(by: { $0.count < $1.count })
    }

    /// `\d` and `\D` (which POSIX lacks and investigators type anyway) as bracket expressions.
    static func translated(_ regex: String) -> String {
        var out = ""
        var inBracket = false
        var chars = Array(regex)[...]
        while let c = chars.popFirst() {
            if inBracket {
                out.append(c)
                if c == "]" { inBracket = false }
                continue
            }
            if c == "\\", let n = chars.first {
                chars.removeFirst()
                switch n {
                case "d": out += "[0-9]"
                case "D": out += "[^0-9]"
                default: out.append(c); out.append(n)
                }
                continue
            }
            if c == "[" {
                inBracket = true
                out.append(c)
                if chars.first == "^" { out.append(chars.removeFirst()) }
                if chars.first == "]" { out.append(chars.removeFirst()) }
                continue
            }
            out.append(c)
        }
        return out
    }
}

extension UInt8 {
    var isLetterOrDigit: Bool { (self >= 48 && self <= 57) || (self | 0x20 >= 97 && self | 0x20 <= 122) }
}

public struct PatternError: Error, CustomStringConvertible {
    public var description: String
}

/// A compiled TextPattern. Not shareable between tasks: glibc's `regexec` takes a lock inside
/// each compiled expression, so every task that searches compiles its own.
final class PatternMatcher {
    let pattern: TextPattern
    /// For texts matched as a whole (statements, request lines): `.` also matches a newline.
    private var whole: [regex_t] = []
    /// For line-oriented texts (rows, bodies, streams): `^`, `$` and `.` work per line, as in grep.
    private var lines: [regex_t] = []
    private var literals: [[UInt8]] = []
    let required: [UInt8]?
    private var scratch: [UInt8] = []

    init(_ pattern: TextPattern) throws {
        self.pattern = pattern
        required = pattern.requiredLiteral
        if pattern.fixed {
            literals = pattern.patterns.map { pattern.ignoreCase ? Array($0.utf8).map(asciiLower) : Array($0.utf8) }
            return
        }
        let flags = REG_EXTENDED | REG_NOSUB | (pattern.ignoreCase ? REG_ICASE : 0)
        for p in pattern.patterns {
            let source = TextPattern.translated(p)
            for (newline, list) in [(false, 0), (true, 1)] {
                var r = regex_t()
                let rc = regcomp(&r, source, flags | (newline ? REG_NEWLINE : 0))
                if rc != 0 {
                    var buffer = [CChar](repeating: 0, count: 256)
                    regerror(rc, &r, &buffer, buffer.count)
                    let message = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    regfree(&r)
                    throw PatternError(description: "bad regular expression '\(p)': \(message)")
                }
                if list == 0 { whole.append(r) } else { lines.append(r) }
            }
        }
    }

    deinit {
        for i in whole.indices { regfree(&whole[i]) }
        for i in lines.indices { regfree(&lines[i]) }
    }

    /// False when `block` (a raw payload) cannot hold a match in any of its texts.
    func blockMayMatch(_ block: UnsafeRawBufferPointer) -> Bool {
        guard let required else { return true }
        return contains(block, required)
    }

    /// Whether the pattern matches `text`; `asLines` for line-oriented texts.
    func matches(_ text: UnsafeRawBufferPointer, asLines: Bool) -> Bool {
        if let required, !contains(text, required) { return false }
        if pattern.fixed {
            return literals.contains { contains(text, $0) }
        }
        let empty: [UInt8] = [0]
        return empty.withUnsafeBytes { fallback in
            let base = (text.baseAddress ?? fallback.baseAddress!).assumingMemoryBound(to: CChar.self)
            var m = regmatch_t(rm_so: 0, rm_eo: regoff_t(text.count))
            if asLines {
                for i in lines.indices where regexec(&lines[i], base, 1, &m, REG_STARTEND) == 0 { return true }
            } else {
                for i in whole.indices where regexec(&whole[i], base, 1, &m, REG_STARTEND) == 0 { return true }
            }
            return false
        }
    }

    func matches(_ text: String, asLines: Bool) -> Bool {
        var t = text
        return t.withUTF8 { matches(UnsafeRawBufferPointer($0), asLines: asLines) }
    }

    /// Substring search; `needle` is lowercase when case is ignored.
    private func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        if needle.isEmpty { return true }
        guard haystack.count >= needle.count, let h = haystack.baseAddress else { return false }
        if !pattern.ignoreCase {
            return needle.withUnsafeBytes { find($0, in: UnsafeRawBufferPointer(start: h, count: haystack.count)) }
        }
        if scratch.count < haystack.count { scratch = [UInt8](repeating: 0, count: max(haystack.count, 4096)) }
        return scratch.withUnsafeMutableBytes { s in
            for i in 0..<haystack.count { s[i] = asciiLower(haystack[i]) }
            return needle.withUnsafeBytes { find($0, in: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(s)[0..<haystack.count])) }
        }
    }
}

/// Whether `needle` occurs in `haystack`: memchr (vectorised in libc) finds candidates for the
/// first byte, the last byte and memcmp confirm. (memmem is a GNU extension Swift does not see.)
func find(_ needle: UnsafeRawBufferPointer, in haystack: UnsafeRawBufferPointer) -> Bool {
    let n = needle.count
    guard n > 0 else { return true }
    guard haystack.count >= n, let base = haystack.baseAddress, let nb = needle.baseAddress else { return false }
    let first = Int32(needle[0]), last = needle[n - 1]
    var at = 0
    let limit = haystack.count - n
    while at <= limit {
        guard let hit = memchr(base + at, first, limit - at + 1) else { return false }
        let i = base.distance(to: UnsafeRawPointer(hit))
        if haystack[i + n - 1] == last && memcmp(base + i, nb, n) == 0 { return true }
        at = i + 1
    }
    return false
}

/// Where a pattern matches in a line of output, to colour it on a terminal (not used to decide matches).
final class Highlighter {
    private var regexes: [regex_t] = []
    private let literals: [[UInt8]]
    private let ignoreCase: Bool

    init?(_ pattern: TextPattern) {
        guard !pattern.invert else { return nil }
        ignoreCase = pattern.ignoreCase
        if pattern.fixed {
            literals = pattern.patterns.map { Array($0.utf8).map(pattern.ignoreCase ? asciiLower : { $0 }) }
            return
        }
        literals = []
        for p in pattern.patterns {
            var r = regex_t()
            guard regcomp(&r, TextPattern.translated(p), REG_EXTENDED | (pattern.ignoreCase ? REG_ICASE : 0)) == 0 else { return nil }
            regexes.append(r)
        }
    }

    deinit { for i in regexes.indices { regfree(&regexes[i]) } }

    /// `text` with every match wrapped by `paint`, match boundaries moved out to whole UTF-8 characters.
    func mark(_ text: String, _ paint: (String) -> String) -> String {
        let bytes = Array(text.utf8)
        var marks = [Bool](repeating: false, count: bytes.count)
        let folded = ignoreCase ? bytes.map(asciiLower) : bytes
        for l in literals where !l.isEmpty && l.count <= folded.count {
            for i in 0...(folded.count - l.count) where folded[i..<(i + l.count)].elementsEqual(l) {
                for k in i..<(i + l.count) { marks[k] = true }
            }
        }
        bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress?.assumingMemoryBound(to: CChar.self) else { return }
            for i in regexes.indices {
                var at = 0
                while at < bytes.count {
                    var m = regmatch_t(rm_so: regoff_t(at), rm_eo: regoff_t(bytes.count))
                    guard regexec(&regexes[i], base, 1, &m, REG_STARTEND | (at > 0 ? REG_NOTBOL : 0)) == 0 else { break }
                    let lo = Int(m.rm_so), hi = Int(m.rm_eo)
                    for k in lo..<hi { marks[k] = true }
                    at = max(hi, lo + 1)
                }
            }
        }
        // Whole characters only: a continuation byte takes the mark of its lead byte's character.
        for k in marks.indices where marks[k] {
            var a = k
            while a > 0 && bytes[a] & 0xC0 == 0x80 { a -= 1; marks[a] = true }
            var b = k + 1
            while b < bytes.count && bytes[b] & 0xC0 == 0x80 { marks[b] = true; b += 1 }
        }
        guard marks.contains(true) else { return text }
        var out = ""
        var i = 0
        while i < bytes.count {
            var j = i
            while j < bytes.count && marks[j] == marks[i] { j += 1 }
            let piece = String(decoding: bytes[i..<j], as: UTF8.self)
            out += marks[i] ? paint(piece) : piece
            i = j
        }
        return out
    }
}
