/// Normalisation of envelope addresses for triplet keys.
///
/// Retries of one message must produce the same key even when the sending
/// software stamps every attempt differently, so the sender is reduced:
/// - lower-cased, angle brackets removed; the null sender stays `<>`;
/// - BATV tags removed: `prvs=1234abcdef=user@domain`, and the variants
///   `msprvs1=TAG=user@domain` and `btv1==TAG==user@domain`;
/// - a `+extension` removed from the local part;
/// - runs of digits that stand alone between separators in the local part
///   (VERP and bounce counters such as `bounce-12345-x`) replaced by `#`.
public enum AddressNormalizer {
    /// The sender as stored in a triplet.
    public static func sender(_ raw: String, normalize: Bool = true) -> String {
        var address = stripped(raw)
        if address.isEmpty { return "<>" }
        address = address.lowercased()
        guard normalize else { return address }
        let at = address.lastIndex(of: "@")
        var local = at.map { String(address[..<$0]) } ?? address
        let domain = at.map { String(address[$0...]) } ?? ""
        local = removeBATV(local)
        if let plus = local.firstIndex(of: "+"), plus != local.startIndex {
            local = String(local[..<plus])
        }
        local = maskNumbers(local)
        return local + domain
    }

    /// The recipient as stored in a triplet: lower-cased, brackets removed.
    public static func recipient(_ raw: String) -> String {
        stripped(raw).lowercased()
    }

    static func stripped(_ raw: String) -> String {
        var s = Substring(raw)
        while let first = s.first, first == " " || first == "\t" { s = s.dropFirst() }
        while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
        if s.hasPrefix("<") && s.hasSuffix(">") && s.count >= 2 { s = s.dropFirst().dropLast() }
        return String(s)
    }

    static func removeBATV(_ local: String) -> String {
        // prvs=KDDDSSSSSS=user (RFC draft, most common), msprvs1=TAG=user (Microsoft)
        for tag in ["prvs=", "msprvs1="] where local.hasPrefix(tag) {
            let rest = local.dropFirst(tag.count)
            if let eq = rest.firstIndex(of: "="), rest.index(after: eq) < rest.endIndex {
                return String(rest[rest.index(after: eq)...])
            }
        }
        // btv1==TAG==user (Barracuda)
        if local.hasPrefix("btv1==") {
            let rest = local.dropFirst(6)
            if let range = rest.firstRange(of: "=="), range.upperBound < rest.endIndex {
                return String(rest[range.upperBound...])
            }
        }
        return local
    }

    static func maskNumbers(_ local: String) -> String {
        var out = ""
        out.reserveCapacity(local.utf8.count)
        var digits = ""
        var previousIsWordChar = false
        func flush(nextIsWordChar: Bool) {
            if !digits.isEmpty {
                out += (previousIsWordChar || nextIsWordChar) ? digits : "#"
                digits = ""
            }
        }
        for ch in local {
            if ch.isASCII && ch.isNumber {
                digits.append(ch)
            } else {
                let wordChar = ch.isLetter || ch == "_"
                flush(nextIsWordChar: wordChar)
                out.append(ch)
                previousIsWordChar = wordChar
            }
        }
        flush(nextIsWordChar: false)
        return out
    }
}
