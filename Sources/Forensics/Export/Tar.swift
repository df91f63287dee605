import Foundation

/// POSIX tar (ustar, with pax extended headers for names or sizes ustar cannot hold), written
/// by this code rather than the system `tar` so that the archive is deterministic: entries in
/// the order given, every mtime the export time, uid and gid 0 with empty owner names, mode
/// 0644 for files and 0755 for directories, and the end padded to a 10240-byte record as GNU
/// and BSD tar do. The same bundle gives the same archive, byte for byte.
public enum Tar {
    public static let block = 512
    public static let record = 10240

    /// A header block (and, when needed, a pax header before it) for one entry.
    static func header(name: String, size: UInt64, directory: Bool, mtime: Int64) -> [UInt8] {
        var out: [UInt8] = []
        let nameBytes = Array(name.utf8)
        var ustarName = nameBytes, prefix: [UInt8] = []
        var pax: [(String, String)] = []
        if nameBytes.count > 100 {
            // Split at a slash into prefix (≤ 155) and name (≤ 100); otherwise a pax path record.
            if let cut = nameBytes.indices.reversed().first(where: { nameBytes[$0] == UInt8(ascii: "/") && $0 <= 155 && nameBytes.count - $0 - 1 <= 100 && $0 > 0 }) {
                prefix = Array(nameBytes[..<cut]); ustarName = Array(nameBytes[(cut + 1)...])
            } else {
                pax.append(("path", name))
                ustarName = Array(nameBytes.prefix(100))
            }
        }
        if !nameBytes.allSatisfy({ $0 < 0x80 }) && !pax.contains(where: { $0.0 == "path" }) { pax.append(("path", name)) }
        if size > 0o77777777777 { pax.append(("size", String(size))) }
        if !pax.isEmpty {
            let body = paxRecords(pax)
            let paxName = Array(("PaxHeader/" + (name.split(separator: "/").last.map(String.init) ?? "entry")).utf8.prefix(100))
            out += headerBlock(name: paxName, prefix: [], mode: 0o644, size: UInt64(body.count), mtime: mtime, type: UInt8(ascii: "x"))
            out += body
            out += [UInt8](repeating: 0, count: padding(body.count))
        }
        out += headerBlock(name: ustarName, prefix: prefix, mode: directory ? 0o755 : 0o644, size: size > 0o77777777777 ? 0 : size,
                           mtime: mtime, type: directory ? UInt8(ascii: "5") : UInt8(ascii: "0"))
        return out
    }

    /// pax records: "LEN key=value\n", where LEN counts the whole record including itself.
    static func paxRecords(_ pairs: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (k, v) in pairs {
            let rest = " \(k)=\(v)\n".utf8.count
            var len = rest + String(rest).count
            if String(len).count != String(rest).count { len = rest + String(len).count }
            out += Array("\(len) \(k)=\(v)\n".utf8)
        }
        return out
    }

    static func headerBlock(name: [UInt8], prefix: [UInt8], mode: Int, size: UInt64, mtime: Int64, type: UInt8) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: block)
        func put(_ bytes: [UInt8], at offset: Int, max: Int) {
            for (i, b) in bytes.prefix(max).enumerated() { h[offset + i] = b }
        }
        func octal(_ value: UInt64, at offset: Int, width: Int) {
            // width-1 octal digits, zero-padded, then NUL.
            let digits = String(value, radix: 8)
            put(Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8), at: offset, max: width - 1)
        }
        put(name, at: 0, max: 100)
        octal(UInt64(mode), at: 100, width: 8)
        octal(0, at: 108, width: 8)  // uid
        octal(0, at: 116, width: 8)  // gid
        octal(size, at: 124, width: 12)
        octal(UInt64(max(0, mtime)), at: 136, width: 12)
        put(Array("        ".utf8), at: 148, max: 8)  // checksum field counts as spaces
        h[156] = type
        put(Array("ustar".utf8), at: 257, max: 6)  // "ustar\0"
        put(Array("00".utf8), at: 263, max: 2)
        octal(0, at: 329, width: 8)  // devmajor
        octal(0, at: 337, width: 8)  // devminor
        put(prefix, at: 345, max: 155)
        let sum = h.reduce(0) { $0 + Int($1) }
        let digits = String(sum, radix: 8)
        put(Array((String(repeating: "0", count: max(0, 6 - digits.count)) + digits).utf8), at: 148, max: 6)
        h[154] = 0
        h[155] = UInt8(ascii: " ")
        return h
    }

    static func padding(_ n: Int) -> Int { (block - n % block) % block }

    /// Writes `root` (a bundle directory) as an archive at `output` (which must not exist), with every
    /// entry under `prefix/`. `files` are paths relative to `root`, in the order to write them.
    /// Returns the archive's SHA-256 (hex), computed as it is written.
    @discardableResult
    public static func write(root: String, files: [String], prefix: String, mtime: Int64, to output: String) throws(ExportError) -> String {
        let w = try DigestWriter(path: output)
        var total: UInt64 = 0
        func emit(_ bytes: [UInt8]) throws(ExportError) { try w.write(bytes: bytes); total += UInt64(bytes.count) }
        var dirs = Set<String>()
        func directory(_ d: String) throws(ExportError) {
            guard !d.isEmpty, !dirs.contains(d) else { return }
            if let parent = d.range(of: "/", options: .backwards).map({ String(d[..<$0.lowerBound]) }) { try directory(parent) }
            dirs.insert(d)
            try emit(header(name: d + "/", size: 0, directory: true, mtime: mtime))
        }
        try directory(prefix)
        for f in files {
            let name = prefix.isEmpty ? f : "\(prefix)/\(f)"
            if let slash = name.range(of: "/", options: .backwards) { try directory(String(name[..<slash.lowerBound])) }
            let path = (root as NSString).appendingPathComponent(f)
            guard let handle = FileHandle(forReadingAtPath: path) else { throw ExportError.io("\(path): cannot read") }
            defer { try? handle.close() }
            var st = stat()
            guard stat(path, &st) == 0 else { throw ExportError.io("\(path): cannot stat") }
            let size = UInt64(st.st_size)
            try emit(header(name: name, size: size, directory: false, mtime: mtime))
            var copied: UInt64 = 0
            while true {
                let chunk: Data
                do { chunk = try handle.read(upToCount: 1 << 20) ?? Data() } catch { throw ExportError.io("\(path): read failed: \(error)") }
                if chunk.isEmpty { break }
                copied += UInt64(chunk.count)
                try emit(Array(chunk))
            }
            guard copied == size else { throw ExportError.io("\(path): changed while it was archived") }
            try emit([UInt8](repeating: 0, count: padding(Int(size % UInt64(block)))))
        }
        try emit([UInt8](repeating: 0, count: 2 * block))
        let rest = Int(total % UInt64(record))
        if rest != 0 { try emit([UInt8](repeating: 0, count: record - rest)) }
        return try w.finish()
    }

    public struct Entry: Sendable {
        public enum Kind: Sendable, Equatable { case file, directory, other(UInt8) }
        public var name: String
        public var kind: Kind
        /// Where the entry's data lies in the archive.
        public var range: Range<Int>
    }

    /// Reads the entries of an archive: ustar, pax `x`/`g` headers (path, size) and GNU long names (`L`).
    /// Throws when a header checksum does not hold or an entry runs past the end.
    public static func entries(_ data: Data) throws(ExportError) -> [Entry] {
        var out: [Entry] = []
        var offset = 0
        var paxPath: String?, paxSize: UInt64?, longName: String?
        // Indexed from 0 (a slice of a larger Data is copied once); mapped files are not copied.
        let bytes = data.startIndex == 0 ? data : Data(data)
        func field(_ at: Int, _ len: Int) -> [UInt8] {
            let f = bytes[at..<(at + len)]
            return Array(f.prefix { $0 != 0 })
        }
        func number(_ at: Int, _ len: Int) throws(ExportError) -> UInt64 {
            let f = bytes[at..<(at + len)]
            if let first = f.first, first & 0x80 != 0 {  // GNU base-256
                return f.dropFirst().reduce(UInt64(first & 0x7F)) { ($0 << 8) | UInt64($1) }
            }
            let text = String(decoding: f.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if text.isEmpty { return 0 }
            guard let v = UInt64(text, radix: 8) else { throw ExportError.unreadable("tar header at byte \(offset): bad number field (not a tar archive, or damaged)") }
            return v
        }
        while offset + block <= bytes.count {
            let header = bytes[offset..<(offset + block)]
            if header.allSatisfy({ $0 == 0 }) { break }
            let stored = try number(offset + 148, 8)
            var sum = 0
            for (i, b) in header.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(b) }
            guard UInt64(sum) == stored else { throw ExportError.unreadable("tar header at byte \(offset): checksum does not hold (not a tar archive, or damaged)") }
            let type = bytes[offset + 156]
            var size = try number(offset + 124, 12)
            if let s = paxSize, type != UInt8(ascii: "x"), type != UInt8(ascii: "g"), type != UInt8(ascii: "L") { size = s }
            let dataStart = offset + block
            guard size <= UInt64(bytes.count - dataStart) else {
                throw ExportError.unreadable("tar entry at byte \(offset): \(size) bytes of data run past the end of the archive")
            }
            let dataEnd = dataStart + Int(size)
            switch type {
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                for (k, v) in parsePax(Array(bytes[dataStart..<dataEnd])) where type == UInt8(ascii: "x") {
                    if k == "path" { paxPath = v }
                    if k == "size" { paxSize = UInt64(v) }
                }
            case UInt8(ascii: "L"):
                longName = String(decoding: bytes[dataStart..<dataEnd].prefix { $0 != 0 }, as: UTF8.self)
            default:
                var name = String(decoding: field(offset, 100), as: UTF8.self)
                let magic = field(offset + 257, 6)
                if magic.starts(with: Array("ustar".utf8)) {
                    let prefix = field(offset + 345, 155)
                    if !prefix.isEmpty { name = String(decoding: prefix, as: UTF8.self) + "/" + name }
                }
                if let p = longName ?? paxPath { name = p }
                let kind: Entry.Kind = type == 0 || type == UInt8(ascii: "0") || type == UInt8(ascii: "7") ? .file
                    : type == UInt8(ascii: "5") ? .directory : .other(type)
                out.append(Entry(name: name, kind: kind, range: dataStart..<dataEnd))
                paxPath = nil; paxSize = nil; longName = nil
            }
            offset = dataEnd + padding(Int(size % UInt64(block)))
        }
        if out.isEmpty { throw ExportError.unreadable("no entries: not a tar archive") }
        return out
    }

    static func parsePax(_ body: [UInt8]) -> [(String, String)] {
        var out: [(String, String)] = []
        var i = 0
        while i < body.count {
            guard let space = body[i...].firstIndex(of: UInt8(ascii: " ")),
                  let len = Int(String(decoding: body[i..<space], as: UTF8.self)), len > 0, i + len <= body.count else { break }
            let record = body[(space + 1)..<(i + len - 1)]  // without the final newline
            if let eq = record.firstIndex(of: UInt8(ascii: "=")) {
                out.append((String(decoding: record[record.startIndex..<eq], as: UTF8.self), String(decoding: record[(eq + 1)...], as: UTF8.self)))
            }
            i += len
        }
        return out
    }
}
