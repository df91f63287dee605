/// A side of a session the gate reads from.
public enum ReadingSide: Sendable, Equatable { case client, upstream }

/// Why the gate stopped reading from each side. Reasons are kept apart, so that one lifting
/// (the recorder caught up) cannot resume what another still holds (a request waits for an
/// approver, the client stopped reading).
public struct ReadingPauses: Sendable, Equatable {
    public struct Reasons: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// The other side does not take what is read (its socket buffer is full).
        public static let peerSlow = Reasons(rawValue: 1 << 0)
        /// The session's capture writer has fallen behind.
        public static let recorderBacklog = Reasons(rawValue: 1 << 1)
        /// A request waits for an approver; what follows it waits too.
        public static let held = Reasons(rawValue: 1 << 2)
        /// A request waits for its record to be durable before it is forwarded.
        public static let awaitingRecord = Reasons(rawValue: 1 << 3)
    }

    public private(set) var client: Reasons = []
    public private(set) var upstream: Reasons = []

    public init() {}

    public func reads(_ side: ReadingSide) -> Bool { side == .client ? client.isEmpty : upstream.isEmpty }

    /// Adds a reason; true when reading stops because of it.
    mutating func pause(_ side: ReadingSide, _ reason: Reasons) -> Bool {
        let was = reads(side)
        if side == .client { client.insert(reason) } else { upstream.insert(reason) }
        return was && !reads(side)
    }

    /// Removes a reason; true when reading resumes because no other holds it.
    mutating func resume(_ side: ReadingSide, _ reason: Reasons) -> Bool {
        let was = reads(side)
        if side == .client { client.remove(reason) } else { upstream.remove(reason) }
        return !was && reads(side)
    }
}
