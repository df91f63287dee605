import CaptureFormat

/// Header fields as the capture keeps them: names and order as sent, the values of credential
/// fields withheld (the capture never holds a token, cookie or password).
public enum RecordedFields {
    public static let withheldValue = "(withheld)"
    static let credentials: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie"]
    /// The same names, compared in place (`HTTPField.hasName`) without lowercasing each field's.
    static let credentialNames = Array(credentials)

    public static func record(_ fields: [HTTPField]) -> [KeyValue] {
        fields.map { f in KeyValue(f.name, credentialNames.contains(where: f.hasName) ? withheldValue : f.value) }
    }
}
