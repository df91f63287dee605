/// COPY's options as PostgreSQL 15's `ProcessCopyOptions` reads them. The old spellings
/// (`COPY BINARY t`, `WITH DELIMITER 'x' CSV HEADER QUOTE 'q' ESCAPE 'e' FORCE QUOTE *
/// NULL 'n'`, `USING DELIMITERS`) reach it as the same DefElems, so one reader covers both.
///
/// - A repeated option is an error there ("conflicting or redundant options"): refused here.
/// - An unknown option (`default` is PostgreSQL 16, `oids` went in 12) or a value of the wrong
///   kind is an error there: refused here. Option names are exact (a quoted `"DELIMITER"` is unknown).
/// - DELIMITER/NULL/QUOTE/ESCAPE keep their case. DELIMITER, QUOTE and ESCAPE must be one byte.
/// - A layout the row masker cannot follow exactly (an ENCODING other than UTF8) is not an error
///   but `CopyFacts.unfollowable`: the gate refuses the COPY only while masks apply.
enum CopyOptions {
    static let known: Set<String> = ["format", "freeze", "delimiter", "null", "header", "quote", "escape",
                                     "force_quote", "force_not_null", "force_null", "convert_selectively", "encoding"]

    static func facts(_ body: JSONObject) throws(OptionError) -> CopyFacts {
        let from = body["is_from"]?.boolean ?? false
        var seen: Set<String> = []
        var format = CopyFacts.Format.text, header = false
        var delimiter: UInt8?, quote: UInt8?, escape: UInt8?, null: [UInt8]?
        var unfollowable: String?
        func one(_ opt: DefElemReader.Option) throws(OptionError) -> String {
            guard let s = DefElemReader.string(opt.arg) else {
                throw OptionError("COPY option '\(opt.name)' has a value the gate cannot read: \(DefElemReader.shown(opt.arg))")
            }
            return s
        }
        func byte(_ opt: DefElemReader.Option) throws(OptionError) -> UInt8 {
            let s = try one(opt)
            guard s.utf8.count == 1 else {
                throw OptionError("COPY \(opt.name) must be a single one-byte character, not \(DefElemReader.shown(opt.arg))")
            }
            return s.utf8.first!
        }
        for opt in DefElemReader.options(body["options"]) {
            guard known.contains(opt.name) else {
                throw OptionError("COPY option '\(opt.name)' is not one PostgreSQL 15 knows; the gate refuses it")
            }
            guard seen.insert(opt.name).inserted else {
                throw OptionError("COPY option '\(opt.name)' is given twice (PostgreSQL: conflicting or redundant options)")
            }
            switch opt.name {
            case "format":
                switch try one(opt) {  // strcmp: exact
                case "text": format = .text
                case "csv": format = .csv
                case "binary": format = .binary
                default: throw OptionError("COPY option 'format' has a value the gate cannot read: \(DefElemReader.shown(opt.arg))")
                }
            case "freeze":
                guard DefElemReader.boolean(opt.arg) != nil else {
                    throw OptionError("COPY option 'freeze' has a value the gate cannot read: \(DefElemReader.shown(opt.arg))")
                }
            case "header":
                // defGetCopyHeaderChoice: a boolean, or "match" (COPY FROM only).
                if let b = DefElemReader.boolean(opt.arg) {
                    header = b
                } else if from, DefElemReader.string(opt.arg)?.lowercased() == "match" {
                    header = true
                } else {
                    throw OptionError("COPY option 'header' has a value the gate cannot read: \(DefElemReader.shown(opt.arg))")
                }
            case "delimiter": delimiter = try byte(opt)
            case "quote": quote = try byte(opt)
            case "escape": escape = try byte(opt)
            case "null":
                let s = try one(opt)
                null = Array(s.utf8)
            case "force_quote":
                guard DefElemReader.string(opt.arg) == "*" || DefElemReader.names(opt.arg) != nil else {
                    throw OptionError("COPY option 'force_quote' has a value the gate cannot read: \(DefElemReader.shown(opt.arg))")
                }
            case "force_not_null", "force_null", "convert_selectively":
                guard DefElemReader.names(opt.arg) != nil else {
                    throw OptionError("COPY option '\(opt.name)' has a value the gate cannot read: \(DefElemReader.shown(opt.arg))")
                }
            case "encoding":
                // pg_char_to_encoding: case and punctuation are ignored ("UTF-8", "utf8", "Unicode").
                let name = try one(opt).lowercased().filter { $0.isLetter || $0.isNumber }
                if name != "utf8" && name != "unicode" {
                    unfollowable = "COPY ENCODING \(DefElemReader.shown(opt.arg)): the gate masks COPY rows only in UTF8"
                }
            default: break
            }
        }
        let csv = format == .csv
        let d = delimiter ?? (csv ? UInt8(ascii: ",") : 0x09)
        let q = quote ?? UInt8(ascii: "\"")
        let nullBytes = null ?? (csv ? [] : Array("\\N".utf8))
        // The server's own checks that decide how rows are written (it rejects the rest).
        if d == 0x0A || d == 0x0D { throw OptionError("COPY delimiter cannot be newline or carriage return") }
        if !csv && format == .text && Array("\\.abcdefghijklmnopqrstuvwxyz0123456789".utf8).contains(d) {
            throw OptionError("COPY delimiter cannot be '\(Character(Unicode.Scalar(d)))' in text format")
        }
        if csv && d == q { throw OptionError("COPY delimiter and quote must be different") }
        if !csv && (quote != nil || escape != nil) { throw OptionError("COPY quote and escape are available only in CSV mode") }
        if nullBytes.contains(0x0A) || nullBytes.contains(0x0D) { throw OptionError("COPY null representation cannot use newline or carriage return") }
        if nullBytes.contains(d) { throw OptionError("COPY delimiter must not appear in the NULL specification") }
        if csv && nullBytes.contains(q) { throw OptionError("CSV quote character must not appear in the NULL specification") }
        let columns = (body["attlist"]?.array ?? []).compactMap { Walker.node($0)?.1["sval"]?.string }
        let toClient = !from && !(body["is_program"]?.boolean ?? false) && body["filename"]?.string == nil
        var facts = CopyFacts(format: format, delimiter: d, header: header, columns: columns,
                              fromQuery: body["query"] != nil, toClient: toClient)
        facts.quote = q
        facts.escape = escape ?? q
        facts.null = nullBytes
        facts.unfollowable = unfollowable
        return facts
    }
}
