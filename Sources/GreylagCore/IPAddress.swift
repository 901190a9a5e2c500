/// An IPv4 or IPv6 address parsed from the text forms MTAs send.
///
/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are folded into IPv4, so a
/// client is keyed the same whichever socket family the MTA accepted it on.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    case v6(high: UInt64, low: UInt64)

    /// Parses a bare address, tolerating the decorations MTAs add:
    /// `[192.0.2.1]`, `IPv6:2001:db8::1` (Sendmail) and a `%zone` suffix.
    public init?(_ text: some StringProtocol) {
        var s = Substring(text)
        if s.utf8.first == UInt8(ascii: "["), s.utf8.last == UInt8(ascii: "]") { s = s.dropFirst().dropLast() }
        if s.utf8.count > 5, s.utf8.prefix(5).lazy.map({ $0 | 0x20 }).elementsEqual("ipv6:".utf8) { s = s.dropFirst(5) }
        if let zone = s.utf8.firstIndex(of: UInt8(ascii: "%")) { s = s[..<zone] }
        if s.isEmpty || s.utf8.count > 45 { return nil }
        if s.utf8.contains(UInt8(ascii: ":")) {
            guard let (high, low) = IPAddress.parseV6(s) else { return nil }
            if high == 0 && (low >> 32) == 0xFFFF {
                self = .v4(UInt32(truncatingIfNeeded: low))
            } else {
                self = .v6(high: high, low: low)
            }
        } else {
            guard let v4 = IPAddress.parseV4(s) else { return nil }
            self = .v4(v4)
        }
    }

    /// Whether this is an IPv4 address (including one that arrived IPv4-mapped).
    public var isIPv4: Bool {
        if case .v4 = self { return true }
        return false
    }

    /// The address with all bits after the first `prefix` bits cleared.
    public func masked(to prefix: Int) -> IPAddress {
        switch self {
        case .v4(let a):
            let p = max(0, min(32, prefix))
            let mask: UInt32 = p == 0 ? 0 : ~UInt32(0) << (32 - p)
            return .v4(a & mask)
        case .v6(let high, let low):
            let p = max(0, min(128, prefix))
            let highMask: UInt64 = p >= 64 ? ~0 : (p == 0 ? 0 : ~UInt64(0) << (64 - p))
            let lowMask: UInt64 = p <= 64 ? 0 : (p == 128 ? ~0 : ~UInt64(0) << (128 - p))
            return .v6(high: high & highMask, low: low & lowMask)
        }
    }

    public var description: String {
        switch self {
        case .v4(let a):
            return "\(a >> 24).\((a >> 16) & 0xFF).\((a >> 8) & 0xFF).\(a & 0xFF)"
        case .v6(let high, let low):
            return IPAddress.formatV6(high: high, low: low)
        }
    }

    // MARK: - Parsing

    static func parseV4(_ s: Substring) -> UInt32? {
        var value: UInt32 = 0
        var octets = 0
        var current: UInt32 = 0
        var digits = 0
        for byte in s.utf8 {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, octets < 3 else { return nil }
                value = value << 8 | current
                octets += 1
                current = 0
                digits = 0
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                // A leading zero is refused: "010" is octal to some parsers.
                if digits == 1 && current == 0 { return nil }
                current = current * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                guard current <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, octets == 3 else { return nil }
        return value << 8 | current
    }

    /// Parses the text form of an IPv6 address (RFC 4291 2.2: groups, one
    /// `::`, an IPv4 tail) without allocating: it runs for every client of
    /// every decision.
    static func parseV6(_ s: Substring) -> (UInt64, UInt64)? {
        var groups = SIMD8<UInt16>()
        var count = 0
        var gapIndex = -1
        let bytes = s.utf8
        var i = bytes.startIndex
        let end = bytes.endIndex
        func at(_ j: Substring.UTF8View.Index) -> UInt8? { j < end ? bytes[j] : nil }
        if at(i) == UInt8(ascii: ":") {
            let next = bytes.index(after: i)
            guard at(next) == UInt8(ascii: ":") else { return nil }
            gapIndex = 0
            i = bytes.index(after: next)
        }
        while i < end {
            // One group, or the IPv4 tail if a dot comes before the next colon.
            var j = i
            var value: UInt32 = 0
            var digits = 0
            var isV4 = false
            while j < end, bytes[j] != UInt8(ascii: ":") {
                let b = bytes[j]
                let d: UInt8
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b &- UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b &- UInt8(ascii: "a") &+ 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b &- UInt8(ascii: "A") &+ 10
                case UInt8(ascii: "."):
                    isV4 = true
                    d = 0
                default: return nil
                }
                if isV4 { break }
                digits += 1
                guard digits <= 4 else { return nil }
                value = value << 4 | UInt32(d)
                j = bytes.index(after: j)
            }
            if isV4 {
                // An embedded IPv4 tail must be last and fill two groups.
                guard count <= 6, let v4 = parseV4(s[i..<end]) else { return nil }
                groups[count] = UInt16(v4 >> 16)
                groups[count + 1] = UInt16(v4 & 0xFFFF)
                count += 2
                i = end
                break
            }
            guard digits > 0, count < 8 else { return nil }
            groups[count] = UInt16(value)
            count += 1
            i = j
            guard i < end else { break }
            i = bytes.index(after: i)  // the colon
            if at(i) == UInt8(ascii: ":") {
                guard gapIndex < 0 else { return nil }
                gapIndex = count
                i = bytes.index(after: i)
            } else if i == end {
                return nil  // a single trailing colon
            }
        }
        if gapIndex >= 0 {
            guard count <= 7 else { return nil }
            // Move the groups after the gap to the end; zeros in between.
            let tail = count - gapIndex
            var moved = SIMD8<UInt16>()
            for k in 0..<gapIndex { moved[k] = groups[k] }
            for k in 0..<tail { moved[8 - tail + k] = groups[gapIndex + k] }
            groups = moved
            count = 8
        }
        guard count == 8 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for k in 0..<4 { high = high << 16 | UInt64(groups[k]) }
        for k in 4..<8 { low = low << 16 | UInt64(groups[k]) }
        return (high, low)
    }

    /// RFC 5952 text: lower case, longest run of zero groups compressed.
    static func formatV6(high: UInt64, low: UInt64) -> String {
        func group(_ i: Int) -> UInt16 {
            UInt16(truncatingIfNeeded: (i < 4 ? high : low) >> (48 - 16 * UInt64(i & 3)))
        }
        var bestStart = -1, bestLength = 0, runStart = -1
        for i in 0...8 {
            if i < 8 && group(i) == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength && i - runStart >= 2 { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        // At most 39 bytes, written without building a string per group.
        return String(unsafeUninitializedCapacity: 39) { buffer in
            var n = 0
            func put(_ b: UInt8) { buffer[n] = b; n += 1 }
            func hex(_ v: UInt16) {
                var started = false
                for shift in stride(from: 12, through: 0, by: -4) {
                    let d = UInt8((v >> UInt16(shift)) & 0xF)
                    if d == 0 && !started && shift > 0 { continue }
                    started = true
                    put(d < 10 ? UInt8(ascii: "0") + d : UInt8(ascii: "a") + d - 10)
                }
            }
            var i = 0
            while i < 8 {
                if i == bestStart {
                    put(UInt8(ascii: ":"))
                    put(UInt8(ascii: ":"))
                    i += bestLength
                    continue
                }
                if i > 0 && i != bestStart + bestLength { put(UInt8(ascii: ":")) }
                hex(group(i))
                i += 1
            }
            return n
        }
    }
}
