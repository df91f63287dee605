import CaptureFormat
import Foundation
import Synchronization

/// The last few exchanges of each open session, as its capture records them (the request text
/// after masking and withholding, the decision, the response's tag or SQLSTATE: never a row),
/// for the approvals page to show beside a held request. Only sessions of a gate that serves the
/// page feed it; the session's end forgets it.
public final class RecentExchanges: Sendable {
    public struct Entry: Sendable, Equatable {
        public var exchange: UInt64
        public var at: Date
        public var text: String
        /// allow, deny or review, with the rule that decided.
        public var decision: String
        public var rule: String
        /// The command tag, or the error's SQLSTATE and message; empty until the response ends.
        public var outcome: String
    }

    public static let perSession = 10
    /// Statements longer than this are kept cut (the page shows context, the capture has it all).
    static let maximumText = 2000

    let sessions = Mutex<[String: [Entry]]>([:])

    public init() {}

    func decided(session: String, exchange: UInt64, text: String, decision: Decision) {
        let entry = Entry(exchange: exchange, at: Date(), text: text.count > Self.maximumText ? String(text.prefix(Self.maximumText)) + "…" : text,
                          decision: decision.action.name, rule: decision.policy + " / " + decision.rule, outcome: "")
        sessions.withLock { all in
            all[session, default: []].append(entry)
            if all[session]!.count > Self.perSession { all[session]!.removeFirst() }
        }
    }

    func responded(session: String, exchange: UInt64, outcome: String) {
        sessions.withLock { all in
            guard let i = all[session]?.lastIndex(where: { $0.exchange == exchange }) else { return }
            all[session]![i].outcome = outcome
        }
    }

    /// The session's recent exchanges, oldest first.
    public func recent(_ session: String) -> [Entry] { sessions.withLock { $0[session] ?? [] } }

    public func forget(_ session: String) { _ = sessions.withLock { $0.removeValue(forKey: session) } }
}
