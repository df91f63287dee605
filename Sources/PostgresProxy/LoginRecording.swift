import CaptureFormat
import Foundation
import NIOCore
import NIOPosix
import ProxyCore
import Synchronization

/// Creates a session's capture at login (its dated directory, the file, the header and its
/// fsync) on NIO's blocking-I/O thread pool, never on the event loop: a slow or stalled disk
/// then delays that login only, not every session that shares its loop.
enum LoginRecording {
    static func openCapture(_ opening: CaptureOpening, key: SigningKey, thread: WriterThread, on loop: any EventLoop) -> EventLoopFuture<SessionRecorder> {
        NIOThreadPool.singleton.runIfActive(eventLoop: loop) {
            TestGate.waitOnce()
            return try opening.open(key: key, thread: thread)
        }
    }

    /// For the gate's tests only: with TOLLGATE_TEST_CAPTURE_GATE naming a FIFO, the first capture
    /// created waits until a writer opens it: a disk that stalls, on demand, for one login. It
    /// creates `<FIFO>.waiting` first, so that the test knows which login is the stalled one.
    enum TestGate {
        static let path = ProcessInfo.processInfo.environment["TOLLGATE_TEST_CAPTURE_GATE"]
        static let used = Atomic<Bool>(false)

        static func waitOnce() {
            guard let path, !used.exchange(true, ordering: .relaxed) else { return }
            FileManager.default.createFile(atPath: path + ".waiting", contents: nil)
            let fd = open(path, O_RDONLY)  // blocks until the test opens the FIFO for writing
            if fd >= 0 { close(fd) }
        }
    }
}
