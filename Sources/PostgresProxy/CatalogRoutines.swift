import ProxyCore
import SQLInspection

/// Code a statement runs that its text names only by a name PostgreSQL resolves on the search
/// path, and code inside views: what the inspector alone cannot see (issue 17, second review).
///
/// - **Functions and operators of built-in names defined in another schema.** PostgreSQL picks
///   a function or operator by name *and argument types* among every schema on the path, so
///   `public.length(integer)` is called by `SELECT length(5)` although pg_catalog comes first
///   (its `length(text)` needs a cast, the other matches exactly), and a path that names
///   pg_catalog after another schema lets that schema's `lower(text)` or `+(int, int)` win
///   outright. The gate cannot redo type resolution, so an unqualified call of a name that a
///   schema on the session's path also defines counts as an unknown function (fail closed: the
///   policy's `unknown_functions` decides, a write by default).
/// - **Views whose definitions call unknown or side-effect functions.** Reading such a view runs
///   them: its unknown functions and side effects become the statement's, through views over
///   views.
/// - **Attribute notation.** `t.f` or `(t).f` is `f(t)` when `t` has no column `f`: a reference
///   whose last field names a function a schema on the path defines counts as calling it.
///
/// Read with the rest of the catalog (`CatalogCache`), from the third result set of its query.
struct CatalogRoutines: Sendable {
    static let limit = 200_000
    /// Every function and operator outside the system schemas: kind (`f` or `o`), name, schema.
    /// (Temporary schemas are left out: PostgreSQL never looks functions or operators up there.)
    static let query = """
        SELECT 'f', p.proname, n.nspname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
        AND n.nspname NOT LIKE 'pg\\_toast%' \
        UNION ALL SELECT 'o', o.oprname, n.nspname FROM pg_catalog.pg_operator o \
        JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace \
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
        AND n.nspname NOT LIKE 'pg\\_toast%' LIMIT \(limit + 1)
        """

    /// Name → the schemas that define a function (or operator) of that name.
    var functions: [String: Set<String>] = [:]
    var operators: [String: Set<String>] = [:]
    var rows = 0
    /// False when there were more than `limit`: every unqualified name then counts as shadowed.
    var complete = true
    /// Per view: the unknown functions and side effects its definition has (through the views it reads).
    var viewCalls: [TableName: [String]] = [:]
    var viewSideEffects: [TableName: [String]] = [:]
    var viewReads: [TableName: [TableName]] = [:]

    mutating func add(_ row: [String?]) {
        rows += 1
        guard rows <= Self.limit else { complete = false; return }
        guard row.count == 3, let kind = row[0], let name = row[1], let schema = row[2] else { return }
        if kind == "o" { operators[name, default: []].insert(schema) } else { functions[name, default: []].insert(schema) }
    }

    mutating func addView(_ view: TableName, facts: StatementFacts, resolve: (RelationAccess) -> String) {
        viewReads[view] = facts.relations.map { TableName(schema: resolve($0), name: $0.name) }
        if !facts.unknownFunctions.isEmpty { viewCalls[view] = facts.unknownFunctions }
        if !facts.sideEffects.isEmpty { viewSideEffects[view] = facts.sideEffects }
    }

    /// Views over views: a view carries what every view it reads carries.
    mutating func closeViews() {
        var changed = true
        while changed {
            changed = false
            for (view, reads) in viewReads {
                for inner in reads where inner != view {
                    for c in viewCalls[inner] ?? [] where !(viewCalls[view] ?? []).contains(c) {
                        viewCalls[view, default: []].append(c)
                        changed = true
                    }
                    for e in viewSideEffects[inner] ?? [] where !(viewSideEffects[view] ?? []).contains(e) {
                        viewSideEffects[view, default: []].append(e)
                        changed = true
                    }
                }
            }
        }
    }

    /// The schemas among `defining` that an unqualified name can reach on `path` (all of them
    /// when the path is unknown or the list incomplete).
    func reachable(_ defining: Set<String>?, path: SearchPath) -> [String] {
        guard complete else { return ["?"] }
        guard let defining, !defining.isEmpty else { return [] }
        if path.schemas.contains("") { return defining.sorted() }
        return path.schemas.filter(defining.contains)
    }
}

extension StatementFacts {
    /// These facts with what the target's catalog says the statement may also run (see
    /// `CatalogRoutines`): shadowed names and views' calls become unknown functions, views'
    /// side effects become side effects, and the result becomes untraceable for masking.
    func checkingRoutines(_ routines: CatalogRoutines, path: SearchPath) -> StatementFacts {
        var out = self
        func unknown(_ what: String) {
            if !out.unknownFunctions.contains(what) { out.unknownFunctions.append(what) }
        }
        for f in functions where !f.contains(".") {
            let schemas = routines.reachable(routines.functions[f], path: path)
            if !schemas.isEmpty { unknown("\(f) (also defined in \(schemas.joined(separator: ", ")))") }
        }
        for o in operators where !o.contains(".") {
            let schemas = routines.reachable(routines.operators[o], path: path)
            if !schemas.isEmpty { unknown("operator \(o) (also defined in \(schemas.joined(separator: ", ")))") }
        }
        // Attribute notation: `t.f` and `(t).f` call a function `f(t)` when `t` has no column `f`.
        for p in projections where p.count >= 2 && p.last != "*" {
            let f = p.last!
            let schemas = routines.reachable(routines.functions[f], path: path)
            if !schemas.isEmpty { unknown("\(f) (attribute notation \(p.joined(separator: ".")); also defined in \(schemas.joined(separator: ", ")))") }
        }
        for r in relations {
            let table = TableName(schema: r.schema, name: r.name)
            for c in routines.viewCalls[table] ?? [] { unknown("\(c) (in view \(table))") }
            for e in routines.viewSideEffects[table] ?? [] where !out.sideEffects.contains("\(e) (in view \(table))") {
                out.sideEffects.append("\(e) (in view \(table))")
            }
        }
        if out.unknownFunctions != unknownFunctions || out.sideEffects != sideEffects {
            out.opaqueResult = true
            out.writes = out.writes || !out.sideEffects.isEmpty
        }
        return out
    }
}
