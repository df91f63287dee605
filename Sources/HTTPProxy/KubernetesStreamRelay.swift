import CaptureFormat
import Foundation
import Masking

/// An exec or attach stream through the gate once both sides have switched to WebSocket, as a
/// value: bytes from either side in, what to send, record and end out. It follows kubectl's
/// remote-command channel protocols `v5.channel.k8s.io` and `v4.channel.k8s.io`: binary messages
/// whose first byte is the channel (0 stdin, 1 stdout, 2 stderr, 3 error: the final Status, 4
/// resize: `{"Width":W,"Height":H}`; v5 adds 255 close: `[255, channel]`).
///
/// Every frame is parsed (`WebSocketFrameParser`) and re-framed by the gate: a client's message is
/// sent upstream whole in one frame masked with the gate's own key (the gate is the upstream's
/// client), an upstream's goes to the client unmasked. Pings, pongs and closes pass through.
/// stdout, stderr and the error channel are masked (`TerminalOutputMasker`) before the client or
/// the capture gets them. Whatever breaks the protocol ends the stream: the breaking side's
/// frames go nowhere, the client gets a close with 1002 (1009 for size) saying what and where.
struct KubernetesStreamRelay {
    enum Subprotocol: String, CaseIterable, Sendable {
        case v5 = "v5.channel.k8s.io"
        case v4 = "v4.channel.k8s.io"
    }

    enum Side: String, Sendable { case client, upstream }

    enum Action: Equatable {
        /// Frame bytes for the upstream (masked).
        case toUpstream([UInt8])
        /// Frame bytes for the client (unmasked).
        case toClient([UInt8])
        /// A stream chunk to record (already masked): stdin, stdout, stderr, resize; stdin with no data is v5's close of stdin.
        case record(StreamChunk)
        /// The error channel's message (the exec's final Status), masked.
        case status([UInt8])
        /// Output is held waiting for a line break: flush it after a short quiet (`flushHeld`).
        case flushLater
        /// A side sent its close frame (passed on to the other).
        case closed(Side, code: UInt16)
        /// The stream broke the protocol: both connections end once the close frames are written.
        case refused(Side, WebSocketFrameParser.ProtocolError)
    }

    static let channelStdin: UInt8 = 0, channelStdout: UInt8 = 1, channelStderr: UInt8 = 2, channelError: UInt8 = 3,
               channelResize: UInt8 = 4, channelClose: UInt8 = 255

    let subprotocol: Subprotocol
    let maxMessageBytes: Int
    private var client: WebSocketFrameParser
    private var upstream: WebSocketFrameParser
    /// A fragmented message being put together, per side.
    private var clientMessage: [UInt8]?
    private var upstreamMessage: [UInt8]?
    private var stdout: TerminalOutputMasker
    private var stderr: TerminalOutputMasker
    private let masker: Masker?
    private(set) var clientClosed = false
    private(set) var upstreamClosed = false
    private(set) var failed = false
    /// What the masks replaced in the output, for the capture's summary.
    var tally: MaskTally { var t = stdout.tally; t.merge(stderr.tally); return t }

    init(subprotocol: Subprotocol, masker: Masker?, maxMessageBytes: Int) {
        self.subprotocol = subprotocol
        self.masker = masker
        self.maxMessageBytes = maxMessageBytes
        client = WebSocketFrameParser(masked: true, maxFrameBytes: maxMessageBytes)
        upstream = WebSocketFrameParser(masked: false, maxFrameBytes: maxMessageBytes)
        stdout = TerminalOutputMasker(masker: masker, location: "stdout")
        stderr = TerminalOutputMasker(masker: masker, location: "stderr")
    }

    static func maskKey() -> [UInt8] { (0..<4).map { _ in UInt8.random(in: 0...255) } }

    // MARK: From the client

    mutating func fromClient(_ bytes: [UInt8]) -> [Action] {
        guard !failed else { return [] }
        switch client.feed(bytes) {
        case .failure(let error): return refuse(.client, error)
        case .success(let frames):
            var out: [Action] = []
            for frame in frames {
                out += clientFrame(frame.frame, at: "client frame \(frame.number) at byte \(frame.offset)")
                if failed { break }
            }
            return out
        }
    }

    private mutating func clientFrame(_ frame: WebSocketFrame, at: String) -> [Action] {
        if clientClosed { return refuse(.client, .init(code: 1002, detail: "\(at): a \(frame.opcode.name) frame after the client's close")) }
        switch frame.opcode {
        case .ping, .pong:
            return [.toUpstream(frame.encoded(mask: Self.maskKey()))]
        case .close:
            clientClosed = true
            return [.toUpstream(frame.encoded(mask: Self.maskKey())), .closed(.client, code: frame.closeCode)]
        case .text:
            return refuse(.client, .init(code: 1002, detail: "\(at): a text frame (\(subprotocol.rawValue) carries binary messages only)"))
        case .binary, .continuation:
            switch assemble(frame, into: &clientMessage, at: at) {
            case .failure(let error): return refuse(.client, error)
            case .success(nil): return []
            case .success(let message?): return clientMessage(message, at: at)
            }
        }
    }

    private mutating func clientMessage(_ message: [UInt8], at: String) -> [Action] {
        guard let channel = message.first else { return refuse(.client, .init(code: 1002, detail: "\(at): a message with no channel byte")) }
        let body = Array(message.dropFirst())
        let forward = Action.toUpstream(WebSocketFrame(.binary, message).encoded(mask: Self.maskKey()))
        switch channel {
        case Self.channelStdin:
            return [.record(StreamChunk(stream: .stdin, data: body)), forward]
        case Self.channelResize:
            guard let size = Self.terminalSize(body) else {
                return refuse(.client, .init(code: 1002, detail: "\(at): a resize message that is not {\"Width\":W,\"Height\":H}"))
            }
            return [.record(StreamChunk(stream: .resize, data: body, columns: size.columns, rows: size.rows)), forward]
        case Self.channelClose where subprotocol == .v5:
            guard body == [Self.channelStdin] else {
                return refuse(.client, .init(code: 1002, detail: "\(at): a close of channel \(body.map(String.init).joined(separator: ",")) (a client closes stdin, 0, only)"))
            }
            return [.record(StreamChunk(stream: .stdin)), forward]
        default:
            return refuse(.client, .init(code: 1002, detail: "\(at): channel \(channel) is not one a client sends on \(subprotocol.rawValue) (0 stdin, 4 resize\(subprotocol == .v5 ? ", 255 close" : ""))"))
        }
    }

    /// `{"Width":W,"Height":H}` with both in 0...65535.
    static func terminalSize(_ body: [UInt8]) -> (columns: UInt16, rows: UInt16)? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let w = object["Width"] as? Int, let h = object["Height"] as? Int,
              let columns = UInt16(exactly: w), let rows = UInt16(exactly: h) else { return nil }
        return (columns, rows)
    }

    // MARK: From the upstream

    mutating func fromUpstream(_ bytes: [UInt8]) -> [Action] {
        guard !failed else { return [] }
        switch upstream.feed(bytes) {
        case .failure(let error): return refuse(.upstream, error)
        case .success(let frames):
            var out: [Action] = []
            for frame in frames {
                out += upstreamFrame(frame.frame, at: "upstream frame \(frame.number) at byte \(frame.offset)")
                if failed { break }
            }
            return out
        }
    }

    private mutating func upstreamFrame(_ frame: WebSocketFrame, at: String) -> [Action] {
        if upstreamClosed { return refuse(.upstream, .init(code: 1002, detail: "\(at): a \(frame.opcode.name) frame after the upstream's close")) }
        switch frame.opcode {
        case .ping, .pong:
            return [.toClient(frame.encoded())]
        case .close:
            upstreamClosed = true
            return flushHeld() + [.toClient(frame.encoded()), .closed(.upstream, code: frame.closeCode)]
        case .text:
            return refuse(.upstream, .init(code: 1002, detail: "\(at): a text frame (\(subprotocol.rawValue) carries binary messages only)"))
        case .binary, .continuation:
            switch assemble(frame, into: &upstreamMessage, at: at) {
            case .failure(let error): return refuse(.upstream, error)
            case .success(nil): return []
            case .success(let message?): return upstreamMessage(message, at: at)
            }
        }
    }

    private mutating func upstreamMessage(_ message: [UInt8], at: String) -> [Action] {
        guard let channel = message.first else { return refuse(.upstream, .init(code: 1002, detail: "\(at): a message with no channel byte")) }
        let body = Array(message.dropFirst())
        switch channel {
        case Self.channelStdout, Self.channelStderr:
            let result = channel == Self.channelStdout ? stdout.feed(body) : stderr.feed(body)
            switch result {
            case .failure(let why): return refuse(.upstream, .init(code: 1009, detail: "\(at): \(why.detail)"))
            case .success(let ready):
                var out = output(ready, channel: channel)
                if (channel == Self.channelStdout ? stdout : stderr).isHolding { out.append(.flushLater) }
                return out
            }
        case Self.channelError:
            // The exec's last word (its exit Status): after everything it printed.
            var out = flushHeld()
            let masked = masker?.mask(body)?.bytes ?? body
            out += [.status(masked), .toClient(WebSocketFrame(.binary, [channel] + masked).encoded())]
            return out
        default:
            return refuse(.upstream, .init(code: 1002, detail: "\(at): channel \(channel) is not one a server sends (1 stdout, 2 stderr, 3 error)"))
        }
    }

    /// The output held waiting for a line break, masked and sent: after a quiet spell, and before a Status or close.
    mutating func flushHeld() -> [Action] {
        output(stdout.finish(), channel: Self.channelStdout) + output(stderr.finish(), channel: Self.channelStderr)
    }

    private func output(_ bytes: [UInt8], channel: UInt8) -> [Action] {
        guard !bytes.isEmpty else { return [] }
        return [.record(StreamChunk(stream: channel == Self.channelStdout ? .stdout : .stderr, data: bytes)),
                .toClient(WebSocketFrame(.binary, [channel] + bytes).encoded())]
    }

    // MARK: Both

    /// Puts fragments together (§5.4): a continuation needs a message begun, a new message needs the last one ended.
    private func assemble(_ frame: WebSocketFrame, into pending: inout [UInt8]?, at: String)
        -> Result<[UInt8]?, WebSocketFrameParser.ProtocolError> {
        if frame.opcode == .continuation {
            guard pending != nil else { return .failure(.init(code: 1002, detail: "\(at): a continuation frame with no message begun")) }
        } else if pending != nil {
            return .failure(.init(code: 1002, detail: "\(at): a new \(frame.opcode.name) message inside a fragmented one"))
        }
        let message = (pending ?? []) + frame.payload
        if message.count > maxMessageBytes {
            return .failure(.init(code: 1009, detail: "\(at): a message over the gate's limit of \(maxMessageBytes) bytes"))
        }
        guard frame.fin else {
            pending = message
            return .success(nil)
        }
        pending = nil
        return .success(message)
    }

    /// The end of the stream: the client is told why (1002 or 1009); the upstream gets a plain close (1001, going away).
    private mutating func refuse(_ side: Side, _ error: WebSocketFrameParser.ProtocolError) -> [Action] {
        failed = true
        var out: [Action] = []
        if !upstreamClosed { out.append(.toClient(WebSocketFrame.close(error.code, "tollgate: \(error.detail)").encoded())) }
        if !clientClosed { out.append(.toUpstream(WebSocketFrame.close(1001, "tollgate ended the stream").encoded(mask: Self.maskKey()))) }
        out.append(.refused(side, error))
        return out
    }
}
