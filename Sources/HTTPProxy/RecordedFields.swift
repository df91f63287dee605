import CaptureFormat

/// Header fields as the capture keeps them: names and order as sent, the values of credential
/// fields withheld (the capture never holds a token, cookie or password).
public enum RecordedFields {
    public static let withheldValue = "(withheld)"
    static let credentials: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie"]

    public static func record(_ fields: [HTTPField]) -> [KeyValue] {
        fields.map { KeyValue($0.name, credentials.contains($0.canonicalName) ? withheldValue : $0.value) }
    }
}
