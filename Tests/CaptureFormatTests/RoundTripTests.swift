import CaptureFormat
import Foundation
import Testing

/// Every event kind survives the wire encoding and a trip through a capture file.
@Suite struct RoundTripTests {
    @Test(arguments: samplePayloads().map(\.0))
    func eventWireRoundTrip(name: String) throws {
        let payload = try #require(samplePayloads().first { $0.0 == name }).1
        let event = Event(sequence: 7, monotonicNanos: 123_456_789, wallMicros: -5, exchangeID: 99, payload: payload)
        #expect(try wireRoundTrip(event) == event)
        // Default envelope values (all zero) survive too.
        let bare = Event(monotonicNanos: 0, wallMicros: 0, payload: payload)
        #expect(try wireRoundTrip(bare) == bare)
    }

    /// The payload messages on their own, through `encoded()` / `init(decoding:)`.
    @Test func payloadMessagesRoundTrip() throws {
        func check<M: WireMessage & Equatable>(_ m: M, sourceLocation: SourceLocation = #_sourceLocation) throws {
            #expect(try M(decoding: m.encoded()) == m, sourceLocation: sourceLocation)
        }
        for (_, payload) in samplePayloads() {
            switch payload {
            case .sessionStart(let p): try check(p); if let t = p.tls { try check(t) }
            case .sessionEnd(let p): try check(p)
            case .request(let p):
                try check(p)
                switch p {
                case .postgres(let q): try check(q); for x in q.parameters { try check(x) }; for x in q.resources { try check(x) }
                case .http(let h): try check(h); try check(h.body)
                case .kubernetes(let k): try check(k); try check(k.http)
                case .unknown: break
                }
            case .decision(let p): try check(p)
            case .approval(let p): try check(p)
            case .response(let p):
                try check(p)
                switch p {
                case .postgres(let r):
                    try check(r); for c in r.columns { try check(c) }; if let e = r.error { try check(e) }; if let c = r.cut { try check(c) }
                case .http(let h): try check(h); try check(h.body)
                case .unknown: break
                }
            case .streamChunk(let p): try check(p)
            case .maskSummary(let p): try check(p); for e in p.entries { try check(e) }
            case .annotation(let p): try check(p)
            case .divergence(let p): try check(p)
            case .unknown: break
            }
        }
        try check(sampleHeader())
        try check(RecoveryInfo(originalLength: 1, keptLength: 2, reason: "r", recoveredMicros: -3))
    }

    @Test func everyKindRoundTripsThroughAFile() throws {
        try withTempDir { dir in
            let key = SigningKey()
            let events = sampleEvents()
            let path = dir.path("all.sesscap")
            // Small blocks so the kinds are spread over several blocks.
            let written = try writeCapture(events, to: path, key: key, options: testOptions(blockTargetBytes: 400, durability: .perBlock))
            #expect(written.map(\.sequence) == Array(1...UInt64(events.count)))

            let capture = try CaptureFile(path: path)
            #expect(capture.state == .sealed(.cleanClose))
            #expect(capture.blocks.count > 1)
            #expect(capture.header.sessionID == "sess-0001")
            #expect(capture.header.signingPublicKey == key.publicKey)
            #expect(capture.header.signingKeyID == key.keyID)
            let read = try allEvents(capture)
            #expect(read == written)
            for (r, w) in zip(read, written) where r != w {
                Issue.record("differs: \(r) vs \(w)")
            }

            // forEachEvent agrees and honours its start.
            var seen: [Event] = []
            try capture.forEachEvent { seen.append($0); return true }
            #expect(seen == written)
            var fromTen: [UInt64] = []
            try capture.forEachEvent(fromSequence: 10) { fromTen.append($0.sequence); return true }
            #expect(fromTen == Array(10...UInt64(events.count)))

            // Summary from the footer equals one rebuilt from the events.
            let summary = try capture.summary()
            #expect(summary == summaryOf(written))
            #expect(summary.eventCount == UInt64(events.count))
            #expect(summary.count(of: .decision) == 3)
            #expect(summary.count(of: .allow) == 1 && summary.count(of: .deny) == 1 && summary.count(of: .review) == 1)
            #expect(summary.kindCounts.contains(NamedCount("kind-42", 1)))
            #expect(summary.kindCounts.contains(NamedCount("kind-200", 1)))
            #expect(summary.endReason == "client-terminate")
            #expect(summary.resources.contains("analytics.users"))
            #expect(summary.resources.contains("k8s:prod/pods/web-0"))

            // Block headers index their events.
            for block in capture.blocks {
                let evs = try capture.events(in: block)
                #expect(Int(block.eventCount) == evs.count)
                #expect(block.firstSequence == evs.first?.sequence && block.lastSequence == evs.last?.sequence)
                for e in evs {
                    if let k = e.payload.kind { #expect(block.contains(kind: k)) }
                }
            }

            let report = capture.verify()
            #expect(report.isValid, "\(report.problems)")
            #expect(report.sealed)
            #expect(report.eventsChecked == UInt64(events.count))
            #expect(report.blocksChecked == capture.blocks.count)
            #expect(try posixMode(path) == 0o600)
        }
    }

    /// The unknown kind is kept byte for byte and is counted, not dropped or rejected.
    @Test func unknownKindSurvives() throws {
        let raw: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x01]  // not even valid fields: never parsed
        let event = Event(sequence: 1, monotonicNanos: 1, wallMicros: 1, payload: .unknown(kind: 77, bytes: raw))
        let back = try wireRoundTrip(event)
        #expect(back == event)
        #expect(back.payload.kind == nil && back.kindCode == 77)
        try withTempDir { dir in
            let path = dir.path("u.sesscap")
            let written = try writeCapture([event], to: path, key: SigningKey(), options: testOptions())
            let capture = try CaptureFile(path: path)
            #expect(try allEvents(capture) == written)
            #expect(capture.verify().isValid)
        }
    }

    /// Durability .strict: every append seals (and syncs) its own block.
    @Test func strictDurabilityMakesOneBlockPerEvent() throws {
        try withTempDir { dir in
            let path = dir.path("strict.sesscap")
            let events = Array(sampleEvents().prefix(12))
            let writer = try CaptureWriter(path: path, header: sampleHeader(), key: SigningKey(), options: testOptions(durability: .strict))
            for (i, e) in events.enumerated() {
                try writer.append(e)
                // Each append is on disk as a whole block before the file is closed.
                let capture = try CaptureFile(path: path)
                #expect(capture.blocks.count == i + 1)
                #expect(!capture.state.isSealed)
            }
            try writer.close()
            let capture = try CaptureFile(path: path)
            #expect(capture.blocks.count == events.count)
            #expect(capture.blocks.allSatisfy { $0.eventCount == 1 })
            #expect(try allEvents(capture).map(\.payload) == events.map(\.payload))
            #expect(capture.verify().isValid)
        }
    }

    /// A batch is appended in order and the open block's age is looked at once, after the batch:
    /// with a block age of zero, each batch becomes one block (one event at a time, one block each).
    @Test func appendMovingABatchChecksTheBlockAgeOnce() throws {
        try withTempDir { dir in
            let path = dir.path("batch.sesscap")
            var options = testOptions()
            options.maxBlockAge = .zero
            let events = Array(sampleEvents().prefix(10))
            let writer = try CaptureWriter(path: path, header: sampleHeader(), key: SigningKey(), options: options)
            var first = Array(events.prefix(6)), second = Array(events.dropFirst(6))
            try writer.append(moving: &first)
            #expect(first.isEmpty)
            try writer.append(moving: &second)
            #expect(writer.eventCount == UInt64(events.count))
            try writer.close()
            let capture = try CaptureFile(path: path)
            #expect(capture.blocks.map(\.eventCount) == [6, 4])
            let read = try allEvents(capture)
            #expect(read.map(\.payload) == events.map(\.payload))
            #expect(read.map(\.sequence) == Array(1...UInt64(events.count)))
            #expect(capture.verify().isValid)
        }
    }

    @Test func appendStampsSequenceAndTime() throws {
        try withTempDir { dir in
            let path = dir.path("stamp.sesscap")
            let writer = try CaptureWriter(path: path, header: sampleHeader(), key: SigningKey(), options: testOptions())
            let before = nowMicros()
            #expect(try writer.append(.sessionEnd(SessionEnd(reason: "a")), exchangeID: 5) == 1)
            #expect(try writer.append(.sessionEnd(SessionEnd(reason: "b"))) == 2)
            #expect(writer.eventCount == 2)
            try writer.close()
            #expect(throws: CaptureError.self) { try writer.append(.sessionEnd(SessionEnd(reason: "c"))) }
            let events = try allEvents(CaptureFile(path: path))
            #expect(events.map(\.sequence) == [1, 2])
            #expect(events[0].exchangeID == 5)
            #expect(events.allSatisfy { $0.wallMicros >= before })
            #expect(events[0].monotonicNanos <= events[1].monotonicNanos)
        }
    }

    @Test func writerRefusesAnExistingFile() throws {
        try withTempDir { (dir) throws in
            let path = dir.path("exists.sesscap")
            _ = FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3]))
            #expect(throws: CaptureError.self) {
                _ = try CaptureWriter(path: path, header: sampleHeader(), key: SigningKey(), options: testOptions())
            }
            #expect(try readBytes(path) == [1, 2, 3])
        }
    }

    /// Blocks stored without compression (codec 0) read and verify like zlib ones.
    @Test func uncompressedBlocks() throws {
        try withTempDir { dir in
            let path = dir.path("none.sesscap")
            var options = testOptions(blockTargetBytes: 300)
            options.codec = .none
            let written = try writeCapture(sampleEvents(), to: path, key: SigningKey(), options: options)
            let capture = try CaptureFile(path: path)
            #expect(capture.blocks.count > 1)
            #expect(capture.blocks.allSatisfy { $0.codec == .none && $0.rawLength == $0.storedLength })
            #expect(try allEvents(capture) == written)
            let report = capture.verify()
            #expect(report.isValid, "\(report.problems)")
        }
    }

    /// An empty session (no events) is still a valid sealed capture.
    @Test func emptyCapture() throws {
        try withTempDir { dir in
            let path = dir.path("empty.sesscap")
            try writeCapture([], to: path, key: SigningKey(), options: testOptions())
            let capture = try CaptureFile(path: path)
            #expect(capture.state == .sealed(.cleanClose))
            #expect(capture.blocks.isEmpty)
            #expect(try capture.summary() == SessionSummary())
            let report = capture.verify()
            #expect(report.isValid, "\(report.problems)")
        }
    }

    /// Summary counters saturate instead of trapping on absurd sizes from a damaged or hostile writer.
    @Test func summaryCountersDoNotOverflow() throws {
        let huge = Event(monotonicNanos: 0, wallMicros: 0, payload: .response(.http(HTTPResponse(
            status: 500, body: CappedBytes(data: [1], totalSize: UInt64.max, cutSHA256: [])))))
        let hugeRequest = Event(monotonicNanos: 0, wallMicros: 0, payload: .request(.http(HTTPRequest(
            method: "GET", target: "/", body: CappedBytes(data: [1], totalSize: UInt64.max - 1, cutSHA256: [])))))
        let hugeCut = Event(monotonicNanos: 0, wallMicros: 0, payload: .response(.postgres(PostgresResponse(
            cut: CutRows(rows: 1, bytes: UInt64.max, sha256: [])))))
        let hugeMask = Event(monotonicNanos: 0, wallMicros: 0, payload: .maskSummary(MaskSummary(entries: [
            MaskCount(detector: "email", count: UInt64.max), MaskCount(detector: "email", count: 2)])))
        let s = summaryOf([huge, huge, hugeRequest, hugeRequest, hugeCut, hugeMask])
        #expect(s.responseBytes == UInt64.max)
        #expect(s.requestBytes == UInt64.max)
        #expect(s.maskedCounts == [NamedCount("email", UInt64.max)])
        try withTempDir { dir in
            let path = dir.path("huge.sesscap")
            let written = try writeCapture([huge, huge, hugeRequest, hugeRequest, hugeCut, hugeMask], to: path,
                                           key: SigningKey(), options: testOptions())
            let capture = try CaptureFile(path: path)
            #expect(try capture.summary() == summaryOf(written))
            #expect(capture.verify().isValid)
        }
    }
}
