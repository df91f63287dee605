import NIOCore

/// Runs a message decoder over bytes as they arrive, in the handler that uses the messages:
/// no ByteToMessageHandler, so no pipeline hop and no `NIOAny` box per message, and each
/// message comes with its frame — the exact bytes it arrived in — so a relay can forward it
/// unchanged without encoding it again.
///
/// Frames are slices of the buffered input: use them before the next `append` (which may
/// otherwise have to copy the buffer).
///
/// Inlinable so that it is specialized for its decoder where it is used: generic code called
/// across modules would look up type metadata at run time for every message.
public struct FramedDecoding<Decoder: NIOSingleStepByteToMessageDecoder> {
    public var decoder: Decoder
    @usableFromInline var buffer = ByteBuffer()

    @inlinable public init(_ decoder: Decoder) { self.decoder = decoder }

    /// Bytes received and not yet decoded (an incomplete message).
    @inlinable public var bufferedBytes: Int { buffer.readableBytes }

    @inlinable public mutating func append(_ bytes: ByteBuffer) {
        if buffer.readableBytes == 0 {
            buffer = bytes  // the common case: take the read buffer as it is, no copy
        } else {
            if buffer.readerIndex > 0 && buffer.readerIndex >= buffer.readableBytes { buffer.discardReadBytes() }
            var bytes = bytes
            buffer.writeBuffer(&bytes)
        }
    }

    /// The next complete message and its frame, or nil until more bytes arrive.
    @inlinable public mutating func next() throws -> (message: Decoder.InboundOut, frame: ByteBuffer)? {
        // A second reference to the same storage (no copy), still positioned at the frame's start:
        // ByteBuffer only slices readable bytes.
        let before = buffer
        guard let message = try decoder.decode(buffer: &buffer) else { return nil }
        let frame = before.getSlice(at: before.readerIndex, length: buffer.readerIndex - before.readerIndex)!
        if buffer.readableBytes == 0 { buffer = ByteBuffer() }  // let go of the read buffer
        return (message, frame)
    }

    /// At the end of the input: the last message, or the decoder's error for an incomplete one.
    @inlinable public mutating func last() throws -> (message: Decoder.InboundOut, frame: ByteBuffer)? {
        let before = buffer
        guard let message = try decoder.decodeLast(buffer: &buffer, seenEOF: true) else { return nil }
        return (message, before.getSlice(at: before.readerIndex, length: buffer.readerIndex - before.readerIndex)!)
    }
}
