import CaptureFormat
import Foundation

/// Finds the capture a replay was made from, by the link `sessreplay` wrote in the replay's
/// header (`replay.of_session`, `replay.of_capture`, `replay.of_chain`), and checks that it is
/// that session: the same session id, the final chain hash the replay recorded (when it did),
/// and a capture whose hash chain and signatures verify. `sessdiff REPLAY` diffs against it.
public struct ReplayOriginal: Sendable {
    /// What the replay's header says about its original.
    public struct Link: Sendable, Equatable {
        public var session: String
        public var capture: String?
        public var chain: String?
    }

    public struct Problem: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public static func link(_ header: SessionHeader) -> Link? {
        let attributes = Dictionary(header.attributes.map { ($0.key, $0.value) }) { first, _ in first }
        guard let session = attributes["replay.of_session"], !session.isEmpty else { return nil }
        return Link(session: session, capture: attributes["replay.of_capture"].flatMap { $0.isEmpty ? nil : $0 },
                    chain: attributes["replay.of_chain"].flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The original of the replay at `replayPath`: `replay.of_capture` as recorded (absolute, or
    /// relative to the working directory), then relative to the replay's directory, then its file
    /// name there; then every capture under `directories`. The first that is the replayed session
    /// is returned; one that names the session but fails a check is an error (it was changed, or is
    /// another copy), never silently passed over for a later one.
    public static func find(replayPath: String, header: SessionHeader, directories: [String]) throws(Problem) -> String {
        guard let link = link(header) else {
            throw Problem(description: "\(replayPath) is not a replay (its header has no replay.of_session): give the original capture as A")
        }
        var looked: [String] = []
        var candidates: [String] = []
        if let recorded = link.capture {
            let replayDirectory = (replayPath as NSString).deletingLastPathComponent
            candidates.append(recorded)
            if !recorded.hasPrefix("/") { candidates.append((replayDirectory as NSString).appendingPathComponent(recorded)) }
            candidates.append((replayDirectory as NSString).appendingPathComponent((recorded as NSString).lastPathComponent))
        }
        for path in candidates where !looked.contains(path) {
            looked.append(path)
            guard FileManager.default.fileExists(atPath: path), let capture = try? CaptureFile(path: path),
                  capture.header.sessionID == link.session else { continue }
            try check(capture, link)
            return path
        }
        for directory in directories {
            looked.append(directory + "/**/*.sesscap")
            guard let walker = FileManager.default.enumerator(atPath: directory) else {
                throw Problem(description: "--original-dir \(directory): cannot read the directory")
            }
            for case let name as String in walker where name.hasSuffix(".sesscap") {
                let path = (directory as NSString).appendingPathComponent(name)
                guard path != replayPath, let capture = try? CaptureFile(path: path), capture.header.sessionID == link.session else { continue }
                try check(capture, link)
                return path
            }
        }
        throw Problem(description: "the original of \(replayPath) (session \(link.session)) was not found; looked at "
                      + (looked.isEmpty ? "nothing (the replay names no capture: give --original-dir DIR)" : looked.joined(separator: ", ")))
    }

    /// Why two captures that are both replays are not replays of one capture (another session, or
    /// the same session read at another final chain hash), or nil. The pt-upgrade workflow diffs
    /// two replays of one recording; two others may be diffed on purpose, so this is a warning.
    public static func notOneCapture(_ a: SessionHeader, _ b: SessionHeader) -> String? {
        guard let la = link(a), let lb = link(b) else { return nil }
        if la.session != lb.session {
            return "A is a replay of session \(la.session), B of session \(lb.session): not two replays of one capture"
        }
        if let ca = la.chain, let cb = lb.chain, ca != cb {
            return "A and B are replays of session \(la.session) read at different final chain hashes (\(ca.prefix(16))…, \(cb.prefix(16))…): not two replays of one capture"
        }
        return nil
    }

    /// The capture is the replayed session, unchanged since the replay read it.
    static func check(_ capture: CaptureFile, _ link: Link) throws(Problem) {
        if let chain = link.chain {
            guard let trailer = capture.trailer else {
                throw Problem(description: "\(capture.path): session \(link.session) but not sealed, where the replay read a sealed capture (final chain hash \(chain.prefix(16))…)")
            }
            let found = hex(trailer.finalChainHash)
            guard found == chain else {
                throw Problem(description: "\(capture.path): session \(link.session) but its final chain hash \(found.prefix(16))… is not the \(chain.prefix(16))… the replay read: the capture was changed or is another recording")
            }
        }
        let report = capture.verify()
        if let problem = report.firstProblem {
            throw Problem(description: "\(capture.path): session \(link.session) but it does not verify: \(problem)")
        }
    }
}
