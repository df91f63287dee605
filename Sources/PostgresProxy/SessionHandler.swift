import CaptureFormat
import Foundation
import GateRuntime
import Identity
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresWire
import Masking
import ProxyCore
import SQLInspection

/// One client connection, from SSLRequest to Terminate: TLS termination, OIDC login
/// (the token is the password), the brokered upstream login, then relaying every
/// message through the exchange pipeline and recording it. Both this channel and
/// the upstream channel run on the same event loop, so the state needs no locks.
final class PostgresSessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum State {
        case startup
        case awaitingToken
        case verifying
        case connecting
        case relaying
        case closed
    }

    let gate: PostgresGate
    let target: TargetConfig
    /// The target's catalog cache (looked up once, not per result).
    let catalog: CatalogCache?
    var context: ChannelHandlerContext?
    var clientAddress = ""
    var tls: TLSInfo?
    var startupParameters: [(name: String, value: String)] = []
    var session: SessionContext? { core.context }
    var upstream: Channel?
    var upstreamLogin: UpstreamLogin?
    var gateKey: (Int32, Int32)?
    var endReason = "client-disconnect"
    /// The policy generation `masking` was made from.
    var maskingGeneration = -1
    // The state touched several times per message. Release builds make no runtime exclusivity
    // check on it (`@exclusivity(unchecked)`; they cost about 1.5 µs of gate CPU a transaction,
    // issue 18, docs/benchmark-log.md). Safe: the handler is confined to its event loop (one
    // thread), and no access to these overlaps another: the relay machine, the core, the masker
    // and the decoder are values changed by their own methods, which call nothing of the handler
    // (the relay follows the inspector through a generation counter for that reason); the
    // compiler checks the rest statically. Debug builds, where every test runs, keep the checks,
    // so an overlap that creeps in fails the tests.
    #if DEBUG
    var state = State.startup
    /// Every step of every exchange that is not PostgreSQL's own: identity, decisions, recording, counts.
    var core: ExchangeSession
    /// How the server reads statements, as it reports it: the gate ends the session when it changes.
    var lexing = LexingSettings()
    /// What is pending and what each expected reply is: the relay's bookkeeping, as a state machine.
    var machine = RelayStateMachine()
    /// What is recorded of the result being received.
    var recorded: ResultRecording
    /// The session's masks for results as they stream (nil: none configured for it), made from
    /// the core's masks of policy generation `maskingGeneration`.
    var masking: PostgresResultMasker?
    /// Messages for each side, gathered during one read and written in one go: a statement's
    /// Bind/Execute/Sync (or a result's rows) become one write, not one per message.
    var clientOut = ByteBuffer()
    var upstreamOut = ByteBuffer()
    /// The client's messages, decoded here as they arrive, each with the bytes it came in.
    var frames: FramedDecoding<PostgresFrontendDecoder>
    #else
    @exclusivity(unchecked) var state = State.startup
    @exclusivity(unchecked) var core: ExchangeSession
    @exclusivity(unchecked) var lexing = LexingSettings()
    @exclusivity(unchecked) var machine = RelayStateMachine()
    @exclusivity(unchecked) var recorded: ResultRecording
    @exclusivity(unchecked) var masking: PostgresResultMasker?
    @exclusivity(unchecked) var clientOut = ByteBuffer()
    @exclusivity(unchecked) var upstreamOut = ByteBuffer()
    @exclusivity(unchecked) var frames: FramedDecoding<PostgresFrontendDecoder>
    #endif
    /// Strict recording: upstream output waiting for its record, by the core's ticket.
    var heldUpstream: [(ticket: UInt64, bytes: ByteBuffer)] = []

    init(gate: PostgresGate, target: TargetConfig) {
        self.gate = gate
        self.target = target
        catalog = gate.catalogs[target.name]
        var writerOptions = WriterOptions()
        writerOptions.compressionLevel = Int32(target.recordCompressionLevel)
        core = ExchangeSession(settings: .init(target: target.name, protocolName: "postgres", proxyID: gate.config.proxy.id,
                                               writerName: "capture-proxy \(gateVersion)", captureDirectory: gate.config.proxy.captureDirectory,
                                               writerOptions: writerOptions, maxValueBytes: target.recordMaxValueBytes,
                                               headerAttributes: [KeyValue("upstream", target.upstream.description)], holds: true,
                                               durability: target.recordDurability, metrics: gate.gate.exchangeMetrics[target.name],
                                               recent: gate.config.admin?.login == nil ? nil : gate.gate.sessions.recent),
                               policies: gate.policies)
        recorded = ResultRecording(maxRows: target.recordMaxRows)
        frames = FramedDecoding(PostgresFrontendDecoder(maxMessageSize: target.maxMessageBytes))
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientAddress = context.channel.remoteAddress.map(describe) ?? "unknown"
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a refusal the connection only drains (see `closeAfterError`): nothing is kept.
        guard state != .closed else { return }
        let bytes = unwrapInboundIn(data)
        core.countBytes(fromClient: bytes.readableBytes)
        frames.append(bytes)
        do {
            while state != .closed, let (message, frame) = try frames.next() {
                switch state {
                case .startup: startupMessage(message, context: context)
                case .awaitingToken: tokenMessage(message, context: context)
                case .verifying, .connecting:
                    // A client that does not wait for AuthenticationOk is not following the protocol.
                    fail(context, code: "08P01", "message received before authentication completed", reason: "protocol-error")
                case .relaying: clientMessage(message, frame: frame, context: context)
                case .closed: break
                }
            }
        } catch {
            protocolError(error, context: context)
        }
    }

    func protocolError(_ error: any Error, context: ChannelHandlerContext) {
        gate.logger.warning("protocol error from client", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
        fail(context, code: "08P01", "invalid message from client: \(error)", reason: "protocol-error")
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushUpstream()
    }


    func channelInactive(context: ChannelHandlerContext) {
        if state != .closed, frames.bufferedBytes > 0 {
            do { _ = try frames.last() } catch {
                // The client went away in the middle of a message: nothing of it was forwarded.
                gate.logger.notice("client closed the connection mid-message", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
                endReason = "protocol-error"
            }
        }
        teardown(reason: endReason)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOSSLError || error is BoringSSLError {
            gate.logger.info("TLS error", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
            endReason = "tls-error"
            context.close(promise: nil)
        } else {
            gate.logger.info("client connection error", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        apply(context.channel.isWritable ? core.resume(.upstream, .peerSlow) : core.pause(.upstream, .peerSlow))
        context.fireChannelWritabilityChanged()
    }

    /// Back-pressure, from the core's reasons: a slow client, or a capture writer that has fallen
    /// behind, stops the gate reading from upstream, so a large result waits in PostgreSQL, not in
    /// the gate's memory; a slow upstream stops it reading from the client.
    func apply(_ actions: [ExchangeAction]) {
        for action in actions {
            switch action {
            case .pauseReading(let side), .resumeReading(let side):
                core.pauses.switchReading(side, client: context, upstream: upstream)
            case .holdUpstream(let ticket): holdUpstream(ticket)
            case .releaseUpstream(let ticket): releaseUpstream(through: ticket)
            case .forward, .refuse, .hold:
                break
            }
        }
    }

    /// Stamps an event now; it reaches the recorder with the rest of this read's (`submitRecorded`).
    func record(_ payload: consuming Payload, exchange: UInt64) {
        core.record(payload, exchange: exchange)
    }

    /// Hands this read's events to the recorder. Called where the handlers flush their output,
    /// and before the session ends, so nothing stamped is left behind.
    func submitRecorded() {
        apply(core.flush())
    }

    /// The writer caught up: read again. Set once per session, so a drain cannot be missed; it
    /// runs on the event loop after whatever paused reading.
    func resumeWhenRecorderDrains(_ recorder: SessionRecorder, loop: any EventLoop) {
        let handler = NIOLoopBound(self, eventLoop: loop)
        recorder.whenDrained {
            loop.execute {
                handler.value.apply(handler.value.core.recorderDrained())
            }
        }
        // Evidence or nothing: a session whose capture cannot be written is ended (fail closed).
        recorder.whenFailed { error in
            loop.execute {
                let session = handler.value
                session.gate.logger.error("capture write failed; ending the session", metadata: ["error": "\(error)"])
                guard let context = session.context else { return }
                session.fail(context, code: "58000", "the gate cannot record this session; it was ended", reason: "recording-failed")
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let end = event as? GateShutdown {
            fail(context, code: "57P01", "terminating connection due to administrator command (\(end.detail))", reason: end.endReason)
            return
        }
        // Silence while a statement runs (pg_sleep, a long report) is not idleness.
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, machine.relay.pending.isEmpty, machine.heldApprovalID == nil {
            fail(context, code: "57P05", "terminating connection due to idle timeout (\(target.idleTimeout))", reason: "idle-timeout")
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

func describe(_ address: SocketAddress) -> String {
    if let ip = address.ipAddress, let port = address.port { return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)" }
    return "\(address)"
}
