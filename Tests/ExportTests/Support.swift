import CaptureFormat
@testable import Forensics
import Foundation
import TestSupport

/// A scratch directory for one test.
typealias Scratch = ScratchDirectory

/// A PostgreSQL session of `n` simple exchanges (request, decision, response), every tenth denied.
func postgresExchanges(_ n: Int) -> [(UInt64, Payload)] {
    var out: [(UInt64, Payload)] = []
    for i in 1...n {
        let x = UInt64(i)
        out.append((x, .request(.postgres(PostgresRequest(text: "SELECT id FROM analytics.users WHERE id = \(i)",
                                                         resources: [Resource(schema: "analytics", name: "users", access: .read)])))))
        let deny = i % 10 == 0
        out.append((x, .decision(Decision(action: deny ? .deny : .allow, policy: "p", rule: deny ? "no" : "yes"))))
        if !deny {
            out.append((x, .response(.postgres(PostgresResponse(columns: [Column(name: "id", typeOID: 23)], rows: [[Array("\(i)".utf8)]],
                                                                rowCount: 1, commandTag: "SELECT 1")))))
        }
    }
    return out
}

func event(_ x: UInt64, _ p: Payload, micros: Int64 = 1_790_000_000_000_000, nanos: UInt64 = 0) -> Event {
    Event(sequence: 0, monotonicNanos: nanos, wallMicros: micros, exchangeID: x, payload: p)
}
