import ProxyCore

/// Fields of one COPY … TO STDOUT row, read and written exactly as PostgreSQL 15's CopyTo
/// writes them (`CopyAttributeOutText`, `CopyAttributeOutCSV`) for the statement's options, so
/// the masker finds each column where the server put it whatever DELIMITER, QUOTE, ESCAPE or
/// NULL the client chose. A field the masker does not change is written back byte for byte.
enum CopyRow {
    struct Field: Equatable {
        /// The value: unescaped (text format) or unquoted (CSV), as the column holds it.
        var value: [UInt8]
        /// The bytes as the server wrote them.
        var raw: [UInt8]
        var isNull: Bool
        var quoted: Bool
        /// Set when `value` was replaced: the field is written again from it.
        var changed = false
    }

    static func lineEnd(_ line: [UInt8]) -> [UInt8] {
        if line.last == 0x0A { return line.count >= 2 && line[line.count - 2] == 0x0D ? [0x0D, 0x0A] : [0x0A] }
        return []
    }

    /// The row's fields; nil when the bytes are not a row CopyTo could have written.
    static func split(_ line: [UInt8], layout: RowStreamLayout) -> [Field]? {
        let body = Array(line.dropLast(lineEnd(line).count))
        return layout.format == .csv ? splitCSV(body, layout) : splitText(body, layout)
    }

    /// Text format: a backslash escapes the next byte (`\t`, `\n`… for control characters, `\X`
    /// for the delimiter and the backslash), so a raw delimiter always ends a field.
    static func splitText(_ body: [UInt8], _ layout: RowStreamLayout) -> [Field]? {
        let d = layout.delimiter
        let nullIsDistinct = textNullIsDistinct(layout.null, delimiter: d)
        var fields: [Field] = [], value: [UInt8] = [], raw: [UInt8] = [], i = 0
        func emit() {
            fields.append(Field(value: value, raw: raw, isNull: nullIsDistinct && raw == layout.null, quoted: false))
            value = []; raw = []
        }
        while i < body.count {
            let c = body[i]
            if c == 0x5C {
                guard i + 1 < body.count else { return nil }
                let n = body[i + 1]
                raw += [c, n]
                value.append(unescaped[n] ?? n)
                i += 2
                continue
            }
            if c == d { emit() } else { raw.append(c); value.append(c) }
            i += 1
        }
        emit()
        return fields
    }

    static let unescaped: [UInt8: UInt8] = [
        UInt8(ascii: "b"): 0x08, UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A,
        UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09, UInt8(ascii: "v"): 0x0B,
    ]

    /// In text format the server writes the NULL string as is and does not escape a value equal
    /// to it: a NULL string that some value could also produce (`NULL ''`, `NULL 'none'`) cannot be
    /// told from that value, so such fields are masked as values (a NULL may come out masked; a
    /// value never comes out in clear). `\N`, the default, is never a written value.
    static func textNullIsDistinct(_ null: [UInt8], delimiter d: UInt8) -> Bool {
        var i = 0
        while i < null.count {
            let c = null[i]
            if c == 0x5C {
                guard i + 1 < null.count else { return true }
                let n = null[i + 1]
                if !(n == 0x5C || unescaped[n] != nil || (n == d && d >= 0x20)) { return true }
                i += 2
                continue
            }
            if c == d || (0x08...0x0D).contains(c) { return true }
            i += 1
        }
        return false
    }

    /// CSV: a field is quoted with QUOTE when it holds the delimiter, QUOTE, CR or LF, equals the
    /// NULL string, or FORCE_QUOTE names it; inside, QUOTE and ESCAPE are preceded by ESCAPE
    /// (with ESCAPE = QUOTE: doubled). An unquoted field never holds the delimiter.
    static func splitCSV(_ body: [UInt8], _ layout: RowStreamLayout) -> [Field]? {
        let d = layout.delimiter, q = layout.quote, e = layout.escape
        var fields: [Field] = [], i = 0
        while true {
            let start = i
            var value: [UInt8] = [], quoted = false
            if i < body.count && body[i] == q {
                quoted = true
                i += 1
                var closed = false
                while i < body.count {
                    let c = body[i]
                    if c == e, i + 1 < body.count, body[i + 1] == q || body[i + 1] == e {
                        value.append(body[i + 1]); i += 2; continue
                    }
                    if c == q { closed = true; i += 1; break }
                    value.append(c); i += 1
                }
                guard closed, i == body.count || body[i] == d else { return nil }
            } else {
                while i < body.count && body[i] != d { value.append(body[i]); i += 1 }
            }
            fields.append(Field(value: value, raw: Array(body[start..<i]), isNull: !quoted && value == layout.null, quoted: quoted))
            if i == body.count { break }
            i += 1  // the delimiter; a delimiter at the very end is followed by an empty field
        }
        return fields
    }

    static func join(_ fields: [Field], layout: RowStreamLayout, lineEnd: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, f) in fields.enumerated() {
            if i > 0 { out.append(layout.delimiter) }
            if !f.changed { out += f.raw; continue }
            if layout.format == .csv { writeCSV(f, layout, into: &out) } else { writeText(f.value, layout.delimiter, into: &out) }
        }
        return out + lineEnd
    }

    /// As `CopyAttributeOutText`.
    static func writeText(_ value: [UInt8], _ d: UInt8, into out: inout [UInt8]) {
        let letters: [UInt8: UInt8] = [0x08: UInt8(ascii: "b"), 0x0C: UInt8(ascii: "f"), 0x0A: UInt8(ascii: "n"),
                                       0x0D: UInt8(ascii: "r"), 0x09: UInt8(ascii: "t"), 0x0B: UInt8(ascii: "v")]
        for c in value {
            if let l = letters[c] { out += [0x5C, l] }
            else if c == 0x5C || c == d { out += [0x5C, c] }
            else { out.append(c) }
        }
    }

    /// As `CopyAttributeOutCSV`: a field quoted before stays quoted (FORCE_QUOTE).
    static func writeCSV(_ f: Field, _ layout: RowStreamLayout, into out: inout [UInt8]) {
        let d = layout.delimiter, q = layout.quote, e = layout.escape
        let quote = f.quoted || f.value == layout.null || f.value.contains { $0 == d || $0 == q || $0 == 0x0A || $0 == 0x0D }
        guard quote else { out += f.value; return }
        out.append(q)
        for c in f.value {
            if c == q || c == e { out.append(e) }
            out.append(c)
        }
        out.append(q)
    }
}
