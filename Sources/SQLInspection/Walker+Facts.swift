import Foundation

/// The facts a walk collects: relations, functions, settings, side effects and refusals.
extension Walker {

    mutating func addSideEffect(_ s: String) {
        if !sideEffects.contains(s) { sideEffects.append(s) }
    }

    mutating func addRelation(_ r: RelationAccess) {
        if seen.insert(r).inserted { relations.append(r) }
    }

    mutating func addRangeVar(_ rv: JSONObject, _ access: Access, _ ctes: Set<String>) {
        guard let name = rv["relname"]?.string else { return }
        let schema = rv["schemaname"]?.string
        if schema == nil && access == .read && ctes.contains(name) { return }  // a CTE reference
        let relation = RelationAccess(schema: schema ?? resolve(name, temp: rv["relpersistence"]?.string == "t"),
                                      name: name, access: access, schemaWasWritten: schema != nil)
        addRelation(relation)
        if let alias = rv["alias"]?.object?["aliasname"]?.string { aliases[alias] = relation }
        if let names = rv["alias"]?.object?["colnames"] { addRenamed(names) }
    }

    /// An alias or CTE column list: each name may now stand for any column.
    mutating func addRenamed(_ list: JSON) {
        for item in list.array ?? [] {
            guard let name = Walker.node(item)?.1["sval"]?.string else { continue }
            if !renamedColumns.contains(name) { renamedColumns.append(name) }
        }
    }

    func resolve(_ name: String, temp: Bool) -> String {
        if temp { return "pg_temp" }
        return name.hasPrefix("pg_") ? "pg_catalog" : defaultSchema
    }

    /// DROP/COMMENT object names (lists of String nodes) for table-like objects.
    mutating func addObjectNames(_ objects: [JSON], type: String?) {
        let tableLike: Set<String> = ["OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW",
                                      "OBJECT_FOREIGN_TABLE", "OBJECT_SEQUENCE", "OBJECT_INDEX"]
        guard let type, tableLike.contains(type) || type == "OBJECT_COLUMN" else { return }
        for object in objects {
            guard let items = Walker.node(object)?.1["items"]?.array else { continue }
            var parts = items.compactMap { Walker.node($0)?.1["sval"]?.string }
            if type == "OBJECT_COLUMN" { parts = Array(parts.dropLast()) }
            guard let name = parts.last else { continue }
            let schema = parts.count >= 2 ? parts[parts.count - 2] : nil
            addRelation(RelationAccess(schema: schema ?? resolve(name, temp: false), name: name,
                                       access: .write, schemaWasWritten: schema != nil))
        }
    }

    mutating func addFunction(_ call: JSONObject) {
        let parts = (call["funcname"]?.array ?? []).compactMap { Walker.node($0)?.1["sval"]?.string }
        guard !parts.isEmpty else { return }
        // As the parser gives them: unquoted names folded to lower case, quoted ones as written.
        let name = parts.joined(separator: ".")
        if !functions.contains(name) { functions.append(name) }
        let base = parts.last!.lowercased()
        // Exact names: the parser folds unquoted ones, and a quoted "LOWER" is not lower().
        let foreignSchema = parts.count > 1 && parts[parts.count - 2] != "pg_catalog"
        if (foreignSchema || !BuiltinFunctions.names.contains(parts.last!)) && !unknownFunctions.contains(name) { unknownFunctions.append(name) }
        if base.hasPrefix("dblink") { carriesSecret = true }  // connection strings may hold passwords
        if base == "set_config" {
            // Positional or named arguments (set_config(setting_name => …, new_value => …)).
            var positional: [JSON] = [], named: [String: JSON] = [:]
            for arg in call["args"]?.array ?? [] {
                if let (n, b) = Walker.node(arg), n == "NamedArgExpr" {
                    named[(b["name"]?.string ?? "").lowercased()] = b["arg"] ?? .null
                } else {
                    positional.append(arg)
                }
            }
            let nameArg: JSON? = positional.count > 0 ? positional[0] : named["setting_name"]
            let valueArg: JSON? = positional.count > 1 ? positional[1] : named["new_value"]
            let localArg: JSON? = positional.count > 2 ? positional[2] : named["is_local"]
            let isLocal = localArg.map { Walker.constant($0).map { ["t", "true", "on", "1", "yes", "y"].contains($0.lowercased()) } } ?? false
            let setting = Setting(name: nameArg.flatMap(Walker.constant)?.lowercased(), value: valueArg.flatMap(Walker.constant), local: isLocal)
            settings.append(setting)
            addRefusal(ParserSettings.refusal(name: setting.name, value: setting.value, resets: false, verb: "set_config"))
            addSideEffect("set_config(\(setting.name ?? "<dynamic>"))")
        } else if SideEffectFunctions.known.contains(base) {
            addSideEffect("side-effect function \(base)")
        }
    }

    mutating func addVariableSet(_ body: JSONObject) {
        let kind = body["kind"]?.string ?? ""
        let name = (body["name"]?.string)?.lowercased()
        switch kind {
        case "VAR_SET_MULTI":
            // SET TRANSACTION … / SET SESSION CHARACTERISTICS AS TRANSACTION …
            let prefix = name == "session characteristics" ? "default_" : ""
            addTransactionModes(body["args"], name: prefix + "transaction_read_only", prefix: prefix)
        case "VAR_RESET_ALL":
            addSetting(Setting(name: "*", value: nil), verb: "RESET ALL")
        case "VAR_RESET":
            addSetting(Setting(name: name, value: nil), verb: "RESET")
        case "VAR_SET_DEFAULT":
            addSetting(Setting(name: name, value: "DEFAULT"), verb: "SET")
        case "VAR_SET_CURRENT":
            // SET … FROM CURRENT (function and role settings): no value in the text.
            addSetting(Setting(name: name, value: nil), verb: "SET")
        default:
            let values = (body["args"]?.array ?? []).map(Walker.constant)
            let value = values.contains(where: { $0 == nil }) ? nil : values.compactMap { $0 }.joined(separator: ", ")
            addSetting(Setting(name: name, value: value, local: body["is_local"]?.boolean ?? false), verb: "SET")
        }
        addParserSettingRefusal(body)
    }

    /// A SET (of the session, of a role or database default, of the system, or a function's SET
    /// clause) that would make PostgreSQL read statements differently from the gate.
    mutating func addParserSettingRefusal(_ body: JSONObject) {
        guard let name = (body["name"]?.string)?.lowercased(), ParserSettings.isParserSetting(name) else { return }
        switch body["kind"]?.string ?? "" {
        case "VAR_RESET", "VAR_RESET_ALL", "VAR_SET_DEFAULT", "VAR_SET_MULTI":
            break  // back to the default the server reports at login
        case "VAR_SET_CURRENT":
            addRefusal(ParserSettings.refusal(name: name, value: nil, resets: false, verb: "SET … FROM CURRENT"))
        default:
            // VAR_SET_VALUE (the JSON may leave the first enum value out).
            let values = (body["args"]?.array ?? []).map(Walker.constant)
            let value = values.contains(where: { $0 == nil }) ? nil : values.compactMap { $0 }.joined(separator: ", ")
            addRefusal(ParserSettings.refusal(name: name, value: value, resets: false, verb: "SET"))
        }
    }

    /// Transaction modes (DefElems such as `transaction_read_only`).
    mutating func addTransactionModes(_ options: JSON?, name: String, prefix: String = "") {
        for opt in options?.array ?? [] {
            guard let (_, d) = Walker.node(opt), let defname = d["defname"]?.string else { continue }
            var value = d["arg"].flatMap(Walker.constant)
            if defname == "transaction_read_only" { value = value == "0" ? "off" : "on" }
            addSetting(Setting(name: prefix + defname, value: value), verb: "SET")
        }
    }

    mutating func addRefusal(_ reason: String?, kind: Refusal.Kind = .parserSettings) {
        if let reason, !refusals.contains(Refusal(kind, reason)) { refusals.append(Refusal(kind, reason)) }
    }

    /// Records a setting; a security-relevant change is a side effect, except
    /// turning read-only *on*, which only restricts.
    mutating func addSetting(_ s: Setting, verb: String) {
        settings.append(s)
        guard s.isSecurityRelevant else { return }
        if let n = s.name, n.hasSuffix("transaction_read_only"), verb == "SET",
           let v = s.value?.lowercased(), ["on", "true", "1", "yes"].contains(v) { return }
        addSideEffect(s.name == "*" ? verb : "\(verb) \(s.name!)")
    }

    /// The text of a constant (A_Const, String node, or a cast of one); nil otherwise.
    static func constant(_ value: JSON) -> String? {
        guard let (name, body) = node(value) else { return nil }
        switch name {
        case "String": return body["sval"]?.string
        case "Integer": return String(body["ival"]?.integer ?? 0)
        case "TypeCast": return body["arg"].flatMap(constant)
        case "A_Const":
            if body["isnull"]?.boolean == true { return nil }
            if let v = body["sval"]?.object { return v["sval"]?.string ?? "" }
            if let v = body["ival"]?.object { return String(v["ival"]?.integer ?? 0) }
            if let v = body["fval"]?.object { return v["fval"]?.string }
            if let v = body["boolval"]?.object { return (v["boolval"]?.boolean ?? false) ? "true" : "false" }
            if let v = body["bsval"]?.object { return v["bsval"]?.string }
            return nil
        default: return nil
        }
    }
}
