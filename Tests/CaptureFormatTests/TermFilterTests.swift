import CaptureFormat
import Foundation
import Testing

/// The writer skips the terms of a request or decision whose terms its block has already: each
/// block's filter must still be exactly the filter of all its events' terms.
@Suite struct TermFilterTests {
    static func request(_ table: String, schema: String = "public", kind: String = "select") -> Payload {
        .request(.postgres(PostgresRequest(text: "SELECT * FROM \(table)", path: .extended, fingerprint: "fp-\(table)",
                                           statementKinds: [kind], resources: [Resource(schema: schema, name: table, access: .read)])))
    }

    @Test func everyBlockHoldsTheTermsOfAllItsEvents() throws {
        try withTempDir { dir in
            // A few statements in turn (as pgbench's tpcb-like runs them), one whose resolved table
            // changes under the same fingerprint, and decisions that differ only in their rule.
            let cycle: [Payload] = [
                Self.request("accounts"), .decision(Decision(action: .allow, policy: "p", rule: "r1")),
                Self.request("tellers"), .decision(Decision(action: .allow, policy: "p", rule: "r1")),
                Self.request("accounts"), .decision(Decision(action: .allow, policy: "p", rule: "r2")),
                Self.request("accounts", schema: "audit"), .decision(Decision(action: .deny, policy: "p", rule: "r2")),
                Self.request("branches", kind: "update"), .decision(Decision(action: .allow, policy: "q", rule: "r1")),
            ]
            var events: [Event] = []
            for i in 0..<60 {
                events.append(Event(monotonicNanos: UInt64(i), wallMicros: 1_790_000_000_000_000 + Int64(i), exchangeID: UInt64(i / 2 + 1),
                                    payload: cycle[i % cycle.count]))
            }
            let path = dir.path("terms.sesscap")
            try writeCapture(events, to: path, key: SigningKey(), options: testOptions(blockTargetBytes: 700))
            let capture = try CaptureFile(path: path)
            // Blocks that start partway through the cycle: their first requests were in the block before too.
            #expect(capture.blocks.count >= 4)
            for block in capture.blocks {
                var terms: Set<String> = []
                for e in try capture.events(in: block) { SearchTerms.of(e, into: &terms) }
                #expect(block.filter == TermFilter(terms: terms), "block at \(block.offset)")
            }
        }
    }
}
