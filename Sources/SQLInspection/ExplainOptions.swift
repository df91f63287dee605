/// EXPLAIN's options as PostgreSQL 15's `ExplainQuery` reads them: every option is read in
/// order and a repeated one overrides the earlier (the last `ANALYZE` wins); booleans go
/// through `defGetBoolean`; an unknown option name, or a value the server would reject, is an
/// error there, and a refusal here (the gate never guesses what the server will do).
struct ExplainOptions {
    var analyze = false

    static let booleans: Set<String> = ["analyze", "verbose", "costs", "settings", "buffers", "wal", "timing", "summary"]
    static let formats: Set<String> = ["text", "xml", "json", "yaml"]

    /// Throws a message naming the option the gate cannot read.
    static func read(_ list: JSON?) throws(OptionError) -> ExplainOptions {
        var out = ExplainOptions()
        for opt in DefElemReader.options(list) {
            if booleans.contains(opt.name) {
                guard let value = DefElemReader.boolean(opt.arg) else {
                    throw OptionError("EXPLAIN option '\(opt.name)' has a value the gate cannot read: \(DefElemReader.shown(opt.arg))")
                }
                if opt.name == "analyze" { out.analyze = value }
            } else if opt.name == "format" {
                // defGetString, then an exact (case-sensitive) match.
                guard let value = DefElemReader.string(opt.arg), formats.contains(value) else {
                    throw OptionError("EXPLAIN option 'format' has a value the gate cannot read: \(DefElemReader.shown(opt.arg))")
                }
            } else {
                throw OptionError("EXPLAIN option '\(opt.name)' is not one PostgreSQL 15 knows; the gate refuses it")
            }
        }
        return out
    }
}

/// An option the gate cannot read exactly as the server would: the statement is refused with this message.
struct OptionError: Error, Equatable {
    let message: String
    init(_ message: String) { self.message = message }
}
