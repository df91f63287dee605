import CaptureFormat
import Foundation
import Testing

/// Format 1.3's approval states (withdrawn, abandoned, reused): distinct for 1.3 readers, and
/// read by a 1.2 reader as 1.2 writers recorded them (field 1), with the same term filter.
@Suite struct ApprovalStateTests {
    static let new: [Approval] = [
        Approval(state: .withdrawn, approvalID: "ap-4", reason: "withdrawn: cancelled by the client"),
        Approval(state: .abandoned, approvalID: "ap-5", reason: "the gate stopped while it waited; its client is gone"),
        Approval(state: .reused, approvalID: "ap-6", by: "dba@example.com", reason: "grant g-1 from approval ap-1", grantID: "g-1"),
    ]

    /// The encoding without the fields a 1.2 reader does not know (6, the state; 7, the grant):
    /// what its `Approval(wire:)`, which skips unknown tags, takes from the bytes.
    static func asOneTwoReads(_ bytes: [UInt8]) throws -> [UInt8] {
        var out = WireWriter()
        try bytes.withUnsafeBytes { raw in
            var r = WireReader(raw)
            while let (tag, type) = try r.nextField() {
                switch tag {
                case 1: out.uint(1, try r.uint(type))
                case 2, 3, 4, 5: out.string(tag, try r.string(type))
                default: try r.skip(type)
                }
            }
        }
        return out.bytes
    }

    @Test(arguments: new)
    func roundTripsAndReadsAsOneTwoDid(_ approval: Approval) throws {
        let bytes = approval.encoded()
        #expect(try Approval(decoding: bytes) == approval)
        let old = try Approval(decoding: try Self.asOneTwoReads(bytes))
        #expect(old.state == approval.state.legacy)
        #expect(old.state == (approval.state == .reused ? .granted : .expired))
        #expect(old.approvalID == approval.approvalID && old.by == approval.by && old.reason == approval.reason && old.grantID.isEmpty)
        // The block's term filter is what a 1.2 reader recomputes for it: its verify holds.
        var newTerms = Set<String>(), oldTerms = Set<String>()
        SearchTerms.of(Event(sequence: 1, monotonicNanos: 0, wallMicros: 0, exchangeID: 1, payload: .approval(approval)), into: &newTerms)
        SearchTerms.of(Event(sequence: 1, monotonicNanos: 0, wallMicros: 0, exchangeID: 1, payload: .approval(old)), into: &oldTerms)
        #expect(newTerms == oldTerms)
    }

    /// Files of 1.2 and before keep their meaning: a withdrawn request recorded as expired stays expired.
    @Test func oneTwoBytesReadAsBefore() throws {
        var w = WireWriter()
        w.uint(1, 4); w.string(2, "ap-9"); w.string(4, "withdrawn: the client went away")
        #expect(try Approval(decoding: w.bytes) == Approval(state: .expired, approvalID: "ap-9", reason: "withdrawn: the client went away"))
    }

    /// A refinement this reader does not know, or one that contradicts field 1, leaves field 1's reading.
    @Test func anUnknownOrContradictoryRefinementKeepsFieldOne() throws {
        for (field1, field6) in [(UInt64(4), UInt64(42)), (3, 7), (2, 5)] {
            var w = WireWriter()
            w.uint(1, field1); w.string(2, "ap-1"); w.uint(6, field6)
            #expect(try Approval(decoding: w.bytes).state.rawValue == UInt8(field1))
        }
    }

    /// A whole capture with the new states (since minor version 3), read back, verified.
    @Test func aCaptureWithTheNewStatesVerifies() throws {
        try withTempDir { dir in
            let path = dir.path("states.sesscap")
            let events = Self.new.enumerated().map { i, a in
                Event(sequence: 0, monotonicNanos: UInt64(i), wallMicros: 1_790_000_000_000_000 + Int64(i), exchangeID: UInt64(i + 1), payload: .approval(a))
            }
            try writeCapture(events, to: path, key: SigningKey(), options: testOptions())
            let capture = try CaptureFile(path: path)
            #expect(capture.minorVersion >= 3)
            #expect(try allEvents(capture).map(\.payload) == Self.new.map { .approval($0) })
            #expect(capture.verify().isValid)
        }
    }
}
