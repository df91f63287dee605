import CaptureFormat
import Foundation
import ProxyCore
import TestSupport
import Testing
@testable import PostgresProxy

/// What the data path's hand-overs must keep: events stamped during a read and submitted
/// together reach the capture in order and none is lost; the backlog limit still pauses; a
/// portal of a batch the server has not answered outlives the ReadyForQuery of an earlier one.
@Suite struct RecordingHandOverTests {
    func header(_ id: String) -> SessionHeader {
        SessionHeader(sessionID: id, target: "t", protocolName: "postgres", subject: "alice@example.com", groups: [], issuer: "https://idp.example.com",
                      proxyID: "p", startMicros: 1_790_000_000_000_000, attributes: [])
    }

    func request(_ n: Int) -> Payload { .request(.postgres(PostgresRequest(text: "SELECT \(n)", path: .simple))) }

    @Test func eventsSubmittedInBatchesReachTheCaptureInOrder() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("handover-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let recorder = try SessionRecorder(directory: dir, header: header("order"), key: SigningKey())
        var staged: [Event] = []
        var n = 0
        for batch in [1, 5, 0, 3, 200] {
            for _ in 0..<batch { staged.append(recorder.stamp(request(n), exchange: UInt64(n))); n += 1 }
            #expect(recorder.submit(&staged) == false)
            #expect(staged.isEmpty)
        }
        recorder.record(request(n), exchange: UInt64(n))
        #expect(await recorder.finish(reason: "test") == nil)
        var seen: [UInt64] = []
        try CaptureFile(path: recorder.path).forEachEvent { e in
            if case .request = e.payload { seen.append(e.exchangeID) }
            return true
        }
        #expect(seen == (0...UInt64(n)).map { $0 })
    }

    @Test(.timeLimit(.minutes(10))) func aSubmissionOverTheBacklogLimitAsksToPauseAndTheDrainSaysGoOn() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("handover-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let recorder = try SessionRecorder(directory: dir, header: header("backlog"), key: SigningKey())
        #expect(await recorder.overflowTheBacklogUntilDrained())
        #expect(await recorder.finish(reason: "test") == nil)
    }

    /// A batch of `drainBytes` or more is written at once, not after the gathering; `finish` does
    /// not wait for it either. (The gathering here is an hour: a test that waited for it would hit its time limit.)
    @Test(.timeLimit(.minutes(10))) func aFullBatchAndTheEndAreWrittenWithoutWaitingForTheGathering() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("handover-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let recorder = try SessionRecorder(directory: dir, header: header("full"), key: SigningKey(), gatherDelay: .seconds(3600))
        let headerBytes = try FileManager.default.attributesOfItem(atPath: recorder.path)[.size] as? Int ?? 0
        var response = PostgresResponse(columns: [Column(name: "v", typeOID: 25)])
        response.rows = (0..<1024).map { [Array("row \($0) ".utf8) + Array(repeating: 0x61, count: 1 << 10)] }
        // One event first, so that (after a moment) the writer is waiting when the large batch comes.
        recorder.record(request(0), exchange: 0)
        try await Task.sleep(for: .milliseconds(100))
        var staged = (1...2).map { recorder.stamp(.response(.postgres(response)), exchange: UInt64($0)) }
        #expect(recorder.submit(&staged) == false)
        while (try FileManager.default.attributesOfItem(atPath: recorder.path)[.size] as? Int ?? 0) <= headerBytes {
            try await Task.sleep(for: .milliseconds(10))
        }
        recorder.record(request(3), exchange: 3)
        guard let failure = await within(seconds: 30, { await recorder.finish(reason: "test") }) else {
            Issue.record("finish waited for the gathering")
            return
        }
        #expect(failure == nil)
        var kinds: [EventKind] = []
        try CaptureFile(path: recorder.path).forEachEvent { kinds.append(contentsOf: $0.payload.kind.map { [$0] } ?? []); return true }
        #expect(kinds == [.request, .response, .response, .request, .sessionEnd])
    }

    /// An idle session's open block reaches the disk when it turns `maxBlockAge` old, with no
    /// more events and no `finish` to push it.
    @Test(.timeLimit(.minutes(10))) func anIdleSessionsOpenBlockIsSealedWhenItTurnsOld() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("handover-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var options = WriterOptions()
        options.maxBlockAge = .milliseconds(200)
        let recorder = try SessionRecorder(directory: dir, header: header("idle"), key: SigningKey(), options: options,
                                           gatherDelay: .milliseconds(10))
        let size = { @Sendable in (try? FileManager.default.attributesOfItem(atPath: recorder.path)[.size] as? Int) ?? 0 }
        let headerBytes = size()
        recorder.record(request(0), exchange: 0)
        let sealed: Void? = await within(seconds: 30) {
            while size() <= headerBytes { try? await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(sealed != nil, "the open block was not sealed")
        let sealedBytes = size()
        #expect(await recorder.finish(reason: "test") == nil)
        #expect(size() > sealedBytes)  // the end, in a block of its own, then the footer
    }

    @Test func readyForQueryEndsOnlyThePortalsOfAnsweredBatches() {
        var relay = RelayState()
        relay.portals["a"] = .init(statement: "s", text: "SELECT 1", parameters: [], resultFormats: [], sync: 1)
        relay.portals["b"] = .init(statement: "s", text: "SELECT 1", parameters: [], resultFormats: [], sync: 2)
        relay.portalDescribed["a"] = .init(serial: 0, fields: [])
        relay.portalDescribed["b"] = .init(serial: 0, fields: [])
        relay.endPortals(answeredSyncs: 1)
        #expect(relay.portals.keys.sorted() == ["b"])
        #expect(relay.portalDescribed.keys.sorted() == ["b"])
        relay.endPortals(answeredSyncs: 2)
        #expect(relay.portals.isEmpty && relay.portalDescribed.isEmpty)
    }
}

extension SessionRecorder {
    /// Submits nine responses of 1 MiB of rows each (more than the 8 MiB the writer may have
    /// queued) and waits for the drained callback. Returns whether the submission asked to pause.
    func overflowTheBacklogUntilDrained() async -> Bool {
        let drained = AsyncStream<Void>.makeStream()
        whenDrained { drained.continuation.yield() }
        var response = PostgresResponse(columns: [Column(name: "v", typeOID: 25)])
        response.rows = Array(repeating: [Array(repeating: 0x61, count: 1 << 10)], count: 1024)
        var staged = (1...9).map { stamp(.response(.postgres(response)), exchange: UInt64($0)) }
        let paused = submit(&staged)
        var it = drained.stream.makeAsyncIterator()
        _ = await it.next()
        return paused
    }
}
