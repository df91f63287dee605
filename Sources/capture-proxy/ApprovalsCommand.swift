import AdminAPI
import ArgumentParser
import Forensics
import Foundation

/// `capture-proxy approvals list|show|approve|deny`: the approver's side of held requests,
/// over the admin API (docs/admin-api.md). Exit status as grep: 0 found or done, 1 nothing
/// listed, 2 an error (the API's message and what was attempted).
struct ApprovalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals",
        abstract: "List, show, approve and deny held requests through the gate's admin API.",
        discussion: """
            The token comes from $TOLLGATE_TOKEN or --token-file, never from an argument. The API is found with --admin URL, \
            --config FILE or $TOLLGATE_ADMIN_URL. Exit status: 0 found or done; 1 nothing listed; 2 on errors.
            """,
        subcommands: [List.self, Show.self, Approve.self, Deny.self]
    )

    static let states = ["pending", "decided", "approved", "denied", "expired", "withdrawn", "abandoned"]

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approvals, newest first: pending ones unless --all or --state.")

        @OptionGroup var admin: AdminOptions

        @Flag(name: .long, help: "Every approval, whatever its state.")
        var all = false

        @Option(name: .long, help: ArgumentHelp("Only approvals in this state: \(ApprovalsCommand.states.joined(separator: ", ")).", valueName: "STATE"))
        var state: String?

        func validate() throws {
            if all, state != nil { throw ValidationError("give --all or --state, not both") }
            if let state, !ApprovalsCommand.states.contains(state) {
                throw ValidationError("unknown state '\(state)' (\(ApprovalsCommand.states.joined(separator: ", ")))")
            }
        }

        func run() async throws {
            let filter = all ? "all" : (state ?? "pending")
            let reply = try await admin.client().call(.GET, "/v1/approvals?state=\(filter)", action: "list approvals (\(filter))")
            let list = try AdminReplyDecoding.decode(ApprovalListDocument.self, reply.body, action: "list approvals")
            if admin.json {
                writeOut(reply.body)
            } else if list.approvals.isEmpty {
                printError("no \(filter == "all" ? "" : filter + " ")approvals")
            } else {
                print(ApprovalViews().approvalTable(list.approvals))
            }
            if list.approvals.isEmpty { throw ExitCode(1) }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One approval: statement, subject, target, rule, approvers, time left, decisions.")

        @OptionGroup var admin: AdminOptions

        @Argument(help: "The approval's id (as the client's notice and `approvals list` give it).")
        var id: String

        func run() async throws {
            let reply = try await admin.client().call(.GET, "/v1/approvals/\(id.pathSegment)", action: "show \(Printable.line(id))")
            try printApproval(reply, admin: admin, action: "show \(Printable.line(id))", headline: nil)
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a held request (as one of its rule's approvers, never your own request).")

        @OptionGroup var admin: AdminOptions

        @Argument(help: "The approval's id.")
        var id: String

        @Option(name: .long, help: "Why (one line; recorded in the capture, the audit and the client's error on a denial).")
        var reason: String

        func run() async throws { try await decide(admin: admin, id: id, reason: reason, verb: "approve") }
    }

    struct Deny: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deny a held request: its client gets SQLSTATE 42501 with your reason and name.")

        @OptionGroup var admin: AdminOptions

        @Argument(help: "The approval's id.")
        var id: String

        @Option(name: .long, help: "Why (one line; the client is told it).")
        var reason: String

        func run() async throws { try await decide(admin: admin, id: id, reason: reason, verb: "deny") }
    }

    static func decide(admin: AdminOptions, id: String, reason: String, verb: String) async throws {
        let action = "\(verb) \(Printable.line(id))"
        let body = try JSONEncoder().encode(["reason": reason])
        let reply = try await admin.client().call(.POST, "/v1/approvals/\(id.pathSegment)/\(verb)", body: body, action: action)
        try printApproval(reply, admin: admin, action: action, headline: { approval in
            switch approval.state {
            case "pending": "\(verb == "approve" ? "approved" : "denied") by you; still pending: the rule needs more approvers (\(Printable.line(approval.requirement)))"
            default: "\(verb == "approve" ? "approved" : "denied"): approval \(Printable.line(approval.id)) is now \(Printable.line(approval.state))"
            }
        })
    }
}

/// An approval document: as the API sent it with --json, else a headline and the detail view.
func printApproval(_ reply: AdminClient.Reply, admin: AdminOptions, action: String,
                   headline: ((ApprovalDocument) -> String)?) throws {
    let approval = try AdminReplyDecoding.decode(ApprovalDocument.self, reply.body, action: action)
    if admin.json {
        writeOut(reply.body)
        return
    }
    if let headline { print(headline(approval)) }
    print(ApprovalViews().approvalDetail(approval))
}

/// The API's JSON document on standard output, as it came (one document, ending in a newline).
func writeOut(_ body: Data) {
    FileHandle.standardOutput.write(body)
    if body.last != 0x0A { FileHandle.standardOutput.write(Data([0x0A])) }
}

extension AdminOptions {
    func client() throws -> AdminClient {
        AdminClient(endpoint: try endpoint(), token: try token(), timeout: timeout)
    }
}
