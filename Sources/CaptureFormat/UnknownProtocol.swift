/// A request or response of a protocol this reader does not know (a newer writer's MySQL, SSH,
/// MCP…): its tag and its bytes, kept as they were so that the event re-encodes unchanged.
/// The spec's promise is that older readers step over what they do not know; the rest of the
/// event (time, exchange, sequence) and of the capture reads as before.
public struct UnknownProtocol: Sendable, Equatable, Hashable {
    /// The field tag the writer used for the protocol's payload.
    public var tag: UInt32
    /// The payload's encoded message, not interpreted.
    public var bytes: [UInt8]

    public init(tag: UInt32, bytes: [UInt8]) {
        self.tag = tag; self.bytes = bytes
    }

    /// How tools name it: "unknown protocol (N)".
    public var name: String { "unknown protocol (\(tag))" }

    func encode(to w: inout WireWriter) {
        w.bytes(tag, bytes)
    }
}
