import Forensics
import Foundation

/// One session's replay, whatever the target's protocol.
protocol SessionReplaying {
    var index: Int { get }
    func run(start: ContinuousClock.Instant) async -> SessionOutcome
}

extension SessionReplayer: SessionReplaying {}
extension HTTPSessionReplayer: SessionReplaying {}

enum ReplayRun {
    /// Every session replayed concurrently, with a progress line on a terminal; the outcomes in
    /// session order.
    static func outcomes<R: SessionReplaying & Sendable>(of replayers: [R], total: Int, progress: ReplayProgress, terminal: Terminal,
                                              start: ContinuousClock.Instant) async -> [SessionOutcome] {
        let monitor = terminal.progress ? Task {
            while !Task.isCancelled {
                let done = progress.done
                let width = 30, filled = total == 0 ? width : done * width / total
                terminal.status("replaying [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(done)/\(total)")
                try? await Task.sleep(for: .milliseconds(200))
            }
        } : nil
        let outcomes = await withTaskGroup(of: (Int, SessionOutcome).self) { group in
            for r in replayers { group.addTask { (r.index, await r.run(start: start)) } }
            var all: [(Int, SessionOutcome)] = []
            for await o in group { all.append(o) }
            return all.sorted { $0.0 < $1.0 }.map(\.1)
        }
        monitor?.cancel()
        terminal.clearStatus()
        return outcomes
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
