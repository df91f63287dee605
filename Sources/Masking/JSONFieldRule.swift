/// A JSON field-name mask rule (`{json_field: "*.password"}`): dot-separated globs matched against
/// the last keys of a member's path. The path of a member is the keys of the objects it sits in,
/// outermost first, then its own key; arrays add nothing (`items[3].password` is `items.password`).
/// `password` matches a member named `password` at any depth; `user.password` one inside a member
/// `user`; `*.password` one inside any member (not at the top level). `*` matches any run of
/// characters within one key, `?` one character. Keys are compared as decoded (`"p\u0061ss"` is `pass`),
/// case-sensitively. A key containing a `.` cannot be named (a glob segment never matches a dot).
public struct JSONFieldRule: Sendable, Hashable {
    public let pattern: String
    let segments: [[UInt8]]

    /// Nil when the pattern is empty or has an empty segment (`a..b`, `.a`).
    public init?(_ pattern: String) {
        let parts = pattern.split(separator: ".", omittingEmptySubsequences: false)
        guard !pattern.isEmpty, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        self.pattern = pattern
        segments = parts.map { Array($0.utf8) }
    }

    /// Whether a member whose path (outermost key first, its own key last) is `path` is masked.
    public func matches(_ path: [String]) -> Bool {
        guard path.count >= segments.count else { return false }
        for (segment, key) in zip(segments, path.suffix(segments.count)) where !Self.glob(segment[...], Array(key.utf8)[...]) {
            return false
        }
        return true
    }

    static func glob(_ p: ArraySlice<UInt8>, _ s: ArraySlice<UInt8>) -> Bool {
        guard let first = p.first else { return s.isEmpty }
        switch first {
        case UInt8(ascii: "*"):
            // A `*` never crosses a dot: keys hold no path separator, but a key may contain one.
            var rest = s[...]
            while true {
                if glob(p.dropFirst(), rest) { return true }
                guard let c = rest.first, c != UInt8(ascii: ".") else { return false }
                rest = rest.dropFirst()
            }
        case UInt8(ascii: "?"):
            guard let c = s.first, c != UInt8(ascii: ".") else { return false }
            return glob(p.dropFirst(), s.dropFirst())
        default:
            guard s.first == first else { return false }
            return glob(p.dropFirst(), s.dropFirst())
        }
    }
}
