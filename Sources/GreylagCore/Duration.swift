/// Parsing and printing of the durations used in configuration: `300`, `90s`,
/// `5m`, `2h`, `36d`, `1w`, and sums such as `1h30m`. A bare number is seconds.
public enum DurationText {
    /// What a duration text says: seconds, more than a limit, or no duration at all.
    public enum Reading: Equatable, Sendable {
        case seconds(Int64)
        /// A well-formed duration longer than the limit (however long: the
        /// arithmetic saturates instead of overflowing).
        case tooLong
        case invalid
    }

    /// Seconds, or nil when the text is not a duration or does not fit in `Int64`.
    public static func parse(_ text: String) -> Int64? {
        if case .seconds(let s) = read(text, max: .max - 1) { return s }
        return nil
    }

    /// Reads a duration and checks it against `max` seconds (ten years by default).
    public static func read(_ text: String, max: Int64 = NumericLimits.maxDuration) -> Reading {
        let s = text.trimmingSpaces().lowercased()
        guard !s.isEmpty else { return .invalid }
        func checked(_ v: Int64) -> Reading { v > max ? .tooLong : .seconds(v) }
        if let plain = Int64(s) { return plain >= 0 ? checked(plain) : .invalid }
        var total: Int64 = 0
        var number: Int64? = nil
        var digitsOnly = true
        for ch in s {
            if let d = ch.wholeNumberValue, ch.isASCII {
                number = (number ?? 0).saturatingMultiply(10).saturatingAdd(Int64(d))
                continue
            }
            digitsOnly = false
            guard let n = number else { return .invalid }
            let unit: Int64
            switch ch {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86_400
            case "w": unit = 604_800
            default: return .invalid
            }
            total = total.saturatingAdd(n.saturatingMultiply(unit))
            number = nil
        }
        // Plain seconds too large for Int64.
        if digitsOnly, let n = number { return checked(n) }
        guard number == nil else { return .invalid }
        return checked(total)
    }

    /// A compact human form: `4m52s`, `2d`, `0s`.
    public static func format(_ seconds: Int64) -> String {
        if seconds <= 0 { return "0s" }
        // Unrolled: replies of every deferral print it.
        var out = ""
        let days = seconds / 86_400, hours = seconds / 3600 % 24, minutes = seconds / 60 % 60, secs = seconds % 60
        if days > 0 { out += String(days); out += "d" }
        if hours > 0 { out += String(hours); out += "h" }
        if minutes > 0 { out += String(minutes); out += "m" }
        if secs > 0 { out += String(secs); out += "s" }
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
