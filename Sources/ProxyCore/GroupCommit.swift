import CaptureFormat

/// One sync pass for the strict recorders a writer thread served together: each run writes and
/// seals its session's events without syncing and joins here; `complete` then syncs each file
/// and acknowledges every waiting session in one hand-off. A session's wait is one pass, however
/// many sessions share it, and the sessions that queue up during a pass share the next one (the
/// classic group commit).
///
/// Each file still needs its own fsync (POSIX syncs one file per call; `syncfs` would also flush
/// everything else written on that filesystem), but they are called back to back: on ext4 the
/// first commits the journal transaction that holds every file's new size, and the others find
/// their metadata already committed.
struct GroupCommit {
    var members: [SessionRecorder] = []

    mutating func join(_ recorder: SessionRecorder) {
        members.append(recorder)
    }

    /// Syncs every member's file, then hands their acknowledgements off (on the rescuer: they
    /// wake other threads).
    func complete(on thread: WriterThread) {
        guard !members.isEmpty else { return }
        let acknowledgements = members.flatMap { $0.syncForGroupCommit(on: thread) }
        thread.handOff { for ack in acknowledgements { ack() } }
    }
}
