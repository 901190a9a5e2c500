extension Unicode.Scalar {
    /// Bidirectional marks, embeddings, overrides and isolates (U+061C,
    /// U+200E, U+200F, U+202A–U+202E, U+2066–U+2069): invisible characters
    /// that reorder the text around them, so a peer could make one key look
    /// like another.
    public var isBidiControl: Bool {
        switch value {
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}

extension String {
    /// The string with control characters shown as `\xNN` and bidirectional
    /// controls as `\u{NNNN}`, so text chosen by a peer cannot forge, break
    /// or reorder log lines.
    public var logEscaped: String {
        guard utf8.contains(where: { $0 < 0x20 || $0 >= 0x7F }) else { return self }
        guard unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0.isBidiControl }) else {
            return self
        }
        var out = ""
        for scalar in unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\x" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
            } else if scalar.isBidiControl {
                out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
