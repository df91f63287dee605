import CaptureFormat
import Policy

/// What admitting a request decided, valid for one policy generation and one state of the
/// session's inspection (for SQL: its search path, its prepared statements, the catalog).
/// A class: fetched for every request of a repeated statement, where one retain beats a copy of each field.
final class Admission {
    let decision: Decision
    let approval: ApprovalRequirement?
    let recordedText: String
    /// Whether `recordedText` is masked or withheld (format 1.4's statement flags).
    let recordedTextFlags: ValueFlags
    let annotation: Annotation?
    let policyGeneration: Int
    let inspectionGeneration: Int

    init(decision: Decision, approval: ApprovalRequirement?, recordedText: (text: String, flags: ValueFlags), annotation: Annotation?,
         policyGeneration: Int, inspectionGeneration: Int) {
        self.decision = decision; self.approval = approval; self.recordedText = recordedText.text
        self.recordedTextFlags = recordedText.flags; self.annotation = annotation
        self.policyGeneration = policyGeneration; self.inspectionGeneration = inspectionGeneration
    }
}

/// Admissions by request text, so that a repeated statement (a prepared statement's every Parse
/// and Execute) is decided, masked for the record and scanned for annotations once per policy
/// and session state, not every time.
struct Admissions {
    struct Key: Hashable {
        var text: String
        var path: PostgresRequest.Path
    }

    static let capacity = 1024
    var entries: [Key: Admission] = [:]

    /// Requests whose decision depends only on their text: PostgreSQL's. (An HTTP request's
    /// headers and body count too: it is decided each time.)
    static func key(_ request: Request) -> Key? {
        guard case .postgres(let p) = request else { return nil }
        return Key(text: p.text, path: p.path)
    }

    func valid(_ key: Key?, policy: Int, inspection: Int) -> Admission? {
        guard let key, let cached = entries[key], cached.policyGeneration == policy, cached.inspectionGeneration == inspection else { return nil }
        return cached
    }

    mutating func keep(_ admission: Admission, for key: Key?) {
        guard let key else { return }
        if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
        entries[key] = admission
    }
}
