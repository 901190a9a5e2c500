import Foundation

/// Wall-clock date and time text as MySQL prints it, to Unix seconds.
enum CivilTime {
    /// A parsed `DATETIME`/`TIMESTAMP`.
    enum Value: Equatable {
        /// MySQL's zero date `0000-00-00 00:00:00` (used for "long ago").
        case zero
        /// Seconds since 1970-01-01 00:00 of the wall clock, zone not applied.
        case wall(Int64)
    }

    /// Parses `YYYY-MM-DD HH:MM:SS`, with an optional fraction, `T` as
    /// separator, or a date alone.
    static func parse(_ bytes: some Collection<UInt8>) -> Value? {
        var it = Array(bytes)[...]
        func number(_ digits: Int) -> Int64? {
            guard it.count >= digits else { return nil }
            var v: Int64 = 0
            for b in it.prefix(digits) {
                guard b >= 0x30 && b <= 0x39 else { return nil }
                v = v * 10 + Int64(b - 0x30)
            }
            it = it.dropFirst(digits)
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard it.first == c else { return false }
            it = it.dropFirst()
            return true
        }
        guard let y = number(4), expect(UInt8(ascii: "-")), let mo = number(2), expect(UInt8(ascii: "-")),
              let d = number(2) else { return nil }
        var h: Int64 = 0, mi: Int64 = 0, s: Int64 = 0
        if !it.isEmpty {
            guard expect(UInt8(ascii: " ")) || expect(UInt8(ascii: "T")) else { return nil }
            guard let hh = number(2), expect(UInt8(ascii: ":")), let mm = number(2), expect(UInt8(ascii: ":")),
                  let ss = number(2) else { return nil }
            h = hh; mi = mm; s = ss
            if expect(UInt8(ascii: ".")) {
                guard !it.isEmpty, it.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
                it = it.dropFirst(it.count)
            }
            guard it.isEmpty else { return nil }
        }
        if y == 0 && mo == 0 && d == 0 && h == 0 && mi == 0 && s == 0 { return .zero }
        guard (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 60 else { return nil }
        return .wall(daysFromCivil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
    }

    /// Unix seconds of a wall-clock time in `zone`.
    static func unixSeconds(_ value: Value, in zone: TimeZone) -> Int64 {
        switch value {
        case .zero:
            return 0
        case .wall(let wall):
            if zone.identifier == "GMT" || zone.identifier == "UTC" { return wall }
            // The offset at the guessed instant, then at the corrected one
            // (they differ only around a DST change).
            let first = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(wall))))
            let second = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(wall - first))))
            return wall - second
        }
    }

    /// Howard Hinnant's days-from-civil algorithm (proleptic Gregorian).
    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Unix seconds of a UTC wall-clock time, for tests and fixtures.
    static func utc(_ y: Int64, _ m: Int64, _ d: Int64, _ h: Int64 = 0, _ mi: Int64 = 0, _ s: Int64 = 0) -> Int64 {
        daysFromCivil(y, m, d) * 86_400 + h * 3600 + mi * 60 + s
    }

    static let utcZone = TimeZone(secondsFromGMT: 0)!

    /// 9999-12-31 00:00:00 UTC: expiries from here on mean "never".
    static let farFuture: Int64 = utc(9999, 12, 31)
}

extension Array where Element == UInt8 {
    /// The bytes as text (invalid UTF-8 repaired).
    var text: String { String(decoding: self, as: UTF8.self) }
}

/// Parses an unsigned or signed decimal integer from ASCII bytes.
func parseInt64(_ bytes: some Collection<UInt8>) -> Int64? {
    var it = bytes[...]
    var negative = false
    if it.first == UInt8(ascii: "-") { negative = true; it = it.dropFirst() } else if it.first == UInt8(ascii: "+") {
        it = it.dropFirst()
    }
    guard !it.isEmpty, it.count <= 19 else { return nil }
    var v: Int64 = 0
    for b in it {
        guard b >= 0x30 && b <= 0x39 else { return nil }
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(Int64(b - 0x30))
        guard !o1 && !o2 else { return nil }
        v = a
    }
    return negative ? -v : v
}

/// The ranges numbers read from an import must fall in. A value outside is
/// an error for its line: within them, the arithmetic the importers do with
/// the delay and the TTLs (each at most `NumericLimits.maxDuration`) cannot
/// overflow. Counts only must not be negative: the engine's and the stores'
/// increments saturate or fail as a store error.
enum ImportLimits {
    /// Unix seconds of years 1 to 9999, what a SQL `DATETIME` can hold.
    static let times: ClosedRange<Int64> = CivilTime.utc(1, 1, 1)...(CivilTime.utc(10000, 1, 1) - 1)

    /// `value` as a time, or a reason naming `what`.
    static func time(_ value: Int64, _ what: String) throws(RowError) -> Int64 {
        guard times.contains(value) else {
            throw RowError("\(what) \(value) is out of range (Unix seconds of the years 1 to 9999)")
        }
        return value
    }

    /// `value` as a count, or a reason naming `what`.
    static func count(_ value: Int64, _ what: String) throws(RowError) -> Int64 {
        guard value >= 0 else { throw RowError("\(what) \(value) is negative") }
        return value
    }
}
