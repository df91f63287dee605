import Foundation

/// Where the gate keeps approvals, grants and the admin audit, and where approvers act
/// (`approvals:` in the configuration; every field optional).
public struct ApprovalsSettings: Sendable {
    /// The SQLite file; default: approvals.sqlite in the capture directory.
    public var store: String
    /// The approvals page (the admin API's `/approvals`, as approvers reach it): held clients are told.
    public var pageURL: URL?

    public init(store: String, pageURL: URL? = nil) {
        self.store = store; self.pageURL = pageURL
    }

    static func parse(_ node: ConfigNode?, captureDirectory: String, resolve: (String) -> String) throws -> ApprovalsSettings {
        let defaultStore = (captureDirectory as NSString).appendingPathComponent("approvals.sqlite")
        guard let node else { return ApprovalsSettings(store: defaultStore) }
        let f = try node.fields(["store", "page_url"])
        var page: URL?
        if let pageNode = f["page_url"] {
            guard let url = URL(string: try pageNode.string()), ["http", "https"].contains(url.scheme ?? "") else {
                throw pageNode.error("invalid 'page_url' (an http or https URL)")
            }
            page = url
        }
        return ApprovalsSettings(store: try f["store"].map { resolve(try $0.string()) } ?? defaultStore, pageURL: page)
    }
}
