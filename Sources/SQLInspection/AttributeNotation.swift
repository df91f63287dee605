/// Functions called in attribute notation (second review of issue 17). PostgreSQL reads `t.f`
/// and `(t).f` as `f(t)` when `t` is a row with no column `f` and a function `f` takes that
/// row: `SELECT p.to_jsonb FROM people p` returns every column of `p` as JSON, and
/// `SELECT p.export FROM people p` calls a user function `export(people)`. The text shows a
/// column reference, so:
/// - a field that names a built-in callable on a whole row (`RowFunctions`, from the catalog:
///   `to_jsonb`, `row_to_json`, `concat`, `record_out`…) also counts as a reference to the whole
///   row before it (masking then treats the value as it treats `to_jsonb(p)`; a real column of
///   that name keeps its reported origin, only computed columns over it are masked more than needed);
/// - every field after a row is recorded as a reference (`(p).f` as `p.f`), so the gate can check
///   the names against the functions the target's catalog defines (`CatalogRoutines`).
extension Walker {
    mutating func addAttributeNotation(_ fields: [String]) {
        if let row = Self.attributeNotationRow(fields), !projections.contains(row) { projections.append(row) }
    }

    /// The row before a field that names a built-in callable on a whole row (`RowFunctions`):
    /// `["p"]` for `p.to_jsonb`, the table's name for `schema.table.to_jsonb`.
    static func attributeNotationRow(_ fields: [String]) -> [String]? {
        guard fields.count >= 2, let last = fields.last, last != "*", RowFunctions.names.contains(last) else { return nil }
        return [fields[fields.count - 2]]
    }

    /// `(expr).field…`: the fields as references after the row they select from (`?` when it is not a column reference).
    mutating func addIndirection(_ body: JSONObject) {
        var row: [String] = ["?"]
        if let (name, arg) = Walker.node(body["arg"]), name == "ColumnRef" {
            let fields = (arg["fields"]?.array ?? []).map { f -> String in
                guard let (n, b) = Walker.node(f) else { return "?" }
                return n == "A_Star" ? "*" : (b["sval"]?.string ?? "?")
            }
            if !fields.isEmpty && !fields.contains("*") { row = fields }
        }
        for item in body["indirection"]?.array ?? [] {
            guard let (name, b) = Walker.node(item), name == "String", let field = b["sval"]?.string else { break }
            let ref = row + [field]
            if !projections.contains(ref) { projections.append(ref) }
            addAttributeNotation(ref)
            row = ref
        }
    }
}
