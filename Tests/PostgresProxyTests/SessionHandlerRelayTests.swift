import CaptureFormat
import Foundation
import GateRuntime
import Identity
import Logging
import NIOCore
import NIOEmbedded
import PostgresWire
import ProxyCore
import TestSupport
import Testing
@testable import PostgresProxy

/// The session handler relaying on EmbeddedChannels: the client's side and the upstream's are
/// channels of the test, with a real gate configuration (policies, masks), the real core and a
/// real capture. What each side receives is decoded and checked, byte for byte where it must be
/// the sender's own. No sockets, no database.
@Suite struct SessionHandlerRelayTests {
    /// A session past login: its capture open, relaying between `client` and `upstream`.
    final class Relay {
        let scratch: ScratchDirectory
        let gate: Gate
        let handler: PostgresSessionHandler
        let loop = EmbeddedEventLoop()
        let client: EmbeddedChannel
        let upstream: EmbeddedChannel
        let recorderPath: String

        init() throws {
            scratch = try ScratchDirectory("relay18-session")
            let config = try GateConfig.parse(yaml: """
                proxy: {id: relay18-tests, captures: \(scratch.path("captures")), signing_key: \(scratch.path("key"))}
                identity: {issuer: "https://issuer.invalid", audiences: [tollgate]}
                targets:
                  db:
                    protocol: postgres
                    listen: 127.0.0.1:6498
                    upstream: 127.0.0.1:5498
                    credentials: {user: gate}
                    masks: [us_ssn]
                policies:
                  - name: analysts
                    who: {groups: [analysts]}
                    target: db
                    rules:
                      - {name: reads, when: {statement: [select]}, then: allow}
                """, file: "relay18.yaml")
            let logger = Logger(label: "relay18-tests")
            let adapter = try PostgresAdapter(config: config, logger: logger)
            gate = try Gate(config: config, verifier: OIDCVerifier(configuration: try IdentityConfiguration(issuer: "https://issuer.invalid",
                                                                                                              audiences: ["tollgate"])),
                            logger: logger, adapters: [adapter], policies: { adapter.policies($0, generation: $1) })
            handler = PostgresSessionHandler(gate: PostgresGate(gate: gate, postgres: adapter), target: config.targets[0])
            client = EmbeddedChannel(loop: loop)
            try client.pipeline.syncOperations.addHandler(handler)
            upstream = EmbeddedChannel(loop: loop)
            let upstreamHandler = UpstreamHandler(session: handler, maxMessageSize: 1 << 20, tlsMode: .disable, tlsContext: nil, serverName: nil)
            try upstream.pipeline.syncOperations.addHandler(upstreamHandler)
            upstreamHandler.phase = .relaying
            // Past login: identified, capture open, relaying to the upstream channel.
            let opening = handler.core.identified(.init(subject: "ana@example.com", groups: ["analysts"], issuer: "https://issuer.invalid",
                                                        clientAddress: "127.0.0.1:50000", applicationName: "tests", tls: nil, parameters: [],
                                                        startMicros: 1_790_000_000_000_000))
            let recorder = try opening.open(key: gate.signingKey, thread: gate.writerThreads.next())
            recorderPath = recorder.path
            handler.sessionOpened(recorder, context: try #require(handler.context))
            handler.upstream = upstream
            handler.state = .relaying
            handler.frames.decoder.phase = .typed  // as after the client's StartupMessage
        }

        func fromClient(_ messages: [PostgresFrontendMessage]) throws {
            var buffer = ByteBuffer()
            for m in messages { try m.encode(into: &buffer) }
            try client.writeInbound(buffer)
        }

        func fromServer(_ messages: [PostgresBackendMessage]) throws {
            var buffer = ByteBuffer()
            for m in messages { try m.encode(into: &buffer) }
            try upstream.writeInbound(buffer)
        }

        /// The bytes the gate sent upstream since the last call.
        func sentUpstream() throws -> ByteBuffer {
            var all = ByteBuffer()
            while var b = try upstream.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&b) }
            return all
        }

        /// What the client received since the last call, decoded.
        func receivedByClient() throws -> [PostgresBackendMessage] {
            var frames = FramedDecoding(PostgresBackendDecoder(maxMessageSize: 1 << 20))
            while let b = try client.readOutbound(as: ByteBuffer.self) { frames.append(b) }
            var messages: [PostgresBackendMessage] = []
            while let (m, _) = try frames.next() { messages.append(m) }
            return messages
        }

        /// Ends the session and reads back its capture.
        func finish() async throws -> [Event] {
            try client.close().wait()
            // The capture is sealed off the event loop: read it once its end is written.
            for _ in 0..<300 {
                if let file = try? CaptureFile(path: recorderPath),
                   let events = try? file.blocks.flatMap({ (b) throws(CaptureError) in try file.events(in: b) }),
                   events.contains(where: { if case .sessionEnd = $0.payload { true } else { false } }) {
                    return events
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw CaptureError(.io, "the capture was not sealed")
        }

        deinit {
            try? gate.group.syncShutdownGracefully()
            scratch.remove()
        }
    }

    static func encoded(_ messages: [PostgresFrontendMessage]) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        for m in messages { try m.encode(into: &buffer) }
        return buffer
    }

    static let ssn = PostgresBackendMessage.ColumnDescription(name: "ssn", typeOID: 25, typeSize: -1)

    @Test func anExtendedBatchGoesUpAsSentAndItsResultComesBackMasked() async throws {
        let relay = try Relay()
        try relay.fromClient([.parse(name: "", query: "SELECT ssn FROM customers", parameterTypes: []), .bind(.init()),
                              .execute(portal: "", maxRows: 0), .sync])
        // The client's messages as it sent them, with the gate's own Describe of the portal before the
        // Execute: masking needs the columns the Execute returns.
        #expect(try relay.sentUpstream() == Self.encoded([.parse(name: "", query: "SELECT ssn FROM customers", parameterTypes: []), .bind(.init()),
                                                          .describe(.portal, name: ""), .execute(portal: "", maxRows: 0), .sync]))
        #expect(try relay.receivedByClient().isEmpty)
        try relay.fromServer([.parseComplete, .bindComplete, .rowDescription([Self.ssn]),
                              .dataRow(.init(columns: [ByteBuffer(string: "123-45-6789")])), .commandComplete(tag: "SELECT 1"),
                              .readyForQuery(.idle)])
        let received = try relay.receivedByClient()
        // The gate's Describe is answered to the gate alone; the row is masked.
        #expect(received.count == 5)
        #expect(received.first == .parseComplete && received.last == .readyForQuery(.idle))
        guard case .dataRow(let row)? = received.dropFirst(2).first else { Issue.record("no row: \(received)"); return }
        let value = row.columns.first.flatMap { $0.map { String(buffer: $0) } }
        #expect(value != "123-45-6789" && value?.contains("*") == true, "\(String(describing: value))")
        let events = try await relay.finish()
        let responses = events.compactMap { e -> PostgresResponse? in
            if case .response(.postgres(let r)) = e.payload { r } else { nil }
        }
        #expect(responses.first?.commandTag == "SELECT 1" && responses.first?.rowCount == 1, "\(responses)")
        // Recorded as the client got it.
        let recorded = try #require(responses.first?.rows.first?.first ?? nil)
        #expect(String(decoding: recorded, as: UTF8.self) == value, "the clear value was recorded")
    }

    @Test func aRefusedQueryIsAnsweredAfterTheQueryBeforeIt() async throws {
        let relay = try Relay()
        try relay.fromClient([.query("SELECT 1"), .query("DELETE FROM customers")])
        // Only the allowed Query goes upstream; the refusal waits for its answer.
        #expect(try relay.sentUpstream() == Self.encoded([.query("SELECT 1")]))
        #expect(try relay.receivedByClient().isEmpty)
        let one = PostgresBackendMessage.ColumnDescription(name: "?column?", typeOID: 23, typeSize: 4)
        try relay.fromServer([.rowDescription([one]), .dataRow(.init(columns: [ByteBuffer(string: "1")])), .commandComplete(tag: "SELECT 1"),
                              .readyForQuery(.idle)])
        let received = try relay.receivedByClient()
        #expect(received.count == 6, "\(received)")
        #expect(Array(received.prefix(4)) == [.rowDescription([one]), .dataRow(.init(columns: [ByteBuffer(string: "1")])),
                                              .commandComplete(tag: "SELECT 1"), .readyForQuery(.idle)])
        guard case .errorResponse(let error)? = received.dropFirst(4).first else { Issue.record("no refusal: \(received)"); return }
        #expect(error.sqlState == "42501")
        #expect(received.last == .readyForQuery(.idle))
        #expect(try relay.sentUpstream().readableBytes == 0)
        let events = try await relay.finish()
        let decisions = events.compactMap { e -> Decision.Action? in if case .decision(let d) = e.payload { d.action } else { nil } }
        #expect(decisions == [.allow, .deny], "\(decisions)")
    }
}
