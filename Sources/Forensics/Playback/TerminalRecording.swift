import CaptureFormat

/// The terminal of one recorded exec or attach, read back from a capture for playback: what the
/// operator saw (stdout and stderr, as the bytes the terminal got), when, and the terminal's size.
/// stdin is kept apart: a terminal echoes what matters of it in the output.
public struct TerminalRecording: Sendable, Equatable {
    public struct Output: Sendable, Equatable {
        /// Nanoseconds since the exchange's first stream chunk, from the capture's monotonic clock.
        public var nanos: UInt64
        public var bytes: [UInt8]

        public init(nanos: UInt64, bytes: [UInt8]) { self.nanos = nanos; self.bytes = bytes }
    }

    public var exchange: Exchange
    public var outputs: [Output] = []
    public var inputBytes = 0
    /// The first resize's size, else nil (the recording did not say).
    public var size: (columns: UInt16, rows: UInt16)?

    public static func == (a: TerminalRecording, b: TerminalRecording) -> Bool {
        a.exchange == b.exchange && a.outputs == b.outputs && a.inputBytes == b.inputBytes
            && a.size?.columns == b.size?.columns && a.size?.rows == b.size?.rows
    }

    /// What the exec ran, where, and by whom, for a title line.
    public func title(_ header: SessionHeader) -> String {
        guard let k = exchange.kubernetes else { return "exchange \(exchange.id), session \(header.sessionID)" }
        var place = k.namespace.isEmpty ? k.name : "\(k.namespace)/\(k.name)"
        if !k.container.isEmpty { place += " -c \(k.container)" }
        let command = k.command.isEmpty ? "" : " -- \(k.command.joined(separator: " "))"
        return "\(header.subject): kubectl \(k.subresource) \(place)\(command) (exchange \(exchange.id), session \(header.sessionID))"
    }

    public enum ReadError: Error, CustomStringConvertible, Equatable {
        case noTerminal
        case notATerminal(UInt64, [UInt64])

        public var description: String {
            switch self {
            case .noTerminal: "no exec or attach terminal is recorded in this capture"
            case .notATerminal(let id, let terminals):
                "exchange \(id) is not an exec or attach terminal; terminals recorded: "
                    + (terminals.isEmpty ? "none" : terminals.map(String.init).joined(separator: ", "))
            }
        }
    }

    /// The exec and attach exchanges of `capture` that carry stream chunks, in recorded order.
    public static func terminals(in capture: CaptureFile) throws -> [Exchange] {
        try ExchangeAssembler.exchanges(of: capture, keepsRows: false).filter { $0.isTerminalStream && $0.streamChunks > 0 }
    }

    /// The terminal of exchange `id` (or the first one recorded when nil), read in one more pass.
    public static func read(_ capture: CaptureFile, exchange id: UInt64? = nil) throws -> TerminalRecording {
        let terminals = try terminals(in: capture)
        let chosen: Exchange
        if let id {
            guard let found = terminals.first(where: { $0.id == id }) else { throw ReadError.notATerminal(id, terminals.map(\.id)) }
            chosen = found
        } else {
            guard let first = terminals.first else { throw ReadError.noTerminal }
            chosen = first
        }
        var recording = TerminalRecording(exchange: chosen)
        var first: UInt64?
        var last: UInt64 = 0
        try capture.forEachEvent { e in
            guard e.exchangeID == chosen.id, case .streamChunk(let chunk) = e.payload else { return true }
            let start = first ?? e.monotonicNanos
            first = start
            // A writer's clock never goes back; a hostile file's may: clamp so playback never waits negative.
            last = max(last, e.monotonicNanos >= start ? e.monotonicNanos - start : 0)
            switch chunk.stream {
            case .stdout, .stderr:
                if !chunk.data.isEmpty { recording.outputs.append(Output(nanos: last, bytes: chunk.data)) }
            case .stdin:
                recording.inputBytes += chunk.data.count
            case .resize:
                if recording.size == nil, chunk.columns > 0, chunk.rows > 0 { recording.size = (chunk.columns, chunk.rows) }
            }
            return true
        }
        return recording
    }
}
