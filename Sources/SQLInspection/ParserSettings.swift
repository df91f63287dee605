/// The settings that change how PostgreSQL lexes or parses a statement, and the one value of each
/// that libpg_query always reads with. The gate's reading is the server's only while the server
/// uses these values, so a change to any other value is refused, however it is asked for (SET,
/// set_config, ALTER ROLE/DATABASE/SYSTEM … SET, a function's SET clause, the startup packet),
/// and the values the server reports are checked (PostgresProxy's `LexingSettings`).
///
/// - `standard_conforming_strings`: off makes `\` an escape in '…' literals.
/// - `client_encoding`: the server converts the statement to its own encoding before it lexes it;
///   in SJIS, BIG5, GBK… a character's second byte can be 0x5C (`\`).
/// - `backslash_quote`: whether `\'` is accepted; with UTF-8 safe_encoding is the gate's reading.
/// - `escape_string_warning`: only warns, but a change is refused as well (nothing the gate needs).
/// RESET, `SET … TO DEFAULT` and `DISCARD ALL` return to the session's default, which the gate
/// checked at login (the server reports it), so they are followed, not refused.
public enum ParserSettings {
    /// Setting name → the value the gate reads statements with, as PostgreSQL names it.
    public static let gateValues: [String: String] = [
        "standard_conforming_strings": "on",
        "client_encoding": "UTF8",
        "backslash_quote": "safe_encoding",
        "escape_string_warning": "on",
    ]

    public static func isParserSetting(_ name: String) -> Bool { gateValues[name.lowercased()] != nil }

    /// True when `value` means the gate's value for `name` (`name` must be a parser setting), as
    /// PostgreSQL reads it: booleans in any spelling it accepts, encoding names without case or
    /// punctuation (`utf-8`, `Unicode`), enum values without case.
    public static func isGateValue(_ name: String, _ value: String) -> Bool {
        switch name.lowercased() {
        case "standard_conforming_strings", "escape_string_warning": return isTrue(value)
        case "client_encoding": return isUTF8(value)
        case "backslash_quote": return value.lowercased() == "safe_encoding"
        default: return false
        }
    }

    /// PostgreSQL's parse_bool for true: a prefix of `true` or `yes`, `on`, `1`, any case.
    static func isTrue(_ value: String) -> Bool {
        let v = value.lowercased()
        guard !v.isEmpty else { return false }
        return "true".hasPrefix(v) || "yes".hasPrefix(v) || v == "on" || v == "1"
    }

    /// PostgreSQL's encoding lookup ignores case and every non-alphanumeric character.
    public static func isUTF8(_ value: String) -> Bool {
        let clean = String(value.lowercased().unicodeScalars.filter { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") })
        return clean == "utf8" || clean == "unicode"
    }

    /// Why a change of `name` to `value` is refused, or nil when it is followed. `name` nil: a
    /// name the text does not give (set_config with an expression), which could be any of them.
    /// `value` nil: a value the text does not give. `resets`: RESET or DEFAULT, the session default.
    public static func refusal(name: String?, value: String?, resets: Bool, verb: String) -> String? {
        guard let name else {
            return "\(verb) with a setting name that is not a constant: the gate cannot tell whether it changes how statements are read"
        }
        if name == "*" || resets { return nil }
        guard let gate = gateValues[name] else { return nil }
        guard let value else {
            return "\(verb) \(name) with a value that is not a constant: the gate reads statements only with \(name) = \(gate)"
        }
        if isGateValue(name, value) { return nil }
        return "\(verb) \(name) = \(value) is refused: the gate reads statements only with \(name) = \(gate), "
            + "and with another value PostgreSQL would read them differently"
    }
}
