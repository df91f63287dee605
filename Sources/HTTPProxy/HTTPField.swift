/// One header field line as received: the name keeps its case for forwarding, comparisons
/// ignore it (RFC 9110 §5.1).
public struct HTTPField: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }

    /// The name lowercased, for comparisons: field names are ASCII tokens, so this is exact.
    public var canonicalName: String { name.lowercased() }

    /// `canonicalName == lowercased` without building the lowercased name: fields are looked up
    /// by name many times per request (issue 20). An ASCII name is compared byte by byte, ASCII
    /// letters folded, which is what `lowercased()` does to it; any other takes `lowercased()`.
    public func hasName(_ lowercased: String) -> Bool {
        hasName(lowercased, prefix: false)
    }

    /// `canonicalName.hasPrefix(lowercased)`, in the same way.
    public func hasNamePrefix(_ lowercased: String) -> Bool {
        hasName(lowercased, prefix: true)
    }

    private func hasName(_ lowercased: String, prefix: Bool) -> Bool {
        let a = name.utf8, b = lowercased.utf8
        guard !a.contains(where: { $0 >= 0x80 }) else {
            return prefix ? canonicalName.hasPrefix(lowercased) : canonicalName == lowercased
        }
        guard prefix ? a.count >= b.count : a.count == b.count else { return false }
        return zip(a, b).allSatisfy { x, y in (x &- 0x41 < 26 ? x | 0x20 : x) == y }
    }
}

extension Array where Element == HTTPField {
    /// Every value of the fields named `name`, in order.
    public func values(_ name: String) -> [String] {
        // The names looked up are lowercase literals: lowercased again only if not.
        let n = name.utf8.allSatisfy({ $0 < 0x80 && $0 &- 0x41 >= 26 }) ? name : name.lowercased()
        var found: [String] = []
        for field in self where field.hasName(n) { found.append(field.value) }
        return found
    }

    /// The comma-separated list elements of every field named `name` (RFC 9110 §5.6.1), trimmed,
    /// empty elements dropped.
    public func listElements(_ name: String) -> [String] {
        values(name).flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .map { $0.trimmingOWS() }
            .filter { !$0.isEmpty }
    }
}

extension StringProtocol {
    /// Trims optional whitespace (SP and HTAB, RFC 9110 §5.6.3), nothing else.
    func trimmingOWS() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}
