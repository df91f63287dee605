import Foundation

/// What the admin API shows of a live session: who, where from, to which target, since when.
/// Never a token or a password.
public struct LiveSession: Sendable, Equatable, Codable {
    public var id: String
    public var target: String
    public var subject: String
    public var groups: [String]
    public var clientAddress: String
    public var applicationName: String
    public var started: Date

    public init(id: String, target: String, subject: String, groups: [String], clientAddress: String, applicationName: String,
                started: Date = Date()) {
        self.id = id; self.target = target; self.subject = subject; self.groups = groups
        self.clientAddress = clientAddress; self.applicationName = applicationName; self.started = started
    }

    enum CodingKeys: String, CodingKey {
        case id, target, subject, groups, started
        case clientAddress = "client_address", applicationName = "application_name"
    }
}
