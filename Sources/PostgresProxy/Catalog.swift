import NIOConcurrencyHelpers
import NIOCore
import ProxyCore
import SQLInspection
import Synchronization

/// The database's relations and columns, as the gate's own account sees them: RowDescription
/// names a result column's origin only by table OID and attribute number, and column rules
/// and search-path resolution need names. One per target, shared by its sessions.
///
/// Read through a session's upstream connection right after the gate logs in, before the
/// client is let in, when the copy is missing, older than `maxAge`, or marked stale (a table
/// the catalog did not know turned up in a result, or DDL went through the gate).
final class CatalogCache: Sendable {
    struct Relation: Sendable {
        var table: TableName
        var isView = false
        /// Column names by attribute number.
        var columns: [Int16: String]
        /// In attribute order (the order `COPY table TO STDOUT` writes them).
        var ordered: [String]
    }

    struct Snapshot: Sendable {
        var relations: [UInt32: Relation] = [:]
        var byName: [TableName: UInt32] = [:]
        /// Schemas that hold a relation of this name, for search-path resolution.
        var schemasOf: [String: Set<String>] = [:]
        /// False when the catalog had more columns than `rowLimit`: missing ones count as unresolved.
        var complete = true
        /// For each view's column, what its definition computes it from (a view reports its own
        /// columns as a result's origin, so a rule on the base table must see through it).
        var views: [UInt32: [String: Projection]] = [:]
        /// Views (and materialized views) whose definitions were not read or did not parse.
        var untracedViews: Set<UInt32> = []
        /// Functions and operators defined outside the system schemas (`CatalogRoutines`).
        var routines = CatalogRoutines()

        /// `stale`: DDL went through the gate since this was read, so a view may not be what its
        /// definition here says: every view column counts as untraceable until the next read.
        func lookup(stale: Bool) -> CatalogLookup {
            var lookup = CatalogLookup(columns: { self.columns(of: $0) }, viewColumn: { table, column in
                guard let oid = self.byName[table], let relation = self.relations[oid], relation.isView else { return nil }
                if stale || self.untracedViews.contains(oid) { return .unknown }
                return self.views[oid]?[column] ?? .unknown
            })
            lookup.knowsEveryRelation = true
            return lookup
        }

        func column(tableOID: UInt32, attribute: Int16) -> (TableName, String)? {
            guard let r = relations[tableOID], let c = r.columns[attribute] else { return nil }
            return (r.table, c)
        }

        func columns(of table: TableName) -> [String]? {
            byName[table].flatMap { relations[$0]?.ordered }
        }
    }

    static let maxAge = TimeAmount.minutes(5)
    static let rowLimit = 500_000
    /// Every schema but TOAST's: pg_catalog and information_schema too, so that psql's `\d` and
    /// similar tools keep working under column rules.
    static let viewLimit = 20_000
    /// Two result sets: every column (six fields a row), then the definitions of the views
    /// outside the system schemas (two fields a row). Read with pg_catalog alone on the search
    /// path (for this implicit transaction only), so that pg_get_viewdef qualifies every other
    /// name whatever path the client asked for.
    static let query = """
        SET LOCAL search_path = pg_catalog; \
        SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname, c.relkind FROM pg_catalog.pg_class c \
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
        WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND a.attnum > 0 AND NOT a.attisdropped \
        AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY c.oid, a.attnum LIMIT \(rowLimit + 1); \
        SELECT c.oid, pg_catalog.pg_get_viewdef(c.oid) FROM pg_catalog.pg_class c \
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
        WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') LIMIT \(viewLimit + 1); \
        \(CatalogRoutines.query)
        """

    let state = NIOLockedValueBox<(snapshot: Snapshot?, loadedAt: NIODeadline, stale: Bool)>((nil, .distantPast, true))
    /// Changes with every stored snapshot, so sessions know when to drop what they derived from
    /// it; read on every request, so without the lock.
    let generationCounter = Atomic<Int>(0)
    /// The refresh in flight, which sessions share (CatalogRefresh).
    let refresh = CatalogRefresh()

    var snapshot: Snapshot? { state.withLockedValue { $0.snapshot } }
    var generation: Int { generationCounter.load(ordering: .acquiring) }

    var isStale: Bool { state.withLockedValue { $0.stale } }

    var needsLoad: Bool {
        state.withLockedValue { $0.stale || $0.snapshot == nil || NIODeadline.now() - $0.loadedAt > CatalogCache.maxAge }
    }

    func markStale() { state.withLockedValue { $0.stale = true } }

    func store(_ snapshot: Snapshot) {
        state.withLockedValue { $0 = (snapshot, .now(), false) }
        generationCounter.add(1, ordering: .releasing)
    }

    /// Collects the catalog query's rows (text format: oid, schema, table, attnum, column).
    struct Loader {
        var snapshot = Snapshot()
        var rows = 0
        var definitions: [(UInt32, String)] = []

        mutating func add(_ row: [ByteBuffer?]) {
            if row.count == 3 {
                snapshot.routines.add(row.map { $0.map { String(buffer: $0) } })
                return
            }
            if row.count == 2 {
                guard let oid = row[0].flatMap({ UInt32(String(buffer: $0)) }), let text = row[1].map({ String(buffer: $0) }) else { return }
                if definitions.count < CatalogCache.viewLimit { definitions.append((oid, text)) } else { snapshot.complete = false }
                return
            }
            rows += 1
            guard rows <= CatalogCache.rowLimit else { snapshot.complete = false; return }
            guard row.count == 6, let oid = row[0].flatMap({ UInt32(String(buffer: $0)) }),
                  let schema = row[1].map({ String(buffer: $0) }), let table = row[2].map({ String(buffer: $0) }),
                  let attnum = row[3].flatMap({ Int16(String(buffer: $0)) }), let column = row[4].map({ String(buffer: $0) })
            else { return }
            let name = TableName(schema: schema, name: table)
            if snapshot.relations[oid] == nil {
                let kind = row[5].map { String(buffer: $0) }
                snapshot.relations[oid] = Relation(table: name, isView: kind == "v" || kind == "m", columns: [:], ordered: [])
                snapshot.byName[name] = oid
                snapshot.schemasOf[table, default: []].insert(schema)
            }
            snapshot.relations[oid]!.columns[attnum] = column
            snapshot.relations[oid]!.ordered.append(column)
        }

        /// The snapshot, with each view's columns traced through its definition (parsed with
        /// PostgreSQL's own parser). A view whose definition does not parse counts every column
        /// it selects for each of its columns.
        mutating func finish() -> Snapshot {
            for (oid, relation) in snapshot.relations where relation.isView { snapshot.untracedViews.insert(oid) }
            for (oid, definition) in definitions {
                guard let view = snapshot.relations[oid],
                      let facts = (try? SQLInspector.statementFacts(definition, searchPath: ["pg_catalog"]))?.first else { continue }
                snapshot.untracedViews.remove(oid)
                let relations = facts.relations.map { TableName(schema: resolve($0), name: $0.name) }
                var aliases: [String: TableName] = [:]
                for (alias, r) in facts.aliases { aliases[alias] = TableName(schema: resolve(r), name: r.name) }
                var columns: [String: Projection] = [:]
                for (i, column) in view.ordered.enumerated() {
                    let refs = facts.outputs.flatMap { $0.count == view.ordered.count ? $0[i] : nil } ?? facts.projections
                    columns[column] = Projection(references: refs, aliases: aliases, relations: relations, opaque: facts.opaqueResult,
                                                 renamed: Set(facts.renamedColumns), nestedStar: facts.nestedStar)
                }
                snapshot.views[oid] = columns
                snapshot.routines.addView(TableName(schema: view.table.schema, name: view.table.name), facts: facts, resolve: resolve)
            }
            snapshot.routines.closeViews()
            return snapshot
        }

        /// With only pg_catalog on the path, pg_get_viewdef qualifies every name outside it.
        func resolve(_ r: RelationAccess) -> String {
            r.schemaWasWritten ? r.schema : "pg_catalog"
        }
    }
}
