// The event model: decisions and approvals (field tags are file format).

public struct Decision: Sendable, Equatable, WireMessage {
    public enum Action: UInt8, Sendable, CaseIterable {
        case allow = 1, deny = 2, review = 3
        public var name: String { switch self { case .allow: "allow"; case .deny: "deny"; case .review: "review" } }

        /// Deny beats review beats allow.
        var strictness: Int {
            switch self {
            case .allow: 0
            case .review: 1
            case .deny: 2
            }
        }
    }
    public var action: Action
    public var policy: String
    public var rule: String
    public var reason: String
    /// Names of the masks the decision applies to the response.
    public var masks: [String]

    public init(action: Action, policy: String = "", rule: String = "", reason: String = "", masks: [String] = []) {
        self.action = action; self.policy = policy; self.rule = rule; self.reason = reason; self.masks = masks
    }

    public func encode(to w: inout WireWriter) {
        w.uint(1, UInt64(action.rawValue)); w.string(2, policy); w.string(3, rule)
        w.string(4, reason); w.strings(5, masks)
    }

    public init(wire r: inout WireReader) throws {
        self.init(action: .deny)
        while let (tag, t) = try r.nextField() {
            switch tag {
            // An action this reader does not know is read as deny: fail closed.
            case 1: action = Action(rawValue: UInt8(truncatingIfNeeded: try r.uint(t))) ?? .deny
            case 2: policy = try r.string(t)
            case 3: rule = try r.string(t)
            case 4: reason = try r.string(t)
            case 5: masks.append(try r.string(t))
            default: try r.skip(t)
            }
        }
    }
}

public struct Approval: Sendable, Equatable, WireMessage {
    /// Field 1 holds the four states of format 1.2 (`legacy`); 1.3 added `withdrawn`, `abandoned`
    /// and `reused`, written in field 6 beside their 1.2 reading in field 1, so that a 1.2
    /// reader (which skips field 6) reads what 1.2 writers recorded for them and its term
    /// filters and `verify` hold.
    public enum State: UInt8, Sendable, CaseIterable {
        case requested = 1, granted = 2, denied = 3, expired = 4
        /// The client cancelled or went away while it waited (1.3).
        case withdrawn = 5
        /// Still pending when the gate stopped (1.3).
        case abandoned = 6
        /// A live grant let it run without asking (1.3).
        case reused = 7
        public var name: String {
            switch self {
            case .requested: "requested"; case .granted: "granted"; case .denied: "denied"; case .expired: "expired"
            case .withdrawn: "withdrawn"; case .abandoned: "abandoned"; case .reused: "reused"
            }
        }
        /// What format 1.2 records for it (field 1): never run is expired, run under a grant is granted.
        public var legacy: State {
            switch self {
            case .withdrawn, .abandoned: .expired
            case .reused: .granted
            default: self
            }
        }
        /// Whether the held request ran.
        public var runs: Bool { self == .granted || self == .reused }
    }
    public var state: State
    public var approvalID: String
    /// The approver (for granted or denied); the grant's approvers (for reused).
    public var by: String
    public var reason: String
    /// Groups allowed to approve (for requested).
    public var approverGroups: [String]
    /// The grant opened (granted) or reused (reused); empty when none (1.3).
    public var grantID: String

    public init(state: State, approvalID: String, by: String = "", reason: String = "", approverGroups: [String] = [],
                grantID: String = "") {
        self.state = state; self.approvalID = approvalID; self.by = by; self.reason = reason; self.approverGroups = approverGroups
        self.grantID = grantID
    }

    public func encode(to w: inout WireWriter) {
        w.uint(1, UInt64(state.legacy.rawValue)); w.string(2, approvalID); w.string(3, by)
        w.string(4, reason); w.strings(5, approverGroups)
        if state != state.legacy { w.uint(6, UInt64(state.rawValue)) }
        w.string(7, grantID)
    }

    public init(wire r: inout WireReader) throws {
        self.init(state: .requested, approvalID: "")
        var refined: State?
        while let (tag, t) = try r.nextField() {
            switch tag {
            case 1: state = State(rawValue: UInt8(truncatingIfNeeded: try r.uint(t))) ?? .denied
            case 2: approvalID = try r.string(t)
            case 3: by = try r.string(t)
            case 4: reason = try r.string(t)
            case 5: approverGroups.append(try r.string(t))
            case 6: refined = State(rawValue: UInt8(truncatingIfNeeded: try r.uint(t)))
            case 7: grantID = try r.string(t)
            default: try r.skip(t)
            }
        }
        // A refinement counts only where it refines field 1 (a later state unknown here keeps field 1's reading).
        if let refined, refined.legacy == state { state = refined }
    }
}

extension Decision.Action: Comparable {
    /// By strictness: deny > review > allow (not by the stored code).
    public static func < (a: Decision.Action, b: Decision.Action) -> Bool { a.strictness < b.strictness }
}
