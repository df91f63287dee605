/// What a `review` needs before the held request may run: approvers from named groups, how many,
/// how long the request waits, and whether an approval opens a window (a grant) for the same
/// statement. Pure data and pure checks: the approvals service holds the state.
public struct ApprovalRequirement: Sendable, Hashable, CustomStringConvertible {
    /// `count` distinct approvers, each a member of any of `groups`.
    public struct Clause: Sendable, Hashable {
        public var groups: [String]
        public var count: Int
        public init(groups: [String], count: Int = 1) { self.groups = groups; self.count = count }
    }

    /// Every clause must hold, each approver counted in one clause only: "one from each of dba
    /// and security" takes two people, even if one of them is in both groups.
    public var clauses: [Clause]
    /// How long the request waits before it is refused as not approved in time.
    public var timeout: Duration
    /// After an approval, the same subject may run the same statement on the same target for this long without asking again.
    public var grant: Duration?

    public static let defaultTimeout: Duration = .seconds(300)

    public init(clauses: [Clause], timeout: Duration = ApprovalRequirement.defaultTimeout, grant: Duration? = nil) {
        self.clauses = clauses; self.timeout = timeout; self.grant = grant
    }

    /// One approver from any of `groups`.
    public init(anyOf groups: [String], count: Int = 1, timeout: Duration = ApprovalRequirement.defaultTimeout, grant: Duration? = nil) {
        self.init(clauses: [Clause(groups: groups, count: count)], timeout: timeout, grant: grant)
    }

    /// Every group named, in order, without repeats.
    public var groups: [String] {
        var out: [String] = []
        for c in clauses { for g in c.groups where !out.contains(g) { out.append(g) } }
        return out
    }

    /// How many approvals it takes in all.
    public var approvalsNeeded: Int { clauses.reduce(0) { $0 + $1.count } }

    /// Both requirements at once: a request with two held statements needs what each needs; it
    /// waits no longer than the shorter timeout, and opens a grant only if both do (the shorter).
    public func merged(with other: ApprovalRequirement) -> ApprovalRequirement {
        var clauses = self.clauses
        for c in other.clauses where !clauses.contains(c) { clauses.append(c) }
        let grant: Duration? = if let a = self.grant, let b = other.grant { min(a, b) } else { nil }
        return ApprovalRequirement(clauses: clauses, timeout: min(timeout, other.timeout), grant: grant)
    }

    /// Whether `approver` may take part at all: a member of a group some clause names.
    public func admits(_ approver: Principal) -> Bool {
        clauses.contains { c in c.groups.contains { approver.groups.contains($0) } }
    }

    /// Whether these distinct approvers satisfy every clause, each counted in one clause only.
    public func isSatisfied(by approvers: [Principal]) -> Bool {
        // Seats: one per approval a clause needs; each approver takes at most one seat (bipartite
        // matching by augmenting paths; a handful of seats and people).
        let seats = clauses.flatMap { c in Array(repeating: c.groups, count: c.count) }
        var seatHolder = [Int?](repeating: nil, count: seats.count)
        func place(_ person: Int, _ visited: inout [Bool]) -> Bool {
            for (s, groups) in seats.enumerated() where !visited[s] && groups.contains(where: { approvers[person].groups.contains($0) }) {
                visited[s] = true
                if seatHolder[s] == nil || place(seatHolder[s]!, &visited) {
                    seatHolder[s] = person
                    return true
                }
            }
            return false
        }
        for person in approvers.indices {
            var visited = [Bool](repeating: false, count: seats.count)
            _ = place(person, &visited)
        }
        return !seatHolder.contains(nil)
    }

    public var description: String {
        clauses.map { "\($0.count) of \($0.groups.joined(separator: "/"))" }.joined(separator: " and ")
    }
}
