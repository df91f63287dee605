import Masking

/// Everything enabled plus the DESIGN.md example's custom regex and column rules.
let fullMasker: Masker = try! Masker(
    customPatterns: [CustomPattern(name: "employee_id", pattern: #"EMP-\d{6}"#)],
    columnRules: ["*.ssn", "users.email", "*.phone", "*.card_number"]
)

/// Masks text with `masker`, returning the input unchanged when nothing was found.
func masked(_ text: String, _ masker: Masker = fullMasker, column: ColumnRef? = nil) -> String {
    masker.maskText(text, column: column)?.text ?? text
}

func only(_ d: BuiltinDetector) -> Masker { try! Masker(detectors: [d]) }
