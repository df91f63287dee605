import CaptureFormat

/// Compares two captures exchange by exchange, streaming both: each side is read one exchange at
/// a time (`ExchangeStream`), and at most `window` unmatched exchanges per side are held.
///
/// Alignment: exchanges are paired in order while their statement fingerprints agree. Where
/// they do not, an exchange whose fingerprint does not occur in the other side's window is
/// reported as only on its side; when both fronts occur in the other window (requests crossed
/// or repeated), the longest common subsequence of fingerprints over the two windows decides
/// which exchanges are extra. An extra or missing stretch longer than the window is reported as
/// such, not realigned past it.
public struct SessionDiff: Sendable {
    public var comparer: ExchangeComparer
    /// Unmatched exchanges held per side: the bound on memory and on how far alignment looks.
    public var window: Int
    /// Compare only exchanges the gate forwarded (a replay holds no denied request).
    public var forwardedOnly: Bool

    public static let defaultWindow = 256

    public init(comparer: ExchangeComparer = ExchangeComparer(), window: Int = SessionDiff.defaultWindow, forwardedOnly: Bool = false) {
        self.comparer = comparer; self.window = max(1, window); self.forwardedOnly = forwardedOnly
    }

    struct Side {
        var stream: ExchangeStream
        /// `hash`: the key's hash, compared first (alignment compares keys many times).
        var buffer: [(exchange: Exchange, place: ExchangePlace, key: String, hash: Int)] = []
        var head = 0
        var count = 0
        var ended = false

        var pending: Int { buffer.count - head }
        func at(_ i: Int) -> (exchange: Exchange, place: ExchangePlace, key: String, hash: Int) { buffer[head + i] }

        mutating func fill(_ window: Int, forwardedOnly: Bool) {
            while pending < window, !ended {
                guard let x = stream.next() else { ended = true; break }
                guard x.request != nil, !forwardedOnly || x.forwarded else { continue }
                count += 1
                let key = ExchangeComparer.key(x)
                buffer.append((x, ExchangePlace(index: count, exchange: x.id, sequence: x.requestSequence ?? 0), key, key.hashValue))
            }
        }

        mutating func pop() -> (exchange: Exchange, place: ExchangePlace, key: String, hash: Int) {
            let e = buffer[head]
            head += 1
            if head > 1024 && head * 2 > buffer.count {  // drop the consumed prefix now and then
                buffer.removeFirst(head)
                head = 0
            }
            return e
        }
    }

    /// Runs the comparison: `report` gets each difference as it is found, `progress` the number
    /// of exchanges read so far (every 10,000). Damage in either capture stops that side's
    /// reading (see each stream's `damage`); what was read before it is compared.
    public func run(_ a: inout ExchangeStream, _ b: inout ExchangeStream, progress: (Int) -> Void = { _ in },
                    report: (Difference) -> Void) -> DiffTotals {
        var totals = DiffTotals()
        var sa = Side(stream: a), sb = Side(stream: b)
        defer { a = sa.stream; b = sb.stream }
        var lastProgress = 0
        func emit(_ d: Difference) {
            totals.counts[d.kind, default: 0] += 1
            report(d)
        }
        func onlyIn(_ kind: DifferenceKind, _ e: (exchange: Exchange, place: ExchangePlace, key: String, hash: Int)) {
            emit(Difference(kind: kind, a: kind == .onlyInA ? e.place : nil, b: kind == .onlyInB ? e.place : nil,
                            statement: ExchangeComparer.label(e.exchange), detail: kind == .onlyInA ? "only in A" : "only in B",
                            removed: kind == .onlyInA ? ["request: " + ExchangeComparer.label(e.exchange)] : [],
                            added: kind == .onlyInB ? ["request: " + ExchangeComparer.label(e.exchange)] : []))
        }
        while true {
            sa.fill(window, forwardedOnly: forwardedOnly)
            sb.fill(window, forwardedOnly: forwardedOnly)
            if sa.count + sb.count - lastProgress >= 10_000 { lastProgress = sa.count + sb.count; progress(lastProgress) }
            if sa.pending == 0 && sb.pending == 0 { break }
            if sa.pending == 0 { onlyIn(.onlyInB, sb.pop()); continue }
            if sb.pending == 0 { onlyIn(.onlyInA, sa.pop()); continue }
            if sa.at(0).key == sb.at(0).key {
                let x = sa.pop(), y = sb.pop()
                totals.paired += 1
                if x.exchange.requestAltered || y.exchange.requestAltered { totals.alteredRequests += 1 }
                for d in comparer.compare(x.exchange, y.exchange, at: x.place, y.place, notCompared: &totals.notCompared) { emit(d) }
                continue
            }
            let keyA = sa.at(0).key, keyB = sb.at(0).key, hashA = sa.at(0).hash, hashB = sb.at(0).hash
            let aInB = (0..<sb.pending).contains { sb.at($0).hash == hashA && sb.at($0).key == keyA }
            let bInA = (0..<sa.pending).contains { sa.at($0).hash == hashB && sa.at($0).key == keyB }
            if !aInB { onlyIn(.onlyInA, sa.pop()); continue }
            if !bInA { onlyIn(.onlyInB, sb.pop()); continue }
            // Both fronts occur further on the other side: the LCS says which side has the extras.
            // Over the keys' hashes: a collision (64 bits) could only misplace an only-in, never pair
            // two different requests (a pair needs equal keys at the fronts, checked above).
            let (i, j) = Self.firstLCSPair((0..<sa.pending).map { sa.at($0).hash }, (0..<sb.pending).map { sb.at($0).hash })
            if i == 0 && j == 0 { onlyIn(.onlyInA, sa.pop()); continue }  // a hash collision at the fronts
            for _ in 0..<i { onlyIn(.onlyInA, sa.pop()) }
            for _ in 0..<j { onlyIn(.onlyInB, sb.pop()) }
        }
        totals.exchangesA = sa.count
        totals.exchangesB = sb.count
        return totals
    }

    /// The first pair of positions of a longest common subsequence of `a` and `b` (both fronts
    /// occur in the other, so there is one).
    static func firstLCSPair(_ a: [Int], _ b: [Int]) -> (Int, Int) {
        let n = a.count, m = b.count
        // Suffix lengths: l[i][j] = LCS of a[i...] and b[j...], row-major in one array.
        var l = [Int32](repeating: 0, count: (n + 1) * (m + 1))
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                l[i * (m + 1) + j] = a[i] == b[j] ? l[(i + 1) * (m + 1) + j + 1] + 1
                    : max(l[(i + 1) * (m + 1) + j], l[i * (m + 1) + j + 1])
            }
        }
        var i = 0, j = 0
        while i < n, j < m {
            if a[i] == b[j] { return (i, j) }
            if l[(i + 1) * (m + 1) + j] >= l[i * (m + 1) + j + 1] { i += 1 } else { j += 1 }
        }
        return (n, m)
    }
}
