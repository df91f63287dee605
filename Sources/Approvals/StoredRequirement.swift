import Foundation
import Policy

/// An approval requirement as the store writes it (JSON in one column): the clauses, the timeout
/// and the grant in milliseconds, so that the rule in force when the request was held is kept
/// even after the policy changes.
struct StoredRequirement: Codable {
    struct Clause: Codable {
        var groups: [String]
        var count: Int
    }
    var clauses: [Clause]
    var timeoutMilliseconds: Int64
    var grantMilliseconds: Int64?

    init(_ r: ApprovalRequirement) {
        clauses = r.clauses.map { Clause(groups: $0.groups, count: $0.count) }
        timeoutMilliseconds = Self.milliseconds(r.timeout)
        grantMilliseconds = r.grant.map(Self.milliseconds)
    }

    var requirement: ApprovalRequirement {
        ApprovalRequirement(clauses: clauses.map { ApprovalRequirement.Clause(groups: $0.groups, count: $0.count) },
                            timeout: .milliseconds(timeoutMilliseconds), grant: grantMilliseconds.map { .milliseconds($0) })
    }

    static func milliseconds(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        return s * 1000 + atto / 1_000_000_000_000_000
    }
}

/// JSON text for a column and back; sorted keys so the same value always reads the same.
enum ColumnJSON {
    static func text<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Arrays of strings and plain structs: encoding cannot fail.
        return String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    static func value<T: Decodable>(_ type: T.Type, _ text: String, column: String) throws(ApprovalStoreError) -> T {
        do { return try JSONDecoder().decode(type, from: Data(text.utf8)) } catch {
            throw ApprovalStoreError(.notAStore, "approvals store: column \(column) holds \(text.prefix(60).debugDescription), not the expected JSON")
        }
    }
}
