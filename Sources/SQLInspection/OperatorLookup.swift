/// Operators in a statement. An operator is a function call PostgreSQL finds by name and
/// argument types on the search path (pg_catalog first unless the path names it later), so an
/// operator a schema defines (`CREATE OPERATOR public.#~# (… function = writes_something)`) runs
/// code the text does not show. The walker records every operator name; one PostgreSQL does not
/// ship (`BuiltinOperators`), or one written `OPERATOR(schema.op)` with a schema other than
/// pg_catalog, is an unknown function. Built-in names that a schema on the path also defines
/// are checked by the gate against the target's catalog (`CatalogRoutines` in PostgresProxy).
extension Walker {
    mutating func addOperators(node: String, body: JSONObject) {
        switch node {
        case "A_Expr":
            let kind = body["kind"]?.string ?? "AEXPR_OP"
            if kind.contains("BETWEEN") {
                // `a BETWEEN x AND y` is `a >= x AND a <= y` (the name in the tree is the keyword).
                addOperator([">="])
                addOperator(["<="])
            } else {
                addOperator(Self.names(body["name"]))
            }
        case "SubLink":
            addOperator(Self.names(body["operName"]))  // `x = ANY (SELECT …)`, row comparisons
        case "SortBy":
            addOperator(Self.names(body["useOp"]))  // `ORDER BY x USING >`
        case "CaseExpr":
            if body["arg"] != nil { addOperator(["="]) }  // `CASE x WHEN y` compares with `=`
        case "JoinExpr":
            // USING and NATURAL join on `=` looked up by name.
            if body["usingClause"] != nil || body["isNatural"]?.boolean == true { addOperator(["="]) }
        default:
            break
        }
    }

    mutating func addOperator(_ parts: [String]) {
        guard let op = parts.last else { return }
        let name = parts.joined(separator: ".")
        if !operators.contains(name) { operators.append(name) }
        let foreignSchema = parts.count > 1 && parts[parts.count - 2] != "pg_catalog"
        let unknown = "operator \(name)"
        if (foreignSchema || !BuiltinOperators.names.contains(op)) && !unknownFunctions.contains(unknown) {
            unknownFunctions.append(unknown)
        }
    }

    static func names(_ list: JSON?) -> [String] {
        (list?.array ?? []).compactMap { node($0)?.1["sval"]?.string }
    }
}
