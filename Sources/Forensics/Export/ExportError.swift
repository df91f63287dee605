/// Why an export or a verification could not go on, with the exit status the tool gives it.
public struct ExportError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// A file could not be read or written (exit 2).
        case io
        /// A capture could not be read at all (exit 2).
        case capture
        /// The bundle or log cannot be read (exit 2).
        case unreadable
        /// Wrong arguments or selection (exit 2).
        case usage
        /// A check failed: a capture did not verify, nothing matched (exit 1).
        case check
    }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }

    public static func io(_ m: String) -> ExportError { ExportError(.io, m) }
    public static func capture(_ m: String) -> ExportError { ExportError(.capture, m) }
    public static func unreadable(_ m: String) -> ExportError { ExportError(.unreadable, m) }
    public static func usage(_ m: String) -> ExportError { ExportError(.usage, m) }
    public static func check(_ m: String) -> ExportError { ExportError(.check, m) }

    public var exitStatus: Int32 { kind == .check ? 1 : 2 }
    public var description: String { message }
}
