/// The wire format of OpenSMTPD's filter protocol, as smtpd writes it
/// (read from OpenSMTPD's `lka_filter.c`, `lka_proc.c`, `smtp_session.c`).
///
/// Handshake, smtpd to filter: `config|smtpd-version|6.8.0p2`,
/// `config|smtp-session-timeout|300`, `config|subsystem|smtp-in`,
/// `config|admd|NAME` (6.7 and later), `config|protocol|0.7` (7.6 and later),
/// then `config|ready`. The filter answers `register|report|smtp-in|EVENT`
/// and `register|filter|smtp-in|PHASE` lines and last `register|ready`.
///
/// Then, smtpd to filter, one event or request a line:
///
///     report|VERSION|SEC.USEC|smtp-in|EVENT|SESSION|PARAMS...
///     filter|VERSION|SEC.USEC|smtp-in|PHASE|SESSION|TOKEN|PARAM
///
/// SESSION and TOKEN are 16 hex digits; only the last field may contain `|`.
/// The filter answers each request, in the order of that version:
///
///     filter-result|SESSION|TOKEN|proceed           0.5 and later
///     filter-result|TOKEN|SESSION|proceed           0.4 (6.6)
///     filter-result|SESSION|TOKEN|reject|451 text
///     filter-dataline|SESSION|TOKEN|LINE            (data-line: every line back, up to ".")
///
/// Report parameters that differ by version:
///
/// | version | smtpd     | tx-mail / tx-rcpt        | link-auth          |
/// |---------|-----------|--------------------------|--------------------|
/// | 0.4     | 6.6       | msgid\|address\|result   | username\|result   |
/// | 0.5     | (-current)| msgid\|address\|result   | username\|result   |
/// | 0.6     | 6.7–7.3   | msgid\|result\|address   | username\|result   |
/// | 0.7     | 7.4 and on| msgid\|result\|address   | result\|username   |
///
/// `link-connect` is `rdns|fcrdns|src|dest` with `src` `a.b.c.d:port`,
/// `[v6]:port` or `unix:/path`; `link-identify` is `method|helo`.
/// smtpd exits when a filter writes a line it cannot parse or exits itself.
public enum FilterProtocol {
    /// The longest input line taken: smtpd's own SMTP line limit (65,535)
    /// plus the prefix of a data-line request. Longer lines are discarded.
    public static let maxLineLength = 66_560
}

/// A protocol version `MAJOR.MINOR` as smtpd writes it in every `filter|`
/// and `report|` line, and what that version means for the field orders.
public struct FilterProtocolVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    public static let oldest = FilterProtocolVersion(0, 4)
    public static let newest = FilterProtocolVersion(0, 7)

    /// Reads `0.6`; nil for anything else (a sign, a space, more than 4 digits).
    public init?<Bytes: Collection<UInt8>>(bytes: Bytes) {
        guard let dot = bytes.firstIndex(of: UInt8(ascii: ".")),
              let major = Self.number(bytes[bytes.startIndex..<dot]),
              let minor = Self.number(bytes[bytes.index(after: dot)...]) else { return nil }
        self.init(major, minor)
    }

    private static func number<S: Collection<UInt8>>(_ s: S) -> Int? {
        guard !s.isEmpty, s.count <= 4 else { return nil }
        var n = 0
        for b in s {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
            n = n * 10 + Int(b - UInt8(ascii: "0"))
        }
        return n
    }

    /// A version this filter was written against (0.4 to 0.7).
    public var isKnown: Bool { self >= .oldest && self <= .newest }

    /// The version whose field orders apply: an older one than 0.4 is read
    /// as 0.4 (the orders of 6.6), a newer one than 0.7 as 0.7.
    public var effective: FilterProtocolVersion { min(max(self, .oldest), .newest) }

    /// 0.4 replies `TOKEN|SESSION`; later versions `SESSION|TOKEN`.
    public var replyTokenFirst: Bool { effective < FilterProtocolVersion(0, 5) }
    /// From 0.6 `tx-mail` is `msgid|result|address`.
    public var mailResultFirst: Bool { effective >= FilterProtocolVersion(0, 6) }
    /// From 0.7 `link-auth` is `result|username`.
    public var authResultFirst: Bool { effective >= FilterProtocolVersion(0, 7) }

    public static func < (a: Self, b: Self) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
    public var description: String { "\(major).\(minor)" }
}

/// Splits the byte stream from smtpd into lines (LF, no CR expected),
/// whatever the reads' boundaries; a line longer than `maxLength` is
/// dropped whole (up to its LF) and counted.
public struct FilterLineSplitter: Sendable {
    public let maxLength: Int
    private var buffer: [UInt8] = []
    private var discarding = false
    /// Lines dropped for their length so far.
    public private(set) var discarded = 0

    public init(maxLength: Int = FilterProtocol.maxLineLength) {
        self.maxLength = maxLength
    }

    /// The complete lines in `bytes` (without their LF), in order.
    public mutating func lines<Bytes: Collection<UInt8>>(in bytes: Bytes) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var start = bytes.startIndex
        while start < bytes.endIndex {
            guard let lf = bytes[start...].firstIndex(of: 10) else {
                append(bytes[start...])
                break
            }
            append(bytes[start..<lf])
            if discarding {
                discarding = false
            } else {
                out.append(buffer)
            }
            buffer.removeAll(keepingCapacity: true)
            start = bytes.index(after: lf)
        }
        return out
    }

    private mutating func append<S: Collection<UInt8>>(_ part: S) {
        if discarding { return }
        if buffer.count + part.count > maxLength {
            discarding = true
            discarded += 1
            buffer.removeAll(keepingCapacity: false)
            return
        }
        buffer.append(contentsOf: part)
    }
}

/// Field access on one line: `|`-separated, the last wanted field taking
/// the rest of the line (its own `|` included).
struct FilterFields {
    let line: [UInt8]
    /// Ranges of the fields.
    let ranges: [Range<Int>]

    /// At most `limit` fields; the last one holds the rest.
    init(_ line: [UInt8], limit: Int) {
        self.line = line
        var ranges: [Range<Int>] = []
        var start = 0
        var i = 0
        while i < line.count, ranges.count < limit - 1 {
            if line[i] == UInt8(ascii: "|") {
                ranges.append(start..<i)
                start = i + 1
            }
            i += 1
        }
        ranges.append(start..<line.count)
        self.ranges = ranges
    }

    var count: Int { ranges.count }

    subscript(_ i: Int) -> ArraySlice<UInt8> { line[ranges[i]] }

    func string(_ i: Int) -> String { String(decoding: self[i], as: UTF8.self) }

    func equals(_ i: Int, _ text: StaticString) -> Bool {
        guard i < ranges.count else { return false }
        let s = self[i]
        return text.withUTF8Buffer { s.elementsEqual($0) }
    }
}

extension Collection<UInt8> {
    /// 1 to 16 hex digits: what smtpd writes for a session or a token.
    var isFilterIdentifier: Bool {
        !isEmpty && count <= 16 && allSatisfy {
            ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f"))
                || ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "F"))
        }
    }

    /// `a|b` split at the first `|` (`a`, nil without one).
    func splitFirstBar() -> (SubSequence, SubSequence?) {
        guard let bar = firstIndex(of: UInt8(ascii: "|")) else { return (self[...], nil) }
        return (self[startIndex..<bar], self[index(after: bar)...])
    }
}

extension BidirectionalCollection<UInt8> {
    /// `a|b` split at the last `|` (nil, `a` without one).
    func splitLastBar() -> (SubSequence?, SubSequence) {
        guard let bar = lastIndex(of: UInt8(ascii: "|")) else { return (nil, self[...]) }
        return (self[startIndex..<bar], self[index(after: bar)...])
    }
}
