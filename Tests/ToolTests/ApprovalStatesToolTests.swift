import CaptureFormat
import Foundation
import TestSupport
import Testing

/// Capture format 1.3's approval states through the tools: sessinfo lists them, sessgrep finds
/// them by `--decision` and shows them as the outcome, sessexport's exchanges carry them.
@Suite("approval states in the tools")
struct ApprovalStatesToolTests {
    /// x1 withdrawn, x2 abandoned, x3 a reused grant, x4 expired, x5 approved (opening the grant).
    static func capture(_ path: String, key: SigningKey) throws {
        let start = nowMicros() - 3_600_000_000
        let header = SessionHeader(sessionID: "e19e19e1-0000-4000-8000-000000000019", target: "orders-db", protocolName: "postgres",
                                   subject: "agent@example.com", groups: ["ai-assistants"], proxyID: "gate-1", startMicros: start)
        var options = WriterOptions()
        options.durability = .none
        let writer = try CaptureWriter(path: path, header: header, key: key, options: options)
        var t = start
        func add(_ p: Payload, _ x: UInt64) throws {
            t += 1000
            try writer.append(Event(monotonicNanos: UInt64(t - start) * 1000, wallMicros: t, exchangeID: x, payload: p))
        }
        let outcomes: [Approval] = [
            Approval(state: .withdrawn, approvalID: "apr-w", reason: "withdrawn: cancelled by the client"),
            Approval(state: .abandoned, approvalID: "apr-a", reason: "the gate stopped while it waited; its client is gone"),
            Approval(state: .reused, approvalID: "apr-r", by: "dba@example.com", reason: "grant g-19 from approval apr-g", grantID: "g-19"),
            Approval(state: .expired, approvalID: "apr-e", reason: "not approved within 5m"),
            Approval(state: .granted, approvalID: "apr-g", by: "dba@example.com", reason: "ticket 19", grantID: "g-19"),
        ]
        for (i, outcome) in outcomes.enumerated() {
            let x = UInt64(i + 1)
            try add(.request(.postgres(PostgresRequest(text: "UPDATE orders SET status = 'x' WHERE id = \(x)", fingerprint: "fp-update",
                                                       statementKinds: ["update"]))), x)
            try add(.decision(Decision(action: .review, policy: "p", rule: "writes")), x)
            try add(.approval(Approval(state: .requested, approvalID: outcome.approvalID, approverGroups: ["dba"])), x)
            try add(.approval(outcome), x)
            if outcome.state.runs { try add(.response(.postgres(PostgresResponse(rowCount: 1, commandTag: "UPDATE 1"))), x) }
        }
        try writer.close()
    }

    @Test func sessinfoSessgrepAndSessexportShowEachState() throws {
        let scratch = try ScratchDirectory("approval-states")
        defer { scratch.remove() }
        let path = scratch.path("states.sesscap")
        let key = SigningKey()
        try Self.capture(path, key: key)

        let events = try sessinfo(["--events", path])
        #expect(events.status == 0, "\(events.stderr)")
        #expect(events.stdout.contains("withdrawn apr-w: withdrawn: cancelled by the client"), "\(events.stdout)")
        #expect(events.stdout.contains("abandoned apr-a: the gate stopped"), "\(events.stdout)")
        #expect(events.stdout.contains("reused apr-r by dba@example.com: grant g-19 from approval apr-g [grant g-19]"), "\(events.stdout)")
        #expect(events.stdout.contains("granted apr-g by dba@example.com: ticket 19 [grant g-19]"), "\(events.stdout)")
        let json = try jsonLines(try sessinfo(["--events", "--json", "--kind", "approval", path]).stdout)
        let states = json.compactMap { $0["state"] as? String }
        #expect(states.filter { $0 != "requested" } == ["withdrawn", "abandoned", "reused", "expired", "granted"], "\(json)")
        #expect(json.first { $0["state"] as? String == "reused" }?["grant_id"] as? String == "g-19")
        let verify = try sessinfo(["--verify", path])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(try sessinfo([path]).stdout.contains("Tollgate capture 1.\(CaptureLayout.minorVersion)"))

        // --decision finds each state on its own; expired is only the timeout.
        for (outcome, exchanges) in [("withdrawn", ["e19e19e1:x1"]), ("abandoned", ["e19e19e1:x2"]), ("reused", ["e19e19e1:x3"]),
                                     ("expired", ["e19e19e1:x4"]), ("approved", ["e19e19e1:x5"])] {
            let r = try sessgrep(["--decision", outcome, "-e", "", path])
            #expect(ids(r) == exchanges, "--decision \(outcome): \(r.stdout)\(r.stderr)")
        }
        // The outcome column names the state.
        let lines = try sessgrep(["-e", "", path]).stdout.split(separator: "\n")
        #expect(lines.count == 5)
        for (line, outcome) in zip(lines, ["withdrawn", "abandoned", "reused", "expired", "approved"]) {
            #expect(line.contains(" \(outcome) "), "\(line)")
        }

        // sessexport: the exchanges' CSV names each state.
        let w = try ExportWorkspace()
        defer { w.remove() }
        try w.export("bundle", [path])
        let bundle = w.path("bundle")
        let csv = try FileManager.default.subpathsOfDirectory(atPath: bundle).filter { $0.hasSuffix("exchanges.csv") }
        let text = try String(contentsOfFile: bundle + "/" + (try #require(csv.first, "no exchanges.csv in \(bundle)")), encoding: .utf8)
        for state in ["withdrawn", "abandoned", "reused", "expired", "granted"] {
            #expect(text.contains(",\(state),"), "\(state) not in the CSV: \(text)")
        }
    }
}
