import AdminAPI
import ArgumentParser
import Forensics
import Foundation

/// `capture-proxy grants list|revoke`: the just-in-time windows approvals opened (a rule's
/// `grant:`), over the admin API. Exit status as grep: 0 found or done, 1 nothing listed, 2 an error.
struct GrantsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grants",
        abstract: "List and revoke grants (just-in-time windows) through the gate's admin API.",
        discussion: """
            The token comes from $TOLLGATE_TOKEN or --token-file, never from an argument. The API is found with --admin URL, \
            --config FILE or $TOLLGATE_ADMIN_URL. Exit status: 0 found or done; 1 nothing listed; 2 on errors.
            """,
        subcommands: [List.self, Revoke.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Grants, newest first: live ones unless --all.")

        @OptionGroup var admin: AdminOptions

        @Flag(name: .long, help: "Revoked and expired grants too.")
        var all = false

        func run() async throws {
            let reply = try await admin.client().call(.GET, "/v1/grants" + (all ? "?all=true" : ""), action: "list grants")
            let list = try AdminReplyDecoding.decode(GrantListDocument.self, reply.body, action: "list grants")
            if admin.json {
                writeOut(reply.body)
            } else if list.grants.isEmpty {
                printError(all ? "no grants" : "no live grants")
            } else {
                print(ApprovalViews().grantTable(list.grants))
            }
            if list.grants.isEmpty { throw ExitCode(1) }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a grant before its time (its subject, or one of its rule's approvers).")

        @OptionGroup var admin: AdminOptions

        @Argument(help: "The grant's id (as `grants list` gives it).")
        var id: String

        @Option(name: .long, help: "Why (one line; the API requires it and keeps it with the grant and in the audit).")
        var reason: String

        func run() async throws {
            let action = "revoke \(Printable.line(id))"
            let body = try JSONEncoder().encode(["reason": reason])
            let reply = try await admin.client().call(.POST, "/v1/grants/\(id.pathSegment)/revoke", body: body, action: action)
            let grant = try AdminReplyDecoding.decode(GrantDocument.self, reply.body, action: action)
            if admin.json {
                writeOut(reply.body)
            } else {
                print("revoked: grant \(Printable.line(grant.id)) covers nothing from now on")
                print(ApprovalViews().grantDetail(grant))
            }
        }
    }
}
