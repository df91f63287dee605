/// Literals in SQL text, found by the lexical rules alone (for text the parser rejected, which
/// can therefore not be normalized): quoted strings ('…', E'…', U&'…', B'…', X'…' and
/// $tag$…$tag$). Quoted identifiers and comments are kept.
public enum SQLLiterals {
    /// The text with every literal replaced by `'…'`, as recorded for a statement that did not
    /// parse: it may carry a password, and nothing can tell.
    public static func withheld(_ sql: String) -> String {
        let b = Array(sql.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        let placeholder = Array("'…'".utf8)
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "-"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "-") {
                // A line comment, kept as it is.
                while i < b.count && b[i] != 0x0A { out.append(b[i]); i += 1 }
                continue
            }
            if c == UInt8(ascii: "/"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "*") {
                var depth = 0
                repeat {
                    if i + 1 < b.count && b[i] == UInt8(ascii: "/") && b[i + 1] == UInt8(ascii: "*") { depth += 1; out += [b[i], b[i + 1]]; i += 2; continue }
                    if i + 1 < b.count && b[i] == UInt8(ascii: "*") && b[i + 1] == UInt8(ascii: "/") { depth -= 1; out += [b[i], b[i + 1]]; i += 2; continue }
                    out.append(b[i]); i += 1
                } while depth > 0 && i < b.count
                continue
            }
            if c == UInt8(ascii: "\"") {
                // A quoted identifier, kept.
                out.append(c); i += 1
                while i < b.count {
                    out.append(b[i])
                    if b[i] == UInt8(ascii: "\"") {
                        if i + 1 < b.count && b[i + 1] == UInt8(ascii: "\"") { out.append(b[i + 1]); i += 2; continue }
                        i += 1
                        break
                    }
                    i += 1
                }
                continue
            }
            if c == UInt8(ascii: "'") {
                // E'…' only when the E stands alone: `some'…'` is an identifier and a plain literal.
                let escapes = i > 0 && (b[i - 1] | 0x20) == UInt8(ascii: "e") && !(i > 1 && isIdentifier(b[i - 2]))
                i += 1
                while i < b.count {
                    if escapes && b[i] == UInt8(ascii: "\\") { i += 2; continue }
                    if b[i] == UInt8(ascii: "'") {
                        if i + 1 < b.count && b[i + 1] == UInt8(ascii: "'") { i += 2; continue }
                        i += 1
                        break
                    }
                    i += 1
                }
                out += placeholder
                continue
            }
            if c == UInt8(ascii: "$"), let tagEnd = dollarTagEnd(b, i) {
                let tag = Array(b[i...tagEnd])
                var j = tagEnd + 1
                var closed = false
                while j + tag.count <= b.count {
                    if b[j] == UInt8(ascii: "$") && Array(b[j..<j + tag.count]) == tag { j += tag.count; closed = true; break }
                    j += 1
                }
                i = closed ? j : b.count
                out += placeholder
                continue
            }
            out.append(c)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `$tag$` or `$$` starting at `i` (not a `$1` parameter): the index of its closing `$`.
    static func dollarTagEnd(_ b: [UInt8], _ i: Int) -> Int? {
        if i > 0, isIdentifier(b[i - 1]) { return nil }  // part of an identifier such as a$b
        var j = i + 1
        if j < b.count, b[j] >= 0x30, b[j] <= 0x39 { return nil }  // $1
        while j < b.count, isIdentifier(b[j]) { j += 1 }
        return j < b.count && b[j] == UInt8(ascii: "$") ? j : nil
    }

    static func isIdentifier(_ c: UInt8) -> Bool {
        (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A || (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "_") || c >= 0x80
    }
}
