import GreylagCore

/// Helpers shared by the parsers: value checks with greylag's own list
/// syntax, regular expressions for substring matches, durations.
enum ValueForms {
    /// The reason greylag would refuse `text` as a value of `field`, or nil if it reads it.
    static func problem(_ field: SelectorField, _ text: String) -> String? {
        if text.utf8.count > MigrationLimits.maxValueBytes {
            return "a value of \(text.utf8.count) bytes (at most \(MigrationLimits.maxValueBytes))"
        }
        do throws(ListSyntaxError) {
            _ = try ListRule(field: field, text: text, origin: "migrate")
            return nil
        } catch {
            return "\"\(printable(text))\": \(error.message)"
        }
    }

    /// `/text/` matching `text` literally anywhere, case-insensitively: the
    /// substring match of milter-greylist's plain strings.
    static func substringRegex(_ text: String) -> String {
        var out = "/"
        for c in text {
            if "\\.^$|?*+()[]{}".contains(c) { out.append("\\") }
            out.append(c)
        }
        return out + "/"
    }

    /// `/text$/`: a case-insensitive suffix match (milter-greylist's `domain`).
    static func suffixRegex(_ text: String) -> String {
        String(substringRegex(text).dropLast()) + "$/"
    }

    /// Seconds of a duration text (`30m`, `1h30m`, `300`), or nil when it is
    /// none or longer than greylag accepts (ten years).
    static func seconds(_ text: String) -> Int64? {
        if case .seconds(let s) = DurationText.read(text) { return s }
        return nil
    }

    /// `count * unit` seconds if `text` is a whole number and the result is
    /// at most ten years.
    static func seconds(_ text: String, unit: Int64) -> Int64? {
        let t = text.blankTrimmed()
        guard !t.isEmpty, t.count <= 18, t.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int64(t) else { return nil }
        let (v, overflow) = n.multipliedReportingOverflow(by: unit)
        guard !overflow, v <= NumericLimits.maxDuration else { return nil }
        return v
    }

    /// A duration as greylag writes it: `30m`, `1d12h`.
    static func duration(_ seconds: Int64) -> TOMLValue { .string(seconds == 0 ? "0" : DurationText.format(seconds)) }

    /// Text with control characters shown as `?` and cut to a readable length, for notes.
    static func printable(_ s: some StringProtocol, limit: Int = 120) -> String {
        var out = String(String.UnicodeScalarView(String(s).unicodeScalars.map { ($0.value < 0x20 || $0.value == 0x7F) ? "?" : $0 }))
        if out.count > limit { out = String(out.prefix(limit)) + "..." }
        return out
    }

    /// Decodes input bytes; invalid UTF-8 becomes U+FFFD, so nothing traps.
    static func text(_ bytes: [UInt8], file: String) throws(MigrationError) -> String {
        guard bytes.count <= MigrationLimits.maxFileBytes else {
            throw MigrationError(file: file, line: 0, "\(bytes.count) bytes: larger than a configuration can be "
                                 + "(at most \(MigrationLimits.maxFileBytes))")
        }
        return String(decoding: bytes, as: UTF8.self).replacing("\r\n", with: "\n")
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and CRs.
    func blankTrimmed() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
