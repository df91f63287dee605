import Foundation

/// HTTP bodies as compared: a JSON body with the ignored fields (by name or glob, at any depth)
/// removed and its keys sorted, so field order and ignored noise (timestamps, ids) do not count;
/// any other body as its bytes.
enum JSONFields {
    static func normalized(_ body: [UInt8], ignoring ignore: [Glob]) -> String {
        guard !body.isEmpty, let value = try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) else {
            return String(decoding: body, as: UTF8.self)
        }
        let cleaned = strip(value, ignore)
        guard let data = try? JSONSerialization.data(withJSONObject: cleaned, options: [.sortedKeys, .fragmentsAllowed]) else {
            return String(decoding: body, as: UTF8.self)
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func strip(_ value: Any, _ ignore: [Glob]) -> Any {
        if let object = value as? [String: Any] {
            var out: [String: Any] = [:]
            for (k, v) in object where !ignore.contains(where: { $0.matches(k) }) { out[k] = strip(v, ignore) }
            return out
        }
        if let array = value as? [Any] { return array.map { strip($0, ignore) } }
        return value
    }
}
