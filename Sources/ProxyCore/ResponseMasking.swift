import Masking
import Policy
import Synchronization

extension Masker {
    /// Compiles policy-file mask specs. Throws `MaskingError` naming the bad entry.
    public convenience init(specs: [MaskSpec]) throws {
        var detectors: [String] = [], patterns: [CustomPattern] = [], columns: [String] = [], jsonFields: [String] = []
        for spec in specs {
            switch spec {
            case .detector(let name): detectors.append(name)
            case .column(let glob): columns.append(glob)
            case .pattern(let name, let regex): patterns.append(CustomPattern(name: name, pattern: regex))
            case .jsonField(let glob): jsonFields.append(glob)
            }
        }
        try self.init(detectorNames: detectors, customPatterns: patterns, columnRules: columns, jsonFieldRules: jsonFields)
    }
}

/// Which masks a session gets: its target's, plus those of every policy that applies to its
/// identity there. Maskers are compiled once per distinct list of masks and shared.
public final class MaskingSetup: Sendable {
    let targetMasks: [String: [MaskSpec]]
    let policies: PolicySet
    let compiled = Mutex<[[MaskSpec]: Masker]>([:])

    public init(targetMasks: [String: [MaskSpec]], policies: PolicySet) {
        self.targetMasks = targetMasks
        self.policies = policies
    }

    /// The target's masks, then those of the policies that apply to `who` there, without repeats.
    public func specs(for who: Principal, target: String) -> [MaskSpec] {
        var specs = targetMasks[target] ?? []
        for m in policies.masks(for: who, target: target) where !specs.contains(m) { specs.append(m) }
        return specs
    }

    /// True when no session can get a mask: adapters then skip value scanning altogether.
    public var isEmpty: Bool {
        targetMasks.values.allSatisfy(\.isEmpty) && policies.policies.allSatisfy(\.masks.isEmpty)
    }

    /// The session's masker, or nil when nothing is masked for it. Specs were validated when the
    /// configuration loaded, so compiling cannot fail here; if it ever did, the session gets a
    /// masker that masks every column whole rather than none (fail closed).
    public func masker(for session: SessionContext) -> Masker? {
        let specs = self.specs(for: Principal(subject: session.subject, groups: session.groups), target: session.target)
        guard !specs.isEmpty else { return nil }
        if let hit = compiled.withLock({ $0[specs] }) { return hit }
        let masker = (try? Masker(specs: specs)) ?? (try! Masker(detectors: Set(BuiltinDetector.allCases), columnRules: ["*"]))
        compiled.withLock { $0[specs] = masker }
        return masker
    }
}

/// A relation as `schema.name`.
public struct TableName: Sendable, Hashable, CustomStringConvertible {
    public var schema: String
    public var name: String
    public init(schema: String, name: String) { self.schema = schema; self.name = name }
    public var description: String { "\(schema).\(name)" }
}

/// What masking needs from one inspected statement to tell which computed result columns
/// derive from covered columns: the column references of its select lists and RETURNING
/// lists, its table aliases and its relations.
public struct Projection: Sendable, Hashable {
    public var references: [[String]]
    /// Per output column, its references, when the statement's output columns are known by position.
    public var outputs: [[[String]]]?
    public var aliases: [String: TableName]
    public var relations: [TableName]
    /// The statement's rows come from something inspection cannot see (an unresolved cursor or
    /// prepared statement, a procedure, a function PostgreSQL does not ship, SQL run from text):
    /// every computed column may hold anything.
    public var opaque: Bool
    /// Names given by alias or CTE column lists: they may stand for any column of the statement.
    public var renamed: Set<String>
    /// A `*` whose columns reach a value without a reference naming them (in a subquery, a CTE,
    /// a UNION arm, `ARRAY(SELECT * …)`, `COPY (SELECT * …)`).
    public var nestedStar: Bool
    public init(references: [[String]], outputs: [[[String]]]? = nil, aliases: [String: TableName], relations: [TableName],
                opaque: Bool = false, renamed: Set<String> = [], nestedStar: Bool = false) {
        self.references = references; self.outputs = outputs; self.aliases = aliases; self.relations = relations
        self.opaque = opaque; self.renamed = renamed; self.nestedStar = nestedStar
    }

    /// What a request's statements are not known to be: fail closed.
    public static let unknown = Projection(references: [], aliases: [:], relations: [], opaque: true)
}

/// One column of a result, as far as the protocol and the database catalog identify it.
public struct ResultColumn: Sendable, Hashable {
    public enum Source: Sendable, Hashable {
        /// A plain column of a table or view (PostgreSQL reports its origin even through aliases and subqueries).
        case table(TableName, column: String)
        /// The protocol names a table the gate cannot resolve (a table created after the catalog was read).
        case unresolved
        /// An expression: `upper(ssn)`, `row_to_json(c)`, a literal, an aggregate.
        case computed
    }
    public var name: String
    public var source: Source
    public init(name: String, source: Source) { self.name = name; self.source = source }
}

/// Decides, per result column, whether a column rule masks it whole (otherwise its values are
/// scanned by the content detectors). The rules, conservative by design:
/// - a table column is covered when a rule matches its real name or its output name;
/// - a column whose table cannot be resolved is covered (fail closed);
/// - a computed column is covered when a rule matches its output name (`*.ssn` covers
///   `concat(a) AS ssn`), or when the statement's select lists refer to a covered column or to a
///   whole row that may hold one (`upper(ssn)`, `row_to_json(c)`, `array_agg(email)`). For a
///   single plain SELECT without `*` that is decided per output column from its own expression;
///   otherwise (UNION, `*`, several statements) from every select list, so every computed column
///   of the statement is covered;
/// - in a statement that reads a covered column's table, a computed column is also covered when
///   it may hold a column renamed by an alias or CTE column list (`Projection.renamed`) or one
///   expanded from a `*` outside the top-level list (`Projection.nestedStar`): their names do not say.
public enum ColumnMaskPlanner {
    public static func plan(_ columns: [ResultColumn], masker: Masker, projections: [Projection], catalog: CatalogLookup) -> [Bool] {
        guard masker.hasColumnRules else { return Array(repeating: false, count: columns.count) }
        let planner = Planner(masker: masker, catalog: catalog)
        var lineage: Bool?
        let perOutput = projections.count == 1 && !projections[0].opaque
            ? projections[0].outputs.flatMap { $0.count == columns.count ? $0 : nil } : nil
        return columns.enumerated().map { index, column in
            switch column.source {
            case .table(let table, let name):
                return planner.covers(table, name, depth: 0)
                    || masker.coversColumn(ColumnRef(schema: table.schema, table: table.name, column: column.name))
            case .unresolved:
                return true
            case .computed:
                if masker.coversColumn(ColumnRef(column: column.name)) { return true }
                if let perOutput {
                    var own = projections[0]
                    own.references = perOutput[index]
                    return planner.derives([own], depth: 0)
                }
                if lineage == nil { lineage = planner.derives(projections, depth: 0) }
                return lineage!
            }
        }
    }

    /// Whether any select-list reference may carry a covered value.
    public static func derivesFromCovered(_ projections: [Projection], masker: Masker, catalog: CatalogLookup) -> Bool {
        Planner(masker: masker, catalog: catalog).derives(projections, depth: 0)
    }

    /// Whether a statement's lineage may touch a covered column: a reference that may carry one,
    /// a relation it reads that holds one (`SELECT * … WHERE card::int = 0`, a unique-key
    /// error's detail), or rows from something untraceable. Its errors and notices then keep no text.
    public static func touchesCovered(_ projections: [Projection], masker: Masker, catalog: CatalogLookup) -> Bool {
        guard masker.hasColumnRules else { return false }
        let planner = Planner(masker: masker, catalog: catalog)
        if planner.derives(projections, depth: 0) { return true }
        return projections.contains { p in
            p.relations.contains { t in
                if let columns = catalog.columns(t) { return columns.contains { planner.covers(t, $0, depth: 0) } }
                return catalog.knowsEveryRelation || masker.mayCoverColumns(ofSchema: t.schema, table: t.name)  // see `Planner.covers`
            }
        }
    }

    struct Planner {
        let masker: Masker
        let catalog: CatalogLookup
        /// Views over views are followed this deep (PostgreSQL forbids cycles; the bound is for safety).
        static let maxDepth = 8

        /// A column is covered by a rule on it, or, for a view, by what its definition computes it from.
        func covers(_ t: TableName, _ column: String, depth: Int) -> Bool {
            if masker.coversColumn(ColumnRef(schema: t.schema, table: t.name, column: column)) { return true }
            // A relation the catalog does not know (a temporary table, one created since the catalog
            // was read, a name of no known schema) may hold values copied from a covered column
            // (`CREATE TEMP TABLE t AS SELECT card AS name …`): fail closed.
            if catalog.knowsEveryRelation && catalog.columns(t) == nil { return true }
            guard let definition = catalog.viewColumn(t, column) else { return false }
            return depth >= Self.maxDepth || derives([definition], depth: depth + 1)
        }

        func derives(_ projections: [Projection], depth: Int) -> Bool {
            for p in projections {
                if p.opaque { return true }
                func named(_ qualifier: String) -> [TableName] {
                    if let t = p.aliases[qualifier] { return [t] }
                    return p.relations.filter { $0.name == qualifier }
                }
                func wholeRow(_ t: TableName) -> Bool {
                    if let columns = catalog.columns(t) { return columns.contains { covers(t, $0, depth: depth) } }
                    return catalog.knowsEveryRelation || masker.mayCoverColumns(ofSchema: t.schema, table: t.name)  // see `covers`
                }
                func column(_ name: String, in tables: [TableName]) -> Bool {
                    if masker.coversColumn(ColumnRef(column: name)) { return true }
                    return tables.contains { covers($0, name, depth: depth) }
                }
                // What a renamed column may carry: any column of any relation the statement reads
                // (fail closed; the cost is masking more computed columns).
                var anyRowMemo: Bool?
                func anyRow() -> Bool {
                    if anyRowMemo == nil { anyRowMemo = p.relations.contains(where: wholeRow) }
                    return anyRowMemo!
                }
                if p.nestedStar && anyRow() { return true }
                for fields in p.references {
                    guard let last = fields.last else { continue }
                    if last == "*" {
                        // `t.*` is a whole row; a bare `*` in the top-level list yields plain columns,
                        // identified by the protocol (one anywhere else is `nestedStar`).
                        guard fields.count >= 2 else { continue }
                        let tables = named(fields[fields.count - 2])
                        if (tables.isEmpty ? p.relations : tables).contains(where: wholeRow) { return true }
                        continue
                    }
                    if fields.count == 1 {
                        // `c` may be a column, or a whole row of a table or alias named `c`.
                        if named(last).contains(where: wholeRow) { return true }
                        if column(last, in: p.relations) { return true }
                        // A name an alias or CTE column list gave (or an unreadable one) may be any column.
                        // A CTE's or subquery's whole row (`t::text`) carries what its own references
                        // and `*` carry, which count already (all references, `nestedStar`).
                        if (p.renamed.contains(last) || last == "?") && anyRow() { return true }
                        continue
                    }
                    let tables = named(fields[fields.count - 2])
                    // A qualifier that is no table here (a subquery's alias) could stand for any of them.
                    if column(last, in: tables.isEmpty ? p.relations : tables) { return true }
                    if (p.renamed.contains(last) || last == "?") && anyRow() { return true }
                }
            }
            return false
        }
    }
}

/// What the planner may ask of the database catalog; both answers are nil when unknown.
public struct CatalogLookup: Sendable {
    /// A relation's columns, in order.
    public var columns: @Sendable (TableName) -> [String]?
    /// For a view's column: the references its definition computes it from.
    public var viewColumn: @Sendable (TableName, String) -> Projection?
    /// The database's catalog as read (not a stand-in): a relation it does not know was made
    /// since, or is temporary, or is of no known schema, and may hold anything (`Planner.covers`).
    public var knowsEveryRelation = false

    public init(columns: @escaping @Sendable (TableName) -> [String]?, viewColumn: @escaping @Sendable (TableName, String) -> Projection?) {
        self.columns = columns
        self.viewColumn = viewColumn
    }

    public static let none = CatalogLookup(columns: { _ in nil }, viewColumn: { _, _ in nil })
}
