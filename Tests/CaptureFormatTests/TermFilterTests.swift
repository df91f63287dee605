@testable import CaptureFormat
import Foundation
import Testing

/// The writer skips the terms of a request or decision whose terms its block has already: each
/// block's filter must still be exactly the filter of all its events' terms.
@Suite struct TermFilterTests {
    static func request(_ table: String, schema: String = "public", kind: String = "select") -> Payload {
        .request(.postgres(PostgresRequest(text: "SELECT * FROM \(table)", path: .extended, fingerprint: "fp-\(table)",
                                           statementKinds: [kind], resources: [Resource(schema: schema, name: table, access: .read)])))
    }

    /// Each block's filter is exactly the filter of its events' terms.
    func expectExactFilters(_ capture: CaptureFile) throws {
        for block in capture.blocks {
            var terms: Set<String> = []
            for e in try capture.events(in: block) { SearchTerms.of(e, into: &terms) }
            #expect(block.filter == TermFilter(terms: terms), "block at \(block.offset)")
        }
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
            try expectExactFilters(capture)
        }
    }

    /// More distinct statements in one block than the writer keeps to compare against: it starts
    /// over and must then add terms again, never drop them. The summary's resources, which skip
    /// repeated resource lists the same way, must still name every table.
    @Test func termsAndResourcesPastTheRecentValuesCapacity() throws {
        try withTempDir { dir in
            let tables = (0..<(RecentValues<RequestTerms>.capacity * 2 + 5)).map { "table\($0)" }
            var events: [Event] = []
            for round in 0..<3 {
                for (i, table) in tables.enumerated() {
                    let n = round * tables.count + i
                    events.append(Event(monotonicNanos: UInt64(n), wallMicros: 1_790_000_000_000_000 + Int64(n), exchangeID: UInt64(n + 1),
                                        payload: Self.request(table)))
                    events.append(Event(monotonicNanos: UInt64(n), wallMicros: 1_790_000_000_000_000 + Int64(n), exchangeID: UInt64(n + 1),
                                        payload: .decision(Decision(action: .allow, policy: "p", rule: "r\(i % 40)"))))
                }
            }
            let path = dir.path("many.sesscap")
            try writeCapture(events, to: path, key: SigningKey(), options: testOptions(blockTargetBytes: 6000))
            let capture = try CaptureFile(path: path)
            #expect(capture.blocks.count >= 3)
            try expectExactFilters(capture)
            #expect(capture.footer?.summary.resources == tables.map { "public.\($0)" }.sorted())
        }
    }

    @Test func recentValuesStartOverWhenFull() {
        var recent = RecentValues<Int>()
        let n = RecentValues<Int>.capacity
        var added: [Bool] = []
        for i in 0..<n { added.append(recent.insert(i)) }
        #expect(added.allSatisfy { $0 })
        added = []
        for i in 0..<n { added.append(recent.insert(i)) }
        #expect(added.allSatisfy { !$0 })
        // Full: a new value starts the list over, so an old one is new again (its work is redone).
        added = [recent.insert(n), recent.insert(0), recent.insert(n)]
        #expect(added == [true, true, false])
    }
}
