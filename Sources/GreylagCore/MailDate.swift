/// RFC 5322 date text (`Sat, 21 Nov 2026 20:11:26 +0000`) for mail headers,
/// computed without the C library so it is pure and the same on every host.
public enum MailDate {
    public static func format(epochSeconds raw: Int64) -> String {
        // Years 1 to 9999: outside them the header would not be a date, and
        // the civil arithmetic below could overflow.
        let epochSeconds = min(max(raw, -62_135_596_800), 253_402_300_799)
        let days = floorDiv(epochSeconds, 86_400)
        let secs = epochSeconds - days * 86_400
        let (y, m, d) = civil(fromDays: days)
        let weekday = Int((days % 7 + 11) % 7)  // 1970-01-01 was a Thursday
        let names = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(names[weekday]), \(two(d)) \(months[Int(m) - 1]) \(y) "
            + "\(two(secs / 3600)):\(two((secs / 60) % 60)):\(two(secs % 60)) +0000"
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : -((-a + b - 1) / b)
    }

    /// Howard Hinnant's days-to-civil algorithm.
    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
