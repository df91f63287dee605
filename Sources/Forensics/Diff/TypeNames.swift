/// PostgreSQL's built-in type names by OID (pg_type.dat), for showing column types; an OID of
/// the database's own types (16384 and up) is shown as `oid N`.
enum TypeNames {
    static func name(_ oid: UInt32) -> String { SQLScript.typeNames[oid] ?? extra[oid] ?? "oid \(oid)" }

    static let extra: [UInt32: String] = [
        18: "char", 19: "name", 26: "oid", 142: "xml", 1042: "bpchar", 1083: "time", 1266: "timetz", 869: "inet", 650: "cidr",
        1009: "text[]", 1007: "int4[]", 1016: "int8[]", 2249: "record", 705: "unknown",
    ]
}
