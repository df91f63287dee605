import CaptureFormat
import Foundation

// The evidence bundle's manifest (`manifest.json`): what the bundle holds, who made it,
// and what every capture looked like when it was exported. One Codable model is used to
// write it and to read it back in `sessexport verify`, so the two cannot drift apart.
// Keys are snake_case (explicit CodingKeys) and sorted, so the same bundle always gives the same bytes.

/// The bundle format this code writes and reads. Bump `version` on an incompatible change.
public enum BundleFormat {
    public static let name = "tollgate-evidence-bundle"
    public static let version = 1
    /// The tool's version, recorded in manifests and custody entries.
    public static let toolVersion = "0.1.0"
    /// Version of the open-format renderers (events.jsonl, CSV, SQL, HAR, asciicast). `verify`
    /// re-renders them from the captures only when the bundle was made by the same version;
    /// bump it whenever any renderer's output changes.
    public static let renderVersion = 1
    public static let manifestName = "manifest.json"
    public static let signatureName = "manifest.sig"
    public static let exporterKeyName = "exporter-public.pem"
    public static let reportName = "report.html"
    /// Ed25519 signs manifest.json's exact bytes with no prefix, so that
    /// `openssl pkeyutl -verify -rawin` checks it without this tool.
}

public struct Manifest: Codable, Sendable, Equatable {
    public var format: String = BundleFormat.name
    public var formatVersion: Int = BundleFormat.version
    public var tool: ToolInfo
    public var created: String
    public var exporter: ExporterInfo
    public var `case`: CaseInfo?
    /// The selection as given on the command line (paths, session ids, filters).
    public var selection: [String]
    public var custody: CustodyReference?
    /// Every key that signed something in the bundle's captures.
    public var signingKeys: [KeyInfo]
    /// Every file of the bundle except manifest.json and manifest.sig, sorted by path.
    public var files: [FileEntry]
    public var sessions: [SessionEntry]

    public init(tool: ToolInfo, created: String, exporter: ExporterInfo, case: CaseInfo?, selection: [String],
                custody: CustodyReference?, signingKeys: [KeyInfo], files: [FileEntry], sessions: [SessionEntry]) {
        self.tool = tool; self.created = created; self.exporter = exporter; self.case = `case`
        self.selection = selection; self.custody = custody; self.signingKeys = signingKeys
        self.files = files; self.sessions = sessions
    }

    /// The exact bytes written to manifest.json (and signed): sorted keys, two-space indentation, final newline.
    public func encoded() throws -> [UInt8] {
        Array(try Manifest.encoder().encode(self)) + [0x0A]
    }

    public static func decode(_ bytes: Data) throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: bytes)
    }

    static func encoder() -> JSONEncoder {
        // No key strategy: it would also rewrite dictionary keys (detector names such as credit_card).
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return e
    }

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format_version"
        case tool
        case created
        case exporter
        case `case`
        case selection
        case custody
        case signingKeys = "signing_keys"
        case files
        case sessions
    }
}

public struct ToolInfo: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    public var renderVersion: Int
    /// Capture format versions this tool reads (major.minor of CaptureFormat).
    public var captureFormat: String

    public static let current = ToolInfo(name: "sessexport", version: BundleFormat.toolVersion, renderVersion: BundleFormat.renderVersion,
                                         captureFormat: "\(CaptureLayout.majorVersion).\(CaptureLayout.minorVersion)")

    enum CodingKeys: String, CodingKey {
        case name
        case version
        case renderVersion = "render_version"
        case captureFormat = "capture_format"
    }
}

/// Who exported: the name they gave, the account and machine it ran on, and the key that signed.
public struct ExporterInfo: Codable, Sendable, Equatable {
    public var name: String
    public var user: String
    public var uid: UInt32
    public var host: String
    public var keyId: String
    public var publicKeyPem: String

    enum CodingKeys: String, CodingKey {
        case name
        case user
        case uid
        case host
        case keyId = "key_id"
        case publicKeyPem = "public_key_pem"
    }
}

public struct CaseInfo: Codable, Sendable, Equatable {
    public var id: String?
    public var note: String?

    public init(id: String?, note: String?) { self.id = id; self.note = note }
}

/// Where this export was entered in the custody log, and the entry before it.
public struct CustodyReference: Codable, Sendable, Equatable {
    public var log: String
    public var entry: Int
    /// SHA-256 of the previous entry's line (64 zeros for the first entry).
    public var previousEntrySha256: String

    enum CodingKeys: String, CodingKey {
        case log
        case entry
        case previousEntrySha256 = "previous_entry_sha256"
    }
}

public struct KeyInfo: Codable, Sendable, Equatable {
    public var keyId: String
    public var publicKeyPem: String
    /// `capture-signer` (signed the events blocks), `sealer` (sealed a footer: the proxy, or a recovery).
    public var roles: [String]
    public var sessions: [String]

    enum CodingKeys: String, CodingKey {
        case keyId = "key_id"
        case publicKeyPem = "public_key_pem"
        case roles
        case sessions
    }
}

public struct FileEntry: Codable, Sendable, Equatable {
    public var path: String
    public var sha256: String
    public var size: UInt64
    /// capture, report, key, events, exchanges-csv, sql, har, asciicast
    public var kind: String
    public var session: String?
}

public struct SessionEntry: Codable, Sendable, Equatable {
    public var session: String
    /// The capture's path in the bundle.
    public var capture: String
    /// Where the capture was read from at export time.
    public var sourcePath: String
    public var captureFormat: String
    public var subject: String
    public var groups: [String]
    public var issuer: String
    public var target: String
    public var `protocol`: String
    public var proxy: String
    public var writer: String
    public var start: String
    public var firstEvent: String?
    public var lastEvent: String?
    public var events: UInt64
    public var exchanges: UInt64
    public var errors: UInt64
    public var kinds: [String: UInt64]
    public var decisions: [String: UInt64]
    public var approvals: [String: UInt64]
    public var masked: [String: UInt64]
    public var resources: [String]
    public var requestBytes: UInt64
    public var responseBytes: UInt64
    public var endReason: String
    public var integrity: Integrity
    /// The open-format files rendered from this capture (paths in the bundle).
    public var files: [String]

    enum CodingKeys: String, CodingKey {
        case session
        case capture
        case sourcePath = "source_path"
        case captureFormat = "capture_format"
        case subject
        case groups
        case issuer
        case target
        case `protocol`
        case proxy
        case writer
        case start
        case firstEvent = "first_event"
        case lastEvent = "last_event"
        case events
        case exchanges
        case errors
        case kinds
        case decisions
        case approvals
        case masked
        case resources
        case requestBytes = "request_bytes"
        case responseBytes = "response_bytes"
        case endReason = "end_reason"
        case integrity
        case files
    }
}

/// A capture's integrity as the CaptureFormat verifier found it.
public struct Integrity: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        /// Sealed by its writer; every check holds.
        case clean
        /// A sealed copy made by `sessinfo --recover`: blocks signed by the writer, footer by the recoverer.
        case recovered
        /// Not sealed: the file was cut (crash, full disk, copied while live); every complete block verifies.
        case truncated
    }
    public var state: State
    public var blocks: Int
    public var events: UInt64
    /// Sequence numbers run from 1 to this, without gaps.
    public var lastSequence: UInt64
    public var signerKeyId: String
    public var sealerKeyId: String?
    /// Whether the signer was checked against a key pinned with --capture-key.
    public var keyPinned: Bool
    public var fileLength: UInt64
    /// For a truncated capture: where its complete blocks end, and why the rest is not a block.
    public var completeLength: UInt64?
    public var cut: String?
    /// For a recovered copy: what the recovery recorded.
    public var recovery: RecoveryRecord?

    enum CodingKeys: String, CodingKey {
        case state
        case blocks
        case events
        case lastSequence = "last_sequence"
        case signerKeyId = "signer_key_id"
        case sealerKeyId = "sealer_key_id"
        case keyPinned = "key_pinned"
        case fileLength = "file_length"
        case completeLength = "complete_length"
        case cut
        case recovery
    }
}

public struct RecoveryRecord: Codable, Sendable, Equatable {
    public var originalLength: UInt64
    public var keptLength: UInt64
    public var reason: String
    public var recovered: String

    enum CodingKeys: String, CodingKey {
        case originalLength = "original_length"
        case keptLength = "kept_length"
        case reason
        case recovered
    }
}
