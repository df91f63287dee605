import Foundation

extension CaptureFile {
    /// Tells the kernel that a streaming reader is done with the file's bytes before `offset`,
    /// so the mapped pages it read stop counting in the process's resident memory. Reading them
    /// again still works: they are reloaded from the file.
    ///
    /// MADV_PAGEOUT (Linux 5.4) only reclaims, it never changes contents: on a file mapping the
    /// clean pages are dropped, and should the bytes be in ordinary memory (a capture opened
    /// from `Data`) they stay as they are. (MADV_DONTNEED would zero such memory.) Elsewhere, or
    /// on an older kernel, the call does nothing.
    public func releasePages(before offset: Int) {
        #if os(Linux)
        data.withUnsafeBytes { buf in
            guard let base = buf.baseAddress, offset > 0 else { return }
            let page = UInt(max(4096, sysconf(Int32(_SC_PAGESIZE))))
            let start = UInt(bitPattern: base)
            let first = (start + page - 1) & ~(page - 1)
            let end = (start + UInt(min(offset, buf.count))) & ~(page - 1)
            guard end > first, let p = UnsafeMutableRawPointer(bitPattern: first) else { return }
            _ = madvise(p, Int(end - first), 21)  // MADV_PAGEOUT
        }
        #endif
    }
}
