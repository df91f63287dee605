/// Reads a statement's option list (DefElems) the way PostgreSQL 15's `define.c` does, so that
/// the gate takes an option to mean what the server takes it to mean. Whatever cannot be read
/// exactly is an error that names the option: the caller refuses the statement.
struct DefElemReader {
    /// One option as the parser gives it: its name (folded to lower case unless quoted) and argument.
    struct Option {
        let name: String
        let arg: JSON?
    }

    /// The statement's options, in order.
    static func options(_ list: JSON?) -> [Option] {
        (list?.array ?? []).compactMap { item in
            guard let (node, body) = Walker.node(item), node == "DefElem", let name = body["defname"]?.string else { return nil }
            return Option(name: name, arg: body["arg"])
        }
    }

    /// `defGetString`: a string, an integer or a float as written, `*`; nil for a missing argument
    /// or one of another kind (a type name, a list), which the gate does not read.
    static func string(_ arg: JSON?) -> String? {
        guard let arg, let (node, body) = Walker.node(arg) else { return nil }
        switch node {
        case "String": return body["sval"]?.string ?? ""
        // libpg_query's JSON leaves out an ival of 0, and also that of a negative number
        // (`DELIMITER -1` comes out as `{"Integer":{}}`): an Integer without ival is unreadable.
        case "Integer": return body["ival"]?.integer.map { String($0) }
        case "Float": return body["fval"]?.string
        case "A_Star": return "*"
        case "Boolean": return (body["boolval"]?.boolean ?? false) ? "true" : "false"  // false is left out
        default: return nil
        }
    }

    /// `defGetBoolean`: no argument is true; an Integer 0 or 1; the strings true/false/on/off in
    /// any case. Nil for anything else (PostgreSQL raises an error, so the gate refuses).
    static func boolean(_ arg: JSON?) -> Bool? {
        guard let arg else { return true }
        guard let (node, body) = Walker.node(arg) else { return nil }
        if node == "Integer" {
            // Without ival it is 0 or a negative number (see `string`): 0 is false and PostgreSQL
            // rejects a negative one, so reading it as false never makes the gate miss a true.
            switch body["ival"]?.integer ?? 0 {
            case 0: return false
            case 1: return true
            default: return nil
            }
        }
        // PostgreSQL 15's Boolean node (legacy `HEADER`, `FREEZE`) goes through defGetString too.
        guard node == "String" || node == "Boolean", let s = string(arg)?.lowercased() else { return nil }
        switch s {
        case "true", "on": return true
        case "false", "off": return false
        default: return nil
        }
    }

    /// A list of names (`FORCE_QUOTE (a, b)`); nil when the argument is not a list of strings.
    static func names(_ arg: JSON?) -> [String]? {
        guard let arg, let (node, body) = Walker.node(arg), node == "List" else { return nil }
        var out: [String] = []
        for item in body["items"]?.array ?? [] {
            guard let (n, b) = Walker.node(item), n == "String", let s = b["sval"]?.string else { return nil }
            out.append(s)
        }
        return out
    }

    /// How an argument is shown in a refusal (what the client wrote, briefly).
    static func shown(_ arg: JSON?) -> String {
        guard let arg else { return "(none)" }
        if let s = string(arg) { return "'\(s.prefix(40))'" }
        return Walker.node(arg).map { "a \($0.0) node" } ?? "an unreadable value"
    }
}
