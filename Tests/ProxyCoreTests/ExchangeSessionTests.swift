import CaptureFormat
import Policy
import ProxyCore
import Testing

/// The exchange session driven as an adapter drives it, with no socket and no database: every
/// decision path, what each records, the counts, holds and back-pressure.
@Suite("exchange session")
struct ExchangeSessionTests {
    @Test func anAllowedRequestIsForwardedAndRecordedWithItsDecision() async throws {
        let h = try Harness()
        var s = try h.opened()
        let actions = s.request(line("read analytics.orders"))
        guard case .forward(let admitted)? = actions.first, actions.count == 1 else { Issue.record("expected a forward, got \(actions)"); return }
        s.responded(.postgres(PostgresResponse(commandTag: "SELECT 2")), exchange: admitted.exchange, rows: 2)
        let events = try await h.finish(&s)
        let payloads = events.payloads(of: admitted.exchange)
        #expect(payloads.count == 3)
        guard case .request(.postgres(let recorded)) = payloads[0], case .decision(let decision) = payloads[1],
              case .response(.postgres(let response)) = payloads[2] else { Issue.record("unexpected events \(payloads)"); return }
        #expect(recorded.text == "read analytics.orders")
        #expect(decision.action == .allow && decision.policy == "analysts" && decision.rule == "reads")
        #expect(response.commandTag == "SELECT 2")
        guard case .sessionStart(let start) = events.first?.payload else { Issue.record("no session start first"); return }
        #expect(start.clientAddress == "127.0.0.1:50000")
        #expect(events.sessionEnd?.counts == SessionCounts(requests: 1, refused: 0, errors: 0, rows: 2))
        #expect(events.sessionEnd?.reason == "client-terminate")
    }

    @Test func aDeniedRequestIsRefusedWithThePolicysWordsAndNeverForwarded() async throws {
        let h = try Harness()
        var s = try h.opened()
        let actions = s.request(line("delete public.users"))
        guard case .refuse(let exchange, let message)? = actions.first, actions.count == 1 else { Issue.record("expected a refusal, got \(actions)"); return }
        #expect(message.hasPrefix("tollgate: denied by policy"))
        let events = try await h.finish(&s)
        let payloads = events.payloads(of: exchange)
        guard payloads.count == 3, case .decision(let decision) = payloads[1], case .response(.postgres(let response)) = payloads[2] else {
            Issue.record("unexpected events \(payloads)"); return
        }
        #expect(decision.action == .deny)
        #expect(response.error?.sqlState == "42501" && response.error?.message == message)
        #expect(events.sessionEnd?.counts?.refused == 1)
    }

    @Test func withoutApprovalsAReviewIsRefusedAndSaysSo() async throws {
        let h = try Harness()
        var s = try h.opened(holds: false)
        let actions = s.request(line("delete analytics.orders"))
        guard case .refuse(_, let message)? = actions.first else { Issue.record("expected a refusal, got \(actions)"); return }
        #expect(message.contains("approval required") && message.contains("approvals are not available"))
        _ = try await h.finish(&s)
    }

    @Test func aHeldRequestWaitsWithWhatFollowsItAndRunsOnceApproved() async throws {
        let h = try Harness()
        var s = try h.opened(holds: true)
        let held = s.request(line("delete analytics.orders"))
        guard case .hold(let hold)? = held.first else { Issue.record("expected a hold, got \(held)"); return }
        #expect(hold.approvers == ["dba"])
        #expect(held.contains(.pauseReading(.client)))
        #expect(!s.pauses.reads(.client))
        // Pipelined behind the hold: neither decided nor forwarded before it.
        #expect(s.request(line("read analytics.orders")).isEmpty)
        #expect(s.request(line("delete public.users")).isEmpty)
        #expect(s.resolve(Approval(state: .requested, approvalID: "no-such-id")).isEmpty)
        let released = s.resolve(Approval(state: .granted, approvalID: hold.approvalID, by: "dora", reason: "ticket 42"))
        #expect(released.count == 4, "\(released)")
        guard released.count == 4, case .forward(let first) = released[0], case .forward(let second) = released[1],
              case .refuse(let third, _) = released[2] else { return }
        #expect([first.exchange, second.exchange, third] == [1, 2, 3])
        #expect(released[3] == .resumeReading(.client))
        let events = try await h.finish(&s)
        let approvals = events.payloads(of: 1).compactMap { if case .approval(let a) = $0 { a } else { nil } }
        #expect(approvals.map(\.state) == [.requested, .granted])
        #expect(approvals.last?.by == "dora" && approvals.last?.reason == "ticket 42")
        #expect(approvals.first?.approverGroups == ["dba"])
        #expect(events.sessionEnd?.counts?.refused == 1)
    }

    @Test func aDeniedHoldIsRefusedNamingTheApproverAndTheQueueMovesOn() async throws {
        let h = try Harness()
        var s = try h.opened(holds: true)
        guard case .hold(let hold)? = s.request(line("delete analytics.orders")).first else { Issue.record("no hold"); return }
        _ = s.request(line("read analytics.orders"))
        let released = s.resolve(Approval(state: .denied, approvalID: hold.approvalID, by: "dora", reason: "not during the freeze"))
        guard case .refuse(1, let message)? = released.first, case .forward(let next)? = released.dropFirst().first else {
            Issue.record("unexpected \(released)"); return
        }
        #expect(message.contains("denied by dora") && message.contains("not during the freeze"))
        #expect(next.exchange == 2)
        // A second answer to the same hold changes nothing.
        #expect(s.resolve(Approval(state: .granted, approvalID: hold.approvalID, by: "eve")).isEmpty)
        let events = try await h.finish(&s)
        #expect(events.sessionEnd?.counts?.refused == 1)
    }

    @Test func anExpiredHoldSaysItWasNotApprovedInTime() throws {
        let h = try Harness()
        var s = try h.opened(holds: true)
        guard case .hold(let hold)? = s.request(line("delete analytics.orders")).first else { Issue.record("no hold"); return }
        let released = s.resolve(Approval(state: .expired, approvalID: hold.approvalID, reason: "5m passed"))
        guard case .refuse(_, let message)? = released.first else { Issue.record("unexpected \(released)"); return }
        #expect(message.contains("was not approved in time"))
    }

    @Test func requestsBehindAHoldAreDecidedWithWhatTheHeldOneChanged() throws {
        // `use analytics` is held (it matches no rule: reviewed? no — it is a `set`, denied), so use a
        // policy where changing the schema needs approval and reads are allowed only in analytics.
        let h = try Harness(configuration: Harness.configuration.replacingOccurrences(of: """
                  - {name: reads, when: {statement: [select]}, then: allow}
            """, with: """
                  - {name: reads, when: {statement: [select], schemas: [analytics]}, then: allow}
                  - {name: switch, when: {statement: [set]}, then: review, approvers: [dba]}
            """))
        var s = try h.opened(holds: true)
        guard case .hold(let hold)? = s.request(line("use analytics")).first else { Issue.record("no hold"); return }
        _ = s.request(line("read orders"))  // unqualified: analytics.orders once the switch ran
        let released = s.resolve(Approval(state: .granted, approvalID: hold.approvalID, by: "dora"))
        guard released.count >= 2, case .forward = released[0], case .forward(let read) = released[1] else {
            Issue.record("the read behind the switch was decided before it: \(released)"); return
        }
        #expect(read.exchange == 2)
    }

    @Test func backPressureAndAHoldCannotUndoEachOther() throws {
        let h = try Harness()
        var s = try h.opened(holds: true)
        // The client stops reading results: the upstream pauses.
        #expect(s.pause(.upstream, .peerSlow) == [.pauseReading(.upstream)])
        guard case .hold(let hold)? = s.request(line("delete analytics.orders")).first else { Issue.record("no hold"); return }
        // The upstream side is already stopped; the hold stops the client side.
        #expect(!s.pauses.reads(.client) && !s.pauses.reads(.upstream))
        // The upstream becomes slow too while the hold waits: the client side is already stopped.
        #expect(s.pause(.client, .peerSlow).isEmpty)
        // The approval lifts the hold, but the client side stays stopped for the slow upstream.
        let released = s.resolve(Approval(state: .granted, approvalID: hold.approvalID, by: "dora"))
        #expect(!released.contains(.resumeReading(.client)))
        #expect(s.resume(.client, .peerSlow) == [.resumeReading(.client)])
        #expect(s.resume(.upstream, .peerSlow) == [.resumeReading(.upstream)])
        #expect(s.resume(.upstream, .peerSlow).isEmpty)
    }

    @Test func aSessionThatEndsWhileHeldRecordsWhatWaitedAsNeverSent() async throws {
        let h = try Harness()
        var s = try h.opened(holds: true)
        guard case .hold(let hold)? = s.request(line("delete analytics.orders")).first else { Issue.record("no hold"); return }
        _ = s.request(line("read analytics.orders"))
        let events = try await h.finish(&s, reason: "client-disconnect")
        let approvals = events.compactMap { if case .approval(let a) = $0.payload { a } else { nil } }
        #expect(approvals.map(\.state) == [.requested, .expired])
        #expect(approvals.last?.approvalID == hold.approvalID)
        // The read that waited behind it is on the record as decided and never sent.
        let waited = events.payloads(of: 2)
        #expect(waited.contains { if case .request = $0 { true } else { false } })
        #expect(waited.contains { if case .response(.postgres(let r)) = $0 { r.error?.sqlState == "57014" } else { false } })
        #expect(events.sessionEnd?.counts == SessionCounts(requests: 2, refused: 2, errors: 0, rows: 0))
    }

    @Test func decisionsAreCachedPerInspectorGenerationAndPolicyGeneration() throws {
        let h = try Harness()
        var s = try h.opened()
        guard case .forward? = s.request(line("read orders")).first else { Issue.record("read in public allowed"); return }
        // The session state changes what `orders` is; the cached decision must not be reused.
        _ = s.request(line("use analytics"))  // denied (no rule for set): the inspector was not told
        guard case .forward? = s.request(line("read orders")).first else { Issue.record("still allowed"); return }
        // A reload that removes the read rule applies at the next request, cache or not.
        h.store.replace { generation in
            try! Harness.policyState(Harness.configuration.replacingOccurrences(of: "then: allow", with: "then: deny"), generation: generation)
        }
        guard case .refuse? = s.request(line("read orders")).first else { Issue.record("the reload did not apply"); return }
    }

    @Test func theInspectorGenerationInvalidatesACachedDecision() throws {
        let h = try Harness(configuration: Harness.configuration.replacingOccurrences(of: """
                  - {name: reads, when: {statement: [select]}, then: allow}
            """, with: """
                  - {name: reads, when: {statement: [select], schemas: [public]}, then: allow}
                  - {name: switch, when: {statement: [set]}, then: allow}
            """))
        var s = try h.opened()
        guard case .forward? = s.request(line("read orders")).first else { Issue.record("read in public allowed"); return }
        guard case .forward? = s.request(line("use analytics")).first else { Issue.record("switch allowed"); return }
        // Same text, but `orders` is analytics.orders now.
        guard case .refuse? = s.request(line("read orders")).first else { Issue.record("a stale cached decision was reused"); return }
    }

    @Test func whatIsRecordedGoesThroughTheMasksWhatIsForwardedDoesNot() async throws {
        let h = try Harness()
        var s = try h.opened(parameters: [KeyValue("options", "-c note=4111111111111111")])
        // A card number in a request's parameters, and a credential in its text.
        var request = PostgresRequest(text: "read analytics.orders", path: .extended)
        request.parameters = [Parameter(value: Array("4111111111111111".utf8), format: 0)]
        guard case .forward(let admitted)? = s.request(.postgres(request)).first else { Issue.record("allowed"); return }
        _ = s.request(line("password analytics.secret"))
        s.streamed(Array("4111 1111 1111 1111\n".utf8), stream: .stdin, exchange: admitted.exchange)
        s.responded(.postgres(PostgresResponse(commandTag: "", error: PostgresNotice(severity: "ERROR", sqlState: "XX000",
                                                                                    message: "token ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"))),
                    exchange: admitted.exchange)
        let events = try await h.finish(&s)
        let recorded = events.map { "\($0.payload)" }.joined(separator: "\n")
        #expect(!recorded.contains("4111111111111111") && !recorded.contains("4111 1111 1111 1111"))
        #expect(!recorded.contains("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"))
        #expect(!recorded.contains("password analytics.secret"), "a request carrying a credential is recorded withheld")
        #expect(events.sessionEnd?.counts?.errors == 1)
    }

    @Test func aCaptureThatCannotBeOpenedRefusesTheSession() throws {
        let h = try Harness()
        var s = ExchangeSession(settings: .init(target: "lines", protocolName: "lines", proxyID: "t", writerName: "t",
                                                captureDirectory: "/proc/tollgate-cannot-write-here", maxValueBytes: 64),
                                policies: h.store)
        let opening = s.identified(.init(subject: "ana", groups: ["analysts"], issuer: "i", clientAddress: "c", startMicros: 0))
        #expect(throws: CaptureError.self) { try opening.open(key: h.key, thread: h.thread) }
        let closing = s.captureFailed(CaptureError(.io, "cannot create"))
        #expect(closing.code == .unavailable && closing.reason == "recording-failed")
        #expect(s.phase == .ended)
        guard case .refuse? = s.request(line("read analytics.orders")).first else { Issue.record("a request after the refusal must be refused"); return }
    }

    @Test func aSessionEndedWhileItsCaptureWasOpeningClosesTheCapture() async throws {
        let h = try Harness()
        var s = h.session()
        let opening = s.identified(.init(subject: "ana", groups: ["analysts"], issuer: "i", clientAddress: "c", startMicros: 0))
        #expect(s.end(reason: "client-disconnect") == nil)
        let recorder = try opening.open(key: h.key, thread: h.thread)
        guard let finish = s.captureOpened(recorder) else { Issue.record("the capture must be closed"); return }
        #expect(await finish.run() == nil)
        let file = try CaptureFile(path: recorder.path)
        #expect(file.state.isSealed)
    }
}
