import CaptureFormat
import Masking
import Policy

/// The `policies:` section: YAML to `PolicySet`, with line-numbered errors.
enum PolicyConfig {
    /// The policies, and the upstream credentials those that name some give (by policy name).
    static func parse(_ node: ConfigNode, targets: Set<String>,
                      credentials parseCredentials: (ConfigNode) throws -> TargetConfig.Credentials) throws -> (PolicySet, [String: TargetConfig.Credentials]) {
        guard case .sequence(let items) = node.node else { throw node.error("expected a list of policies") }
        var policies: [Policy] = []
        var credentials: [String: TargetConfig.Credentials] = [:]
        var names = Set<String>()
        for (i, item) in items.enumerated() {
            let entry = ConfigNode(node: item, path: "\(node.path)[\(i)]", file: node.file)
            let f = try entry.fields(["name", "who", "target", "targets", "rules", "masks", "unknown_functions", "credentials", "kubernetes_secrets"])
            guard let name = try f["name"]?.string(), !name.isEmpty else { throw entry.error("missing 'name'") }
            guard names.insert(name).inserted else { throw entry.error("duplicate policy name '\(name)'") }
            var groups: [String] = [], subjects: [String] = []
            if let who = f["who"] {
                let w = try who.fields(["groups", "subjects"])
                groups = try w["groups"]?.strings() ?? []
                subjects = try w["subjects"]?.strings() ?? []
            }
            if groups.isEmpty && subjects.isEmpty { throw entry.error("policy '\(name)' needs 'who' with groups or subjects") }
            var covered: [String] = []
            if let t = f["target"] { covered = [try t.string()] }
            if let t = f["targets"] { covered += try t.strings() }
            for t in covered where !targets.contains(t) {
                throw (f["target"] ?? f["targets"] ?? entry).error("unknown target '\(t)'")
            }
            guard let rulesNode = f["rules"], case .sequence(let ruleItems) = rulesNode.node, !ruleItems.isEmpty else {
                throw entry.error("policy '\(name)' needs a non-empty list of 'rules'")
            }
            var rules: [Rule] = []
            var ruleNames = Set<String>()
            for (j, r) in ruleItems.enumerated() {
                let rn = ConfigNode(node: r, path: "\(rulesNode.path)[\(j)]", file: node.file)
                let rule = try parseRule(rn, index: j + 1)
                guard ruleNames.insert(rule.name).inserted else { throw rn.error("duplicate rule name '\(rule.name)'") }
                rules.append(rule)
            }
            let masks = try f["masks"].map(MaskConfig.parse) ?? []
            let choices = Dictionary(uniqueKeysWithValues: UnknownFunctions.allCases.map { ($0.rawValue, $0) })
            let unknown: UnknownFunctions = try f["unknown_functions"].map { try $0.oneOf(choices) } ?? .write
            let secrets = try f["kubernetes_secrets"].map { try $0.oneOf(["mask": KubernetesSecrets.mask, "reveal": .reveal]) } ?? .mask
            let policy = Policy(name: name, groups: groups, subjects: subjects, targets: covered, rules: rules, masks: masks,
                                unknownFunctions: unknown, kubernetesSecrets: secrets)
            if unknown == .review && policy.reviewApproval == nil {
                throw f["unknown_functions"]!.error("unknown_functions: review needs a review rule with approvers in this policy")
            }
            if let credNode = f["credentials"] {
                let named = try parseCredentials(credNode)
                // Two policies that name different accounts and certainly apply to the same people on
                // the same target: every such session would be refused, so the file is.
                for other in policies {
                    guard let theirs = credentials[other.name], !theirs.isSameAccount(as: named),
                          other.targets.isEmpty || covered.isEmpty || !Set(other.targets).isDisjoint(with: covered),
                          !Set(other.groups).isDisjoint(with: groups) || !Set(other.subjects).isDisjoint(with: subjects) else { continue }
                    throw credNode.error("policy '\(name)' names database account \(named.user), but policy '\(other.name)' names \(theirs.user) "
                                         + "for the same people and target: a session cannot log in as both")
                }
                credentials[name] = named
            }
            policies.append(policy)
        }
        return (PolicySet(policies: policies), credentials)
    }

    static func parseRule(_ node: ConfigNode, index: Int) throws -> Rule {
        let f = try node.fields(["name", "when", "then", "approvers", "approvals", "timeout", "grant", "message"])
        guard let then = try f["then"]?.oneOf(["allow": Action.allow, "deny": .deny, "review": .review]) else {
            throw node.error("missing 'then' (allow, deny or review)")
        }
        var condition = Condition()
        if let when = f["when"] {
            let w = try when.fields(Set(["statement", "schemas", "tables", "functions", "any_tables", "any_functions", "writes", "path"]
                                        + RequestAttribute.allCases.map(\.key)))
            var paths: [String]?
            if let p = w["path"] {
                paths = try p.strings()
                for path in paths! where PostgresRequest.Path(name: path) == nil {
                    throw p.error("unknown path '\(path)' (\(PostgresRequest.Path.allCases.map(\.name).joined(separator: ", ")))")
                }
            }
            // Through the initializer, which folds the name patterns (one place for that).
            condition = Condition(statements: try w["statement"]?.strings().map { $0.lowercased() },
                                  schemas: try w["schemas"]?.strings(), tables: try w["tables"]?.strings(),
                                  functions: try w["functions"]?.strings(), anyTables: try w["any_tables"]?.strings(),
                                  anyFunctions: try w["any_functions"]?.strings(), writes: try w["writes"]?.bool(), paths: paths)
            // HTTP and Kubernetes attributes: a string or a list of globs each.
            for attribute in RequestAttribute.allCases {
                guard let node = w[attribute.key] else { continue }
                let patterns = try node.strings()
                if patterns.isEmpty || patterns.contains(where: \.isEmpty) { throw node.error("\(attribute.key): expected one or more non-empty names") }
                if let problem = patterns.lazy.compactMap(attribute.problem(with:)).first { throw node.error("\(attribute.key): \(problem)") }
                condition.attributes[attribute] = patterns
            }
        }
        let approvers = try f["approvers"]?.strings() ?? []
        if then == .review && approvers.isEmpty {
            throw node.error("a review rule needs 'approvers' (the groups that may approve)")
        }
        if then != .review, let key = ["approvals", "timeout", "grant"].first(where: { f[$0] != nil }) {
            throw f[key]!.errorAtKey("'\(key)' applies to review rules only")
        }
        var approval: ApprovalRequirement?
        if then == .review {
            approval = ApprovalRequirement(anyOf: approvers)
            if let n = f["approvals"] {
                // A number of distinct approvers from any of the groups, or one from each group.
                if (try? n.string()) == "each-group" {
                    approval!.clauses = approvers.map { ApprovalRequirement.Clause(groups: [$0]) }
                } else {
                    guard let count = try? n.int(in: 1...20) else {
                        throw n.error("approvals: expected a number of distinct approvers (1 to 20) or 'each-group'")
                    }
                    approval!.clauses[0].count = count
                }
            }
            if let t = f["timeout"] {
                approval!.timeout = try t.duration()
                if approval!.timeout < .seconds(1) || approval!.timeout > .seconds(7 * 86400) { throw t.error("timeout: between 1s and 7 days") }
            }
            if let g = f["grant"] {
                approval!.grant = try g.duration()
                if approval!.grant! < .seconds(1) || approval!.grant! > .seconds(86400) { throw g.error("grant: between 1s and 24h") }
            }
        }
        return Rule(name: try f["name"]?.string() ?? "rule-\(index)", when: condition, then: then,
                    approval: approval, message: try f["message"]?.string() ?? "")
    }
}

/// A `masks:` list (in a policy or a target): detector names, `{column: GLOB}` and
/// `{regex: RE, name: NAME}`. Each entry is compiled here, so a bad one fails the load with its line.
enum MaskConfig {
    static func parse(_ node: ConfigNode) throws -> [MaskSpec] {
        guard case .sequence(let items) = node.node else { throw node.error("expected a list of masks") }
        var specs: [MaskSpec] = []
        for (i, item) in items.enumerated() {
            let entry = ConfigNode(node: item, path: "\(node.path)[\(i)]", file: node.file)
            let spec: MaskSpec
            if case .scalar = item {
                spec = .detector(try entry.string())
            } else {
                let f = try entry.fields(["column", "regex", "name", "json_field"])
                if let field = f["json_field"] {
                    if f.count > 1 { throw entry.error("a mask is one of {column: …}, {json_field: …} or {regex: …, name: …}") }
                    spec = .jsonField(try field.string())
                } else if let column = f["column"] {
                    if f["regex"] != nil || f["name"] != nil { throw entry.error("a mask is either {column: …} or {regex: …, name: …}") }
                    spec = .column(try column.string())
                } else if let regex = f["regex"] {
                    guard let name = try f["name"]?.string() else {
                        throw entry.error("a regex mask needs a 'name' (it is shown in the mask and recorded)")
                    }
                    guard !name.isEmpty, name.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) }) else {
                        throw f["name"]!.error("mask name '\(name)' must be lowercase letters, digits and '_'")
                    }
                    spec = .pattern(name: name, regex: try regex.string())
                } else {
                    throw entry.error("expected a detector name, {column: GLOB}, {json_field: GLOB} or {regex: RE, name: NAME}")
                }
            }
            do {
                _ = try Masker(specs: [spec])
            } catch {
                throw entry.error("\(error)")
            }
            if !specs.contains(spec) { specs.append(spec) }
        }
        return specs
    }
}
