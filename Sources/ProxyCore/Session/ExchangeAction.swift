import CaptureFormat
import Foundation
import Masking
import Policy

/// What an adapter does with a request or a session.
public enum ExchangeAction: Sendable, Equatable {
    /// Send the request on; its responses are masked with what admission found.
    case forward(Admitted)
    /// Answer the request with this error in place of the upstream's answer.
    case refuse(exchange: UInt64, message: String)
    /// The request waits for an approver: tell the client where (and keep what follows it waiting).
    case hold(Hold)
    case pauseReading(ReadingSide)
    case resumeReading(ReadingSide)
    /// Strict recording: keep what this flush would send upstream under this ticket, unsent.
    case holdUpstream(ticket: UInt64)
    /// Strict recording: send what was held, in order, up to and including this ticket.
    case releaseUpstream(through: UInt64)
}

/// What an admitted request's responses need: where computed and streamed columns come from.
public struct Admitted: Sendable, Equatable {
    public var exchange: UInt64
    public var projections: [Projection]
    public var rowStreams: [RowStreamLayout]
}

/// A request waiting for an approver.
public struct Hold: Sendable, Equatable {
    public var approvalID: String
    public var exchange: UInt64
    public var decision: Decision
    /// Who may approve it, how many, how long it waits.
    public var approval: ApprovalRequirement
    /// Groups whose members may approve it.
    public var approvers: [String] { approval.groups }
    /// The statement as the capture records it (what the approver is shown: never a credential).
    public var statement: String = ""
    /// Where a grant applies: the statement's fingerprint (its normalized shape).
    public var fingerprint: String = ""
}
