/// What inspection tells masking about column lineage beyond the column references themselves.
///
/// Column rules follow a computed result column to the columns it is computed from by name.
/// Two constructs give a value a name that is not its column's, or none at all, and are
/// therefore reported so that masking can assume the worst of them:
/// - alias and CTE column lists (`StatementFacts.renamedColumns`): `pii.users u(i, n, e, c)`
///   makes `c` (or any other name, even `name`) stand for whichever column is in that position;
/// - a `*` outside the top-level select list (`StatementFacts.nestedStar`): its columns reach a
///   computed value or a UNION without a reference naming them.
/// A CTE's or subquery's whole row (`WITH t AS (TABLE x) SELECT t::text FROM t`) then needs
/// nothing more: it carries what its own select list carries, explicit references (all counted
/// once a statement has a subquery or CTE) or a `*` (nested).
public enum ColumnLineage {
    /// The bare `*` entries directly in a plain SELECT's own select list: the protocol reports
    /// the origin of each column they expand to. A set operation's arms do not count.
    static func directStars(_ select: JSONObject) -> Int {
        guard (select["op"]?.string ?? "SETOP_NONE") == "SETOP_NONE" else { return 0 }
        var count = 0
        for entry in select["targetList"]?.array ?? [] {
            guard let (name, target) = Walker.node(entry), name == "ResTarget",
                  let (valName, ref) = Walker.node(target["val"]), valName == "ColumnRef",
                  let fields = ref["fields"]?.array, fields.count == 1,
                  Walker.node(fields[0])?.0 == "A_Star" else { continue }
            count += 1
        }
        return count
    }
}
