// Since format 1.4: what the gate did to a recorded value, as flags a reader can trust, rather
// than sentinel strings in the text (which stay, for humans). See docs/capture-format.md.

/// What was done to a recorded value (a parameter, a statement text, a result value, a notice).
/// No flag: recorded as sent.
public struct ValueFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// A mask or the secrets pass replaced some or all of it: what is recorded is the masked form.
    public static let masked = ValueFlags(rawValue: 1)
    /// Replaced whole because it could not be recorded safely (it carries a credential, or it
    /// could not be read); what is recorded says so and holds nothing of the original.
    public static let withheld = ValueFlags(rawValue: 2)
    /// Longer than the recording cap: recorded cut, with a marker.
    public static let cut = ValueFlags(rawValue: 4)

    /// The flags' names, in a fixed order (`masked`, `withheld`, `cut`); a bit this reader does not know is `flag-N`.
    public var names: [String] {
        var names: [String] = []
        if contains(.masked) { names.append("masked") }
        if contains(.withheld) { names.append("withheld") }
        if contains(.cut) { names.append("cut") }
        var rest = rawValue & ~7
        while rest != 0 {
            let bit = rest.trailingZeroBitCount
            names.append("flag-\(1 << bit)")
            rest &= rest - 1
        }
        return names
    }

    /// The recorded value is not the value sent: compare it by its recorded form only.
    public var isAltered: Bool { !isEmpty }
}

/// One flagged value of a response's recorded rows: its row (0-based among the recorded rows of
/// that response), its column (0-based) and its flags.
public struct FlaggedValue: Sendable, Equatable, Hashable {
    public var row: Int
    public var column: Int
    public var flags: ValueFlags

    public init(row: Int, column: Int, flags: ValueFlags) { self.row = row; self.column = column; self.flags = flags }

    /// On disk (PostgresResponse field 9): for each flagged value, varint(row) varint(column)
    /// varint(flags), in row then column order; only values with at least one flag appear.
    static func pack(_ values: [FlaggedValue]) -> [UInt8] {
        var w = WireWriter(capacity: values.count * 3)
        for v in values {
            w.varint(UInt64(v.row)); w.varint(UInt64(v.column)); w.varint(v.flags.rawValue)
        }
        return w.bytes
    }

    static func unpack(_ r: inout WireReader, into values: inout [FlaggedValue]) throws {
        while !r.isAtEnd {
            let row = try r.varint(), column = try r.varint(), flags = try r.varint()
            // A row has at most 65,535 values (PostgreSQL's limit is 1,664 columns).
            guard row < UInt64(Int32.max), column < 1 << 16 else { throw r.fail("value flag names row \(row), column \(column)") }
            values.append(FlaggedValue(row: Int(row), column: Int(column), flags: ValueFlags(rawValue: flags)))
        }
    }
}
