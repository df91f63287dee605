import Approvals
import Foundation
import Policy
import Testing

@Suite("approvals: the SQLite store")
struct StoreTests {
    let ana = person("ana", "dba")

    @Test func recordsReadBackAsWritten() async throws {
        let f = try Fixture(); defer { f.remove() }
        let store = try SQLiteApprovalStore(path: f.path)
        let t = Date(timeIntervalSince1970: 1_800_000_000.5)
        let requirement = ApprovalRequirement(clauses: [.init(groups: ["dba"], count: 2), .init(groups: ["security"])],
                                              timeout: .milliseconds(90_500), grant: .seconds(600))
        let approval = ApprovalRecord(
            id: "a1", session: "s-1", exchange: UInt64.max, target: "orders-db", subject: "ai-agent", subjectGroups: ["x", "y"],
            statement: "UPDATE t SET a = 'é\u{1F600}' WHERE id = $1", fingerprint: "fp", policy: "p", rule: "r",
            requirement: requirement, state: .approved, createdAt: t, deadline: t.addingTimeInterval(90.5), decidedAt: t.addingTimeInterval(3),
            outcomeReason: "", decisions: [ApproverDecision(verdict: .approve, approver: "ana", groups: ["dba"], reason: "why", at: t)],
            openedGrant: "g1")
        let grant = GrantRecord(id: "g1", approvalID: "a1", subject: "ai-agent", target: "orders-db", fingerprint: "fp", policy: "p", rule: "r",
                                approverGroups: ["dba", "security"], grantedBy: ["ana"], createdAt: t, expiresAt: t.addingTimeInterval(600))
        let entry = AuditEntry(at: t, actor: "ana", actorGroups: ["dba"], action: "approve", object: "a1", reason: "why", outcome: "done")
        try await store.write(StoreChange(approvals: [approval], grants: [grant], audit: [entry]))

        let back = try #require(try await store.approval("a1"))
        #expect(back == approval)
        #expect(back.requirement.timeout == .milliseconds(90_500) && back.requirement.grant == .seconds(600))
        #expect(try await store.grant("g1") == grant)
        var stored = entry
        stored.id = 1
        #expect(try await store.audit(limit: 10) == [stored])
        #expect(try await store.approvals(states: [.pending], limit: 10).isEmpty)
        #expect(try await store.approvals(states: [], limit: 10) == [approval])
        #expect(try await store.activeGrant(subject: "ai-agent", target: "orders-db", fingerprint: "fp", policy: "p", rule: "r",
                                            at: t.addingTimeInterval(599)) == grant)
        #expect(try await store.activeGrant(subject: "ai-agent", target: "orders-db", fingerprint: "fp", policy: "p", rule: "r",
                                            at: t.addingTimeInterval(600)) == nil)
    }

    @Test func theFileIsPrivateAndInWALMode() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1"))
        let mode = try FileManager.default.attributesOfItem(atPath: f.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // The real sqlite3 shell reads the store: the schema is plain SQL an operator can inspect.
        let out = try sqlite3(f.path, "PRAGMA journal_mode; SELECT id, state FROM approval;")
        #expect(out == "wal\na1|pending\n")
    }

    @Test func theAuditIsAppendOnly() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1"))
        try await f.approvals.approve("a1", by: ana, reason: "ok")
        #expect(throws: (any Error).self) { try sqlite3(f.path, "DELETE FROM admin_audit;") }
        #expect(throws: (any Error).self) { try sqlite3(f.path, "UPDATE admin_audit SET actor = 'mallory';") }
        #expect(try await f.approvals.audit().map(\.actor) == ["ana"])
    }

    @Test func aRestartKeepsGrantsAndDecidedApprovalsAndAbandonsPendingOnes() async throws {
        let f = try Fixture(); defer { f.remove() }
        let windowed = ApprovalRequirement(anyOf: ["dba"], grant: .seconds(1800))
        try await f.approvals.request(hold("decided", requirement: windowed))
        let grantID = try #require(try await f.approvals.approve("decided", by: ana, reason: "ok").grantID)
        try await f.approvals.request(hold("waiting", fingerprint: "fp-other"))

        let restarted = try f.reopened()
        #expect(try await restarted.start() == ["waiting"])
        let waiting = try #require(try await restarted.approval("waiting"))
        #expect(waiting.state == .abandoned && waiting.outcomeReason.contains("client is gone"))
        #expect(try await restarted.outcome("waiting").capture?.state == .abandoned)
        #expect(await refusal { try await restarted.approve("waiting", by: ana, reason: "r") } == .notPending("waiting", .abandoned))
        #expect(try await restarted.approval("decided")?.state == .approved)
        #expect(try await restarted.grants().map(\.id) == [grantID])
        #expect(try await restarted.request(hold("again", requirement: windowed)).kind == .reusedGrant, "the live grant survived the restart")
        // A second start abandons nothing: what is pending now is this process's own.
        try await restarted.request(hold("new", fingerprint: "fp-new"))
        #expect(try await restarted.start() == [])
        #expect(try await SQLiteApprovalStore(path: f.path).approval("new")?.state == .pending)
        // Newest first: the refused attempt after the restart, then the approval before it.
        #expect(try await restarted.audit().map(\.outcome) == ["refused: approval waiting is abandoned, no longer pending", "done"])
    }

    @Test func aCorruptedFileGivesAClearError() throws {
        let f = try Fixture(); defer { f.remove() }
        let path = f.directory.appendingPathComponent("garbage.sqlite").path
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: ApprovalStoreError.self) { try SQLiteApprovalStore(path: path) }
        #expect(error?.kind == .notAStore)
        #expect(error?.description.contains(path) == true && error?.description.contains("not an approvals database") == true)
    }

    @Test func anUnwritablePlaceGivesAClearError() throws {
        let f = try Fixture(); defer { f.remove() }
        // A regular file where the directory should be: not even root can create the store there.
        let blocker = f.directory.appendingPathComponent("not-a-directory")
        try Data("x".utf8).write(to: blocker)
        let path = blocker.appendingPathComponent("approvals.sqlite").path
        let error = #expect(throws: ApprovalStoreError.self) { try SQLiteApprovalStore(path: path) }
        #expect(error?.kind == .cannotOpen)
        #expect(error?.description.contains(path) == true && error?.description.contains("cannot create") == true)
    }

    @Test func aStoreWrittenByANewerGateIsRefused() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1"))
        _ = try sqlite3(f.path, "INSERT INTO grdb_migrations VALUES ('v99: from the future');")
        let error = #expect(throws: ApprovalStoreError.self) { try SQLiteApprovalStore(path: f.path) }
        #expect(error?.kind == .newerSchema)
    }
}

/// Runs the sqlite3 shell on the store; throws if it fails.
@discardableResult
func sqlite3(_ path: String, _ sql: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
    p.arguments = [path, sql]
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    _ = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    struct Failed: Error { let status: Int32 }
    guard p.terminationStatus == 0 else { throw Failed(status: p.terminationStatus) }
    return String(decoding: data, as: UTF8.self)
}

@Suite("approvals: a store that refuses a write")
struct StoreFailureTests {
    @Test func aDecisionTheStoreCannotKeepApprovesNothing() async throws {
        let f = try Fixture(); defer { f.remove() }
        try await f.approvals.request(hold("a1"))
        // The real sqlite3 shell takes the store's write lock and keeps it.
        let locker = try SQLiteShell(f.path)
        try locker.run("BEGIN EXCLUSIVE;")
        let error = await refusal { try await f.approvals.approve("a1", by: person("ana", "dba"), reason: "ok") }
        guard case .store(let storeError)? = error else {
            Issue.record("expected a store error, got \(String(describing: error))")
            return
        }
        #expect(storeError.kind == .io && storeError.description.contains(f.path))
        let record = try #require(try await f.approvals.approval("a1"))
        #expect(record.state == .pending && record.decisions.isEmpty, "nothing was approved")
        try locker.run("COMMIT;")
        locker.close()
        #expect(try await f.approvals.approve("a1", by: person("ana", "dba"), reason: "ok").kind == .approved)
    }
}

/// An interactive sqlite3 shell on the store: each `run` returns once the shell has executed it.
final class SQLiteShell {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()

    init(_ path: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = ["-batch", path]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    /// Runs `sql`, then waits for a marker the shell prints after it.
    func run(_ sql: String) throws {
        input.fileHandleForWriting.write(Data("\(sql)\nSELECT 'done-marker';\n".utf8))
        var seen = ""
        while !seen.contains("done-marker") {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw CocoaError(.fileReadUnknown) }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        if seen.contains("Error") || seen.contains("error") { throw CocoaError(.fileWriteUnknown) }
    }

    func close() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
