import Foundation

/// The capture files named on a command line: files as given, directories searched recursively
/// for `*.sesscap` in path order (date-partitioned directories sort by time).
public enum CaptureLocations {
    public static func files(in paths: [String]) -> (files: [String], errors: [String]) {
        var files: [String] = [], errors: [String] = []
        let fm = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
                errors.append("\(path): no such file or directory")
                continue
            }
            guard isDirectory.boolValue else {
                files.append(path)
                continue
            }
            guard let walker = fm.enumerator(atPath: path) else {
                errors.append("\(path): cannot read the directory")
                continue
            }
            var found: [String] = []
            while let name = walker.nextObject() as? String {
                if name.hasSuffix(".sesscap") { found.append((path as NSString).appendingPathComponent(name)) }
            }
            files += found.sorted()
        }
        return (files, errors)
    }
}
