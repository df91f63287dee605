/// One header field line as received: the name keeps its case for forwarding, comparisons
/// ignore it (RFC 9110 §5.1).
public struct HTTPField: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) { self.name = name; self.value = value }

    /// The name lowercased, for comparisons: field names are ASCII tokens, so this is exact.
    public var canonicalName: String { name.lowercased() }
}

extension Array where Element == HTTPField {
    /// Every value of the fields named `name`, in order.
    public func values(_ name: String) -> [String] {
        let n = name.lowercased()
        return filter { $0.canonicalName == n }.map(\.value)
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
