/// Parsing and printing of the durations used in configuration: `300`, `90s`,
/// `5m`, `2h`, `36d`, `1w`, and sums such as `1h30m`. A bare number is seconds.
public enum DurationText {
    /// Seconds, or nil when the text is not a duration.
    public static func parse(_ text: String) -> Int64? {
        let s = text.trimmingSpaces().lowercased()
        guard !s.isEmpty else { return nil }
        if let plain = Int64(s), plain >= 0 { return plain }
        var total: Int64 = 0
        var number: Int64? = nil
        for ch in s {
            if let d = ch.wholeNumberValue, ch.isASCII {
                let (m, o1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(d))
                guard !o1, !o2 else { return nil }
                number = a
                continue
            }
            guard let n = number else { return nil }
            let unit: Int64
            switch ch {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86_400
            case "w": unit = 604_800
            default: return nil
            }
            let (p, o1) = n.multipliedReportingOverflow(by: unit)
            let (t, o2) = total.addingReportingOverflow(p)
            guard !o1, !o2 else { return nil }
            total = t
            number = nil
        }
        guard number == nil else { return nil }
        return total
    }

    /// A compact human form: `4m52s`, `2d`, `0s`.
    public static func format(_ seconds: Int64) -> String {
        if seconds <= 0 { return "0s" }
        var rest = seconds
        var out = ""
        for (unit, name) in [(Int64(86_400), "d"), (3600, "h"), (60, "m"), (1, "s")] where rest >= unit {
            out += "\(rest / unit)\(name)"
            rest %= unit
        }
        return out
    }

    /// `HH:MM:SS` as milter-greylist prints it (hours may exceed 24).
    public static func clock(_ seconds: Int64) -> String {
        let s = max(0, seconds)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(two(s / 3600)):\(two((s / 60) % 60)):\(two(s % 60))"
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
