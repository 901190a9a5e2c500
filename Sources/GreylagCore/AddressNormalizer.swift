/// Normalisation of envelope addresses for triplet keys.
///
/// Retries of one message must produce the same key even when the sending
/// software stamps every attempt differently, so the sender is reduced:
/// - lower-cased, angle brackets removed; the null sender stays `<>`;
/// - an SRS address (`SRS0=HHH=TT=domain=local@forwarder`,
///   `SRS1=HHH=forwarder==HHH=TT=domain=local@forwarder`) replaced by the
///   original sender `local@domain` it encodes, so mail forwarded by
///   different hosts or on different days keys like the original;
/// - BATV tags removed: `prvs=1234abcdef=user@domain`, and the variants
///   `msprvs1=TAG=user@domain` and `btv1==TAG==user@domain`;
/// - a `+extension` removed from the local part;
/// - runs of digits that stand alone between separators in the local part
///   (VERP and bounce counters such as `bounce-12345-x`) replaced by `#`.
public enum AddressNormalizer {
    /// The sender as stored in a triplet.
    public static func sender(_ raw: String, normalize: Bool = true) -> String {
        var bytes = lowered(stripped(raw))
        if bytes.isEmpty { return "<>" }
        guard normalize else { return String(decoding: bytes, as: UTF8.self) }
        if let original = decodeSRS(bytes) { bytes = original }
        let at = bytes.lastIndex(of: UInt8(ascii: "@")) ?? bytes.endIndex
        var local = removeBATV(bytes[..<at])
        if let plus = local.firstIndex(of: UInt8(ascii: "+")), plus != local.startIndex {
            local = local[..<plus]
        }
        // Masking never lengthens the local part: the string is made once,
        // in place, instead of from an array built for it.
        let domain = bytes[at...]
        return String(unsafeUninitializedCapacity: local.count + domain.count) { buffer in
            var n = maskNumbers(local, into: buffer)
            for byte in domain {
                buffer[n] = byte
                n += 1
            }
            return n
        }
    }

    /// The address lower-cased, without brackets and without a BATV tag:
    /// the form list rules are matched against. Empty for the null sender.
    public static func withoutBATV(_ raw: String) -> String {
        let bytes = lowered(stripped(raw))
        let at = bytes.lastIndex(of: UInt8(ascii: "@")) ?? bytes.endIndex
        var out = Array(removeBATV(bytes[..<at]))
        out.append(contentsOf: bytes[at...])
        return String(decoding: out, as: UTF8.self)
    }

    /// The recipient as stored in a triplet: lower-cased, brackets removed.
    public static func recipient(_ raw: String) -> String {
        let s = stripped(raw)
        // Most recipients arrive bare and lower-case: then they are their own form.
        if s.count == raw.utf8.count
            && !s.contains(where: { $0 >= 0x80 || ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) }) {
            return raw
        }
        return String(decoding: lowered(s), as: UTF8.self)
    }

    /// The address without surrounding blanks and angle brackets.
    static func stripped(_ raw: String) -> Substring.UTF8View {
        var s = Substring(raw).utf8
        while let first = s.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { s = s.dropFirst() }
        while let last = s.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { s = s.dropLast() }
        if s.count >= 2 && s.first == UInt8(ascii: "<") && s.last == UInt8(ascii: ">") { s = s.dropFirst().dropLast() }
        return s
    }

    /// Lower-cased bytes: ASCII directly, anything else through Unicode rules.
    static func lowered(_ s: Substring.UTF8View) -> [UInt8] {
        if s.contains(where: { $0 >= 0x80 }) { return Array(String(Substring(s)).lowercased().utf8) }
        return s.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 | 0x20 : $0 }
    }

    static func hasPrefix(_ s: ArraySlice<UInt8>, _ prefix: StaticString) -> Bool {
        let p = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
        return s.count >= p.count && s.prefix(p.count).elementsEqual(p)
    }

    /// The original sender `local@domain` of an SRS address (lower-cased
    /// bytes), or nil when `address` is not a well-formed one. SRS0:
    /// `srs0` and a separator (`=`, `+` or `-`), then `HASH=TT=DOMAIN=LOCAL`.
    /// SRS1: `srs1` and a separator, `HASH=FORWARDER=`, a separator, then
    /// the SRS0 part `HASH=TT=DOMAIN=LOCAL`. LOCAL may hold `=`; the others
    /// may not, and none may be empty. Linear in the length; anything else
    /// stays as it is.
    public static func decodeSRS(_ address: [UInt8]) -> [UInt8]? {
        guard let at = address.lastIndex(of: UInt8(ascii: "@")), at > 5 else { return nil }
        let local = address[..<at]
        let equals = UInt8(ascii: "=")
        func isSeparator(_ b: UInt8) -> Bool { b == equals || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") }
        /// `HASH=TT=DOMAIN=LOCAL` → `LOCAL@DOMAIN`.
        func srs0Body(_ body: ArraySlice<UInt8>) -> [UInt8]? {
            var rest = body
            var fields: [ArraySlice<UInt8>] = []
            for _ in 0..<3 {
                guard let eq = rest.firstIndex(of: equals), eq > rest.startIndex else { return nil }
                fields.append(rest[rest.startIndex..<eq])
                rest = rest[(eq + 1)...]
            }
            let domain = fields[2]
            guard !rest.isEmpty, !domain.contains(UInt8(ascii: "@")), domain.first != UInt8(ascii: "."),
                  !rest.contains(UInt8(ascii: "@")) else { return nil }
            return Array(rest) + [UInt8(ascii: "@")] + Array(domain)
        }
        guard local.count > 5, local[local.startIndex] == UInt8(ascii: "s"), local[local.startIndex + 1] == UInt8(ascii: "r"),
              local[local.startIndex + 2] == UInt8(ascii: "s"), isSeparator(local[local.startIndex + 4]) else { return nil }
        let body = local[(local.startIndex + 5)...]
        switch local[local.startIndex + 3] {
        case UInt8(ascii: "0"):
            return srs0Body(body)
        case UInt8(ascii: "1"):
            // HASH=FORWARDER= then the SRS0 separator and body.
            guard let eq1 = body.firstIndex(of: equals), eq1 > body.startIndex else { return nil }
            let afterHash = body[(eq1 + 1)...]
            guard let eq2 = afterHash.firstIndex(of: equals), eq2 > afterHash.startIndex,
                  eq2 + 2 < afterHash.endIndex, isSeparator(afterHash[eq2 + 1]) else { return nil }
            return srs0Body(afterHash[(eq2 + 2)...])
        default:
            return nil
        }
    }

    static func removeBATV(_ local: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        let equals = UInt8(ascii: "=")
        // prvs=KDDDSSSSSS=user (the BATV draft, most common), msprvs1=TAG=user (Microsoft)
        for (tag, length) in [("prvs=" as StaticString, 5), ("msprvs1=", 8)] where hasPrefix(local, tag) {
            let rest = local.dropFirst(length)
            if let eq = rest.firstIndex(of: equals), eq + 1 < rest.endIndex {
                return rest[(eq + 1)...]
            }
        }
        // btv1==TAG==user (Barracuda)
        if hasPrefix(local, "btv1==") {
            var i = local.startIndex + 6
            while i + 1 < local.endIndex {
                if local[i] == equals && local[i + 1] == equals {
                    if i + 2 < local.endIndex { return local[(i + 2)...] }
                    break
                }
                i += 1
            }
        }
        return local
    }

    /// Runs of digits that stand alone (not touching a letter or `_`) become `#`.
    static func maskNumbers(_ local: ArraySlice<UInt8>) -> [UInt8] {
        Array(unsafeUninitializedCapacity: local.count) { buffer, count in
            count = maskNumbers(local, into: UnsafeMutableBufferPointer(rebasing: buffer[...]))
        }
    }

    /// `maskNumbers` written to the start of `out`, which has room for at
    /// least `local.count` bytes (the result is never longer); returns how
    /// many bytes it wrote.
    static func maskNumbers(_ local: ArraySlice<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        func isWord(_ b: UInt8) -> Bool {
            (b | 0x20 >= UInt8(ascii: "a") && b | 0x20 <= UInt8(ascii: "z")) || b == UInt8(ascii: "_") || b >= 0x80
        }
        var n = 0
        var i = local.startIndex
        while i < local.endIndex {
            guard isDigit(local[i]) else {
                out[n] = local[i]
                n += 1
                i += 1
                continue
            }
            var end = i
            while end < local.endIndex && isDigit(local[end]) { end += 1 }
            let before = i > local.startIndex && isWord(local[i - 1])
            let after = end < local.endIndex && isWord(local[end])
            if before || after {
                for byte in local[i..<end] {
                    out[n] = byte
                    n += 1
                }
            } else {
                out[n] = UInt8(ascii: "#")
                n += 1
            }
            i = end
        }
        return n
    }
}
