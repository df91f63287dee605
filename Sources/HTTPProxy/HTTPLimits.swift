/// The target's `limits:` for HTTP: what the gate buffers or lets through for one request.
public struct HTTPLimits: Sendable, Equatable {
    /// The request line and header section together, CRLFs included (431 past it; 414 when the
    /// request line alone is longer).
    public var maxHeaderBytes: Int
    /// The request body's decoded length (413 past it).
    public var maxBodyBytes: Int
    /// One chunk-size line with its extensions, or one trailer line, in a chunked body.
    public var maxChunkLineBytes: Int

    public init(maxHeaderBytes: Int = 16 * 1024, maxBodyBytes: Int = 8 * 1024 * 1024, maxChunkLineBytes: Int = 4096) {
        self.maxHeaderBytes = maxHeaderBytes; self.maxBodyBytes = maxBodyBytes; self.maxChunkLineBytes = maxChunkLineBytes
    }
}
