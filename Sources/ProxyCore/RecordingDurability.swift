/// When a target's records reach the disk (`recording.durability` in the configuration).
public enum RecordingDurability: String, Sendable {
    /// The default: events are written in batches (a quarter of a second), blocks sealed and
    /// synced when 128 KiB or 2 s old. The request is forwarded at once; a crash of the gate loses
    /// what was not written yet (see docs/recording.md for the bound, measured).
    case batched
    /// Write-ahead: a request and its decision are written and synced before the request is
    /// forwarded (group commit across the sessions of a writer thread); a capture that cannot be
    /// written refuses the request. Nothing forwarded is unrecorded.
    case strict
}
