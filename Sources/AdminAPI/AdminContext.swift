import Hummingbird
import Identity

/// A request to the admin API, with the caller's identity once `BearerAuthentication` verified it.
public struct AdminContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: VerifiedIdentity?

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    /// Request bodies are small JSON documents (a reason, a decision).
    public var maxUploadSize: Int { 64 * 1024 }
}
