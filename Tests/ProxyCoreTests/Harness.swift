import CaptureFormat
import Foundation
import Policy
import ProxyCore
import TestSupport
import Testing

/// A gate's worth of setup for sessions of the line protocol: real policies and masks read from
/// a configuration, a real recorder writing real captures, read back with the capture reader.
struct Harness {
    static let configuration = """
        proxy: {id: core-tests, captures: /nonexistent, signing_key: /nonexistent}
        identity: {issuer: "http://127.0.0.1:9400", audiences: [tollgate]}
        targets:
          lines:
            protocol: postgres
            listen: 127.0.0.1:6499
            upstream: 127.0.0.1:5499
            credentials: {user: gate}
            masks: [credit_card]
        policies:
          - name: analysts
            who: {groups: [analysts]}
            target: lines
            rules:
              - {name: reads, when: {statement: [select]}, then: allow}
              - {name: deletes-need-approval, when: {statement: [delete], schemas: [analytics]}, then: review, approvers: [dba]}
        """

    let scratch: ScratchDirectory
    let key = SigningKey()
    let store: PolicyStore
    let thread = WriterThreads(count: 1).next()

    init(configuration: String = Harness.configuration) throws {
        scratch = try ScratchDirectory("proxycore")
        store = PolicyStore(try Harness.policyState(configuration, generation: 0))
    }

    static func policyState(_ yaml: String, generation: Int) throws -> PolicyState {
        let config = try GateConfig.parse(yaml: yaml, file: "core-tests.yaml")
        return PolicyState(pipeline: ExchangePipeline(inspector: LineInspector(), policy: PolicyEnforcement(config.policies),
                                                      masking: MaskingSetup(config)),
                           enforcing: true, generation: generation, credentials: config.upstreamCredentials)
    }

    func session(holds: Bool = false, durability: RecordingDurability = .batched, metrics: ExchangeMetrics? = nil) -> ExchangeSession {
        ExchangeSession(settings: .init(target: "lines", protocolName: "lines", proxyID: "core-tests", writerName: "proxycore-tests",
                                        captureDirectory: scratch.path("captures"), maxValueBytes: 64, holds: holds, durability: durability,
                                        metrics: metrics),
                        policies: store)
    }

    /// A session identified as `subject` in `groups`, with its capture open.
    func opened(holds: Bool = false, subject: String = "ana", groups: [String] = ["analysts"],
                parameters: [KeyValue] = [], durability: RecordingDurability = .batched, metrics: ExchangeMetrics? = nil) throws -> ExchangeSession {
        var s = session(holds: holds, durability: durability, metrics: metrics)
        let opening = s.identified(.init(subject: subject, groups: groups, issuer: "http://127.0.0.1:9400", clientAddress: "127.0.0.1:50000",
                                         applicationName: "tests", parameters: parameters, startMicros: 1_700_000_000_000_000))
        let recorder = try opening.open(key: key, thread: thread)
        #expect(s.captureOpened(recorder) == nil)
        return s
    }

    /// Ends the session, closes its capture, and reads back every event it holds.
    func finish(_ s: inout ExchangeSession, reason: String = "client-terminate") async throws -> [Event] {
        guard let finish = s.end(reason: reason) else { throw CaptureError(.io, "the session had no capture to close") }
        if let error = await finish.run() { throw error }
        let file = try CaptureFile(path: finish.recorder.path)
        return try file.blocks.flatMap { (b) throws(CaptureError) in try file.events(in: b) }
    }
}

func line(_ text: String) -> Request { .postgres(PostgresRequest(text: text, path: .simple)) }

extension [Event] {
    func payloads(of exchange: UInt64) -> [Payload] { filter { $0.exchangeID == exchange }.map(\.payload) }
    var sessionEnd: SessionEnd? { lazy.compactMap { if case .sessionEnd(let e) = $0.payload { e } else { nil } }.first }
}
