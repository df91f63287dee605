import Forensics
import Foundation

/// Plays a `PlaybackSchedule` on standard output. On a terminal it reads keys without echo:
/// space pauses and resumes, `.` writes the next output while paused, `q` (or Ctrl-C) stops.
/// Without a terminal on standard input it only waits and writes.
struct TerminalPlayer {
    enum Outcome { case finished, stopped }

    let schedule: PlaybackSchedule
    let wait: Bool

    func play() -> Outcome {
        let keys = wait && isatty(STDIN_FILENO) == 1 ? KeyReader() : nil
        defer { keys?.restore() }
        var paused = false
        for step in schedule.steps {
            var remaining = wait ? step.delayNanos : 0
            waiting: while remaining > 0 || paused {
                guard let keys else {
                    var pause = timespec(tv_sec: Int(remaining / 1_000_000_000), tv_nsec: Int(remaining % 1_000_000_000))
                    nanosleep(&pause, nil)
                    break waiting
                }
                let started = DispatchTime.now().uptimeNanoseconds
                let key = keys.next(waitingNanos: paused ? nil : remaining)
                if !paused {
                    let waited = DispatchTime.now().uptimeNanoseconds - started
                    remaining = waited >= remaining ? 0 : remaining - waited
                }
                switch key {
                case .quit: return .stopped
                case .key(UInt8(ascii: "q")), .key(3): return .stopped
                case .key(UInt8(ascii: " ")): paused.toggle()
                case .key(UInt8(ascii: ".")) where paused: break waiting  // this output now; still paused
                default: break
                }
            }
            write(step.bytes)
        }
        return .finished
    }

    func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(STDOUT_FILENO, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue } else { return } }
                offset += n
            }
        }
    }
}

/// Standard input as single key presses: no line buffering, no echo, Ctrl-C as a byte (so the
/// terminal is restored before leaving). Output processing is left alone.
final class KeyReader {
    private var saved = termios()
    private let active: Bool

    init() {
        active = tcgetattr(STDIN_FILENO, &saved) == 0
        guard active else { return }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG)
        withUnsafeMutablePointer(to: &raw.c_cc) { cc in
            cc.withMemoryRebound(to: cc_t.self, capacity: Int(NCCS)) { $0[Int(VMIN)] = 1; $0[Int(VTIME)] = 0 }
        }
        tcsetattr(STDIN_FILENO, TCSANOW, &raw)
    }

    enum Input: Equatable { case key(UInt8), quit }

    /// The next key within `waitingNanos` (nil: wait for one), nil when none came, `.quit` when
    /// the terminal is gone.
    func next(waitingNanos: UInt64?) -> Input? {
        var poller = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
        let timeout = waitingNanos.map { Int32(min($0 / 1_000_000 + ($0 % 1_000_000 == 0 ? 0 : 1), UInt64(Int32.max))) } ?? -1
        guard poll(&poller, 1, timeout) > 0 else { return nil }
        var byte: UInt8 = 0
        return read(STDIN_FILENO, &byte, 1) == 1 ? .key(byte) : .quit
    }

    func restore() {
        if active { tcsetattr(STDIN_FILENO, TCSANOW, &saved) }
    }
}
