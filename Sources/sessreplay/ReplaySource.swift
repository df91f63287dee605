import CaptureFormat
import Forensics
import Foundation

/// One recorded session read for replay: its header, startup parameters and planned steps, and
/// where reading stopped if the capture is damaged or cut off (its steps up to there are kept).
struct ReplaySource: Sendable {
    let path: String
    let header: SessionHeader
    let finalChainHash: String?
    let startupParameters: [KeyValue]
    var steps: [ReplayStep]
    let damage: String?

    struct Refused: Error, CustomStringConvertible { var description: String }

    static func load(path: String, options: ReplayOptions) throws -> ReplaySource {
        let capture: CaptureFile
        do {
            capture = try CaptureFile(path: path)
        } catch {
            if error.kind == .unsupported { throw Refused(description: "\(path): \(error.message) (a newer capture format: upgrade sessreplay)") }
            throw Refused(description: "\(path): \(error)")
        }
        // A newer minor version may mark withheld or masked values in fields this reader skips:
        // replaying it could re-send a masked value as if it were the original.
        guard capture.minorVersion <= CaptureLayout.minorVersion else {
            throw Refused(description: "\(path): capture format \(capture.majorVersion).\(capture.minorVersion) is newer than this sessreplay reads (1.\(CaptureLayout.minorVersion)); it could miss what the newer format marks as withheld. Upgrade sessreplay")
        }
        guard capture.header.protocolName == "postgres" else {
            throw Refused(description: "\(path): a \(capture.header.protocolName) session; a postgres:// --target replays PostgreSQL sessions (give an http(s):// --target)")
        }
        var parameters: [KeyValue] = []
        let (exchanges, damage) = ReplayCapture.exchanges(of: capture, keepsRows: true) { e in
            if case .sessionStart(let s) = e.payload { parameters = s.parameters }
        }
        return ReplaySource(path: path, header: capture.header, finalChainHash: capture.trailer.map { hex($0.finalChainHash) },
                            startupParameters: parameters, steps: ReplayPlanner.plan(exchanges, options: options, flagsRecorded: capture.minorVersion >= 4), damage: damage)
    }

    /// The indices of the steps that are replayed.
    var replayed: [Int] { steps.indices.filter { steps[$0].replays } }
}
