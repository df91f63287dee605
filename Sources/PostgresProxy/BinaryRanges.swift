import NIOCore

/// Range and multirange values in binary format (`range_send`, `multirange_send`), so the
/// detectors read their bounds: `int8range(card, NULL)` sent binary carries the card number as
/// an int8 bound, which neither the value's bytes nor an integer reading of all of them shows.
extension BinaryValues {
    /// Built-in range types and their bound types (pg_range.dat).
    static let rangeBounds: [UInt32: UInt32] = [
        3904: 23, 3926: 20, 3906: 1700,        // int4range, int8range, numrange
        3908: 1114, 3910: 1184, 3912: 1082,    // tsrange, tstzrange, daterange
    ]
    /// Built-in multirange types and their range types.
    static let multiranges: [UInt32: UInt32] = [
        4451: 3904, 4536: 3926, 4532: 3906, 4533: 3908, 4534: 3910, 4535: 3912,
    ]

    /// A range's bounds: a flags byte, then each finite bound as an Int32 length and its bytes.
    static func rangeBoundValues(_ value: [UInt8]) -> [[UInt8]]? {
        guard let flags = value.first else { return nil }
        var b = ByteBuffer(bytes: value.dropFirst())
        if flags & 0x01 != 0 { return b.readableBytes == 0 ? [] : nil }  // empty
        var bounds: [[UInt8]] = []
        for infinite in [flags & 0x08 != 0, flags & 0x10 != 0] where !infinite {
            guard let length = b.readInteger(as: Int32.self), length >= 0, let bytes = b.readBytes(length: Int(length)) else { return nil }
            bounds.append(bytes)
        }
        return b.readableBytes == 0 ? bounds : nil
    }

    /// A multirange's ranges: an Int32 count, then each range as an Int32 length and its bytes.
    static func multirangeValues(_ value: [UInt8]) -> [[UInt8]]? {
        var b = ByteBuffer(bytes: value)
        guard let count = b.readInteger(as: Int32.self), count >= 0, Int(count) <= b.readableBytes / 5 + 1 else { return nil }
        var ranges: [[UInt8]] = []
        for _ in 0..<Int(count) {
            guard let length = b.readInteger(as: Int32.self), length >= 0, let bytes = b.readBytes(length: Int(length)) else { return nil }
            ranges.append(bytes)
        }
        return b.readableBytes == 0 ? ranges : nil
    }
}
