import GreylagCore

// An SPF record, RFC 7208 sections 4.5, 4.6.1, 5, 6 and 7.1 (ABNF, names and
// letters without case):
//
//     record        = "v=spf1" *( 1*SP ( directive / modifier ) ) *SP
//     directive     = [ "+" / "-" / "?" / "~" ] mechanism
//     mechanism     = "all" / "include:" domain-spec / "a" [ ":" domain-spec ] [ dual-cidr-length ]
//                   / "mx" [ ":" domain-spec ] [ dual-cidr-length ] / "ptr" [ ":" domain-spec ]
//                   / "ip4:" ip4-network [ "/" ip4-cidr-length ] / "ip6:" ip6-network [ "/" ip6-cidr-length ]
//                   / "exists:" domain-spec
//     modifier      = "redirect=" domain-spec / "exp=" domain-spec / name "=" macro-string
//     name          = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )
//     dual-cidr-length = [ "/" ip4-cidr-length ] [ "//" ip6-cidr-length ]   (0-32, 0-128, no leading zero)
//     domain-spec   = macro-string domain-end
//     domain-end    = ( "." toplabel [ "." ] ) / macro-expand
//     toplabel      = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
//     macro-literal = %x21-24 / %x26-7E
//
// The whole record is parsed before anything is evaluated: a syntax error
// anywhere is `permerror` (section 4.6).

/// Why an evaluation stopped early.
enum SPFStop: Error, Equatable {
    /// `permerror`, with what was wrong.
    case perm(String)
    /// `temperror`, with what failed.
    case temp(String)
}

/// One piece of a macro-string (RFC 7208 section 7.1).
enum MacroPiece: Hashable {
    /// Literal text.
    case literal([UInt8])
    /// `%%`, `%_` or `%-`: a macro-expand in the grammar with a fixed value.
    case escape([UInt8])
    /// `%{letter digits r delimiters}`.
    case expand(letter: UInt8, urlEscape: Bool, keep: Int?, reverse: Bool, delimiters: [UInt8])
}

/// A parsed macro-string.
struct MacroString: Hashable {
    var pieces: [MacroPiece]

    /// Parses `bytes` as a macro-string (`explain`: an explain-string, where
    /// spaces and the `c`, `r` and `t` letters are allowed).
    static func parse(_ bytes: ArraySlice<UInt8>, explain: Bool) throws(SPFStop) -> MacroString {
        var pieces: [MacroPiece] = []
        var literal: [UInt8] = []
        var i = bytes.startIndex
        func flush() {
            if !literal.isEmpty { pieces.append(.literal(literal)); literal = [] }
        }
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == UInt8(ascii: "%") {
                guard i + 1 < bytes.endIndex else { throw .perm("a lone % at the end of a macro-string") }
                let n = bytes[i + 1]
                switch n {
                case UInt8(ascii: "%"): flush(); pieces.append(.escape([UInt8(ascii: "%")])); i += 2
                case UInt8(ascii: "_"): flush(); pieces.append(.escape([UInt8(ascii: " ")])); i += 2
                case UInt8(ascii: "-"): flush(); pieces.append(.escape(Array("%20".utf8))); i += 2
                case UInt8(ascii: "{"):
                    flush()
                    var j = i + 2
                    guard j < bytes.endIndex else { throw .perm("an unterminated macro") }
                    let letterByte = bytes[j]
                    let lower = letterByte | 0x20
                    let isUpper = letterByte >= UInt8(ascii: "A") && letterByte <= UInt8(ascii: "Z")
                    let letters: [UInt8] = Array("slodiphv".utf8) + (explain ? Array("crt".utf8) : [])
                    guard (lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "z")), letters.contains(lower) else {
                        throw .perm("an unknown macro letter '\(Character(Unicode.Scalar(letterByte)))'")
                    }
                    j += 1
                    var keep: Int? = nil
                    var digits = 0
                    while j < bytes.endIndex, bytes[j] >= UInt8(ascii: "0"), bytes[j] <= UInt8(ascii: "9") {
                        let d = Int(bytes[j] - UInt8(ascii: "0"))
                        keep = min((keep ?? 0) * 10 + d, 1_000)
                        digits += 1
                        j += 1
                    }
                    if digits > 0, keep == 0 { throw .perm("a macro that keeps zero labels") }
                    var reverse = false
                    if j < bytes.endIndex, bytes[j] | 0x20 == UInt8(ascii: "r") { reverse = true; j += 1 }
                    var delimiters: [UInt8] = []
                    while j < bytes.endIndex, Self.delimiters.contains(bytes[j]) {
                        delimiters.append(bytes[j])
                        j += 1
                    }
                    guard j < bytes.endIndex, bytes[j] == UInt8(ascii: "}") else { throw .perm("a malformed macro") }
                    pieces.append(.expand(letter: lower, urlEscape: isUpper, keep: keep, reverse: reverse,
                                          delimiters: delimiters))
                    i = j + 1
                default:
                    throw .perm("an invalid % escape in a macro-string")
                }
            } else if (b >= 0x21 && b <= 0x7E) || (explain && b == 0x20) {
                literal.append(b)
                i += 1
            } else {
                throw .perm("a character outside the visible ASCII range in a macro-string")
            }
        }
        flush()
        return MacroString(pieces: pieces)
    }

    static let delimiters: [UInt8] = Array(".-+,/_=".utf8)

    /// Parses a domain-spec: a macro-string that ends in a macro-expand or
    /// in `.toplabel` with an optional trailing dot (RFC 7208 section 7.1).
    static func parseDomainSpec(_ bytes: ArraySlice<UInt8>) throws(SPFStop) -> MacroString {
        guard !bytes.isEmpty else { throw .perm("an empty domain-spec") }
        let m = try parse(bytes, explain: false)
        guard case .literal(var tail) = m.pieces.last else { return m }
        if tail.last == UInt8(ascii: ".") { tail.removeLast() }
        guard let dot = tail.lastIndex(of: UInt8(ascii: ".")) else {
            throw .perm("a domain-spec without a top label")
        }
        guard isTopLabel(tail[(dot + 1)...]) else { throw .perm("a domain-spec with an invalid top label") }
        return m
    }

    /// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
    static func isTopLabel(_ label: ArraySlice<UInt8>) -> Bool {
        guard let first = label.first, let last = label.last else { return false }
        func alnum(_ c: UInt8) -> Bool { isAlpha(c) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) }
        func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") }
        guard label.allSatisfy({ alnum($0) || $0 == UInt8(ascii: "-") }) else { return false }
        if label.allSatisfy(alnum) { return label.contains(where: isAlpha) }
        return alnum(first) && alnum(last)
    }
}

/// One directive of a record.
struct Directive: Hashable {
    enum Qualifier: UInt8 {
        case pass = 43 // "+"
        case fail = 45 // "-"
        case softfail = 126 // "~"
        case neutral = 63 // "?"

        var result: SPFResult {
            switch self {
            case .pass: return .pass
            case .fail: return .fail
            case .softfail: return .softfail
            case .neutral: return .neutral
            }
        }
    }

    enum Mechanism: Hashable {
        case all
        case include(MacroString)
        case a(MacroString?, v4: Int, v6: Int)
        case mx(MacroString?, v4: Int, v6: Int)
        case ptr(MacroString?)
        case ip4(UInt32, prefix: Int)
        case ip6(high: UInt64, low: UInt64, prefix: Int)
        case exists(MacroString)

        /// Whether the term counts against the ten-lookup limit.
        var queriesDNS: Bool {
            switch self {
            case .include, .a, .mx, .ptr, .exists: return true
            case .all, .ip4, .ip6: return false
            }
        }
    }

    var qualifier: Qualifier
    var mechanism: Mechanism
    /// The term as written.
    var text: String
}

/// A parsed SPF record (RFC 7208 section 4.6).
struct SPFRecord: Hashable {
    var directives: [Directive] = []
    var redirect: MacroString?
    var explanation: MacroString?

    var hasAll: Bool { directives.contains { $0.mechanism == .all } }

    /// Whether `bytes` (one TXT record's strings joined) is an SPF record:
    /// `v=spf1` followed by a space or the end, in any case.
    static func isSPF(_ bytes: [UInt8]) -> Bool {
        let version = Array("v=spf1".utf8)
        guard bytes.count >= version.count else { return false }
        for (k, v) in version.enumerated() where bytes[k] | (v >= 0x61 ? 0x20 : 0) != v { return false }
        return bytes.count == version.count || bytes[version.count] == UInt8(ascii: " ")
    }

    /// Parses a whole record; any syntax error anywhere is `permerror`.
    static func parse(_ bytes: [UInt8]) throws(SPFStop) -> SPFRecord {
        var record = SPFRecord()
        let body = bytes.dropFirst(6)
        for term in body.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true) {
            try record.add(term)
        }
        return record
    }

    private mutating func add(_ term: ArraySlice<UInt8>) throws(SPFStop) {
        let text = String(decoding: term, as: UTF8.self)
        guard term.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            throw .perm("a term with a character outside the visible ASCII range")
        }
        // A modifier: name "=" macro-string, name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ).
        if let eq = term.firstIndex(of: UInt8(ascii: "=")),
           term[term.startIndex..<eq].allSatisfy({ Self.isNameChar($0) }) {
            let name = term[term.startIndex..<eq]
            guard let first = name.first, Self.isAlpha(first) else { throw .perm("an invalid modifier name in '\(text)'") }
            let value = term[(eq + 1)...]
            switch String(decoding: name, as: UTF8.self).lowercased() {
            case "redirect":
                guard redirect == nil else { throw .perm("two redirect modifiers") }
                redirect = try MacroString.parseDomainSpec(value)
            case "exp":
                guard explanation == nil else { throw .perm("two exp modifiers") }
                explanation = try MacroString.parseDomainSpec(value)
            default:
                _ = try MacroString.parse(value, explain: false)
            }
            return
        }
        var rest = term
        var qualifier = Directive.Qualifier.pass
        if let first = rest.first, let q = Directive.Qualifier(rawValue: first) {
            qualifier = q
            rest = rest.dropFirst()
        }
        let nameEnd = rest.firstIndex(where: { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "/") }) ?? rest.endIndex
        let name = String(decoding: rest[rest.startIndex..<nameEnd], as: UTF8.self).lowercased()
        let arg = rest[nameEnd...]
        let mechanism: Directive.Mechanism
        switch name {
        case "all":
            guard arg.isEmpty else { throw .perm("'all' takes no argument") }
            mechanism = .all
        case "include":
            mechanism = .include(try Self.requiredDomain(arg, text))
        case "exists":
            mechanism = .exists(try Self.requiredDomain(arg, text))
        case "ptr":
            if arg.isEmpty {
                mechanism = .ptr(nil)
            } else {
                mechanism = .ptr(try Self.requiredDomain(arg, text))
            }
        case "a", "mx":
            let (domainPart, v4, v6) = try Self.dualCIDR(arg)
            var domain: MacroString? = nil
            if !domainPart.isEmpty {
                guard domainPart.first == UInt8(ascii: ":") else { throw .perm("a malformed '\(text)'") }
                domain = try MacroString.parseDomainSpec(domainPart.dropFirst())
            }
            mechanism = name == "a" ? .a(domain, v4: v4, v6: v6) : .mx(domain, v4: v4, v6: v6)
        case "ip4":
            guard arg.first == UInt8(ascii: ":") else { throw .perm("'ip4' needs an address") }
            var address = arg.dropFirst()
            var prefix = 32
            if let slash = address.firstIndex(of: UInt8(ascii: "/")) {
                prefix = try Self.cidr(address[(slash + 1)...], max: 32)
                address = address[address.startIndex..<slash]
            }
            guard address.allSatisfy({ ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: ".") }),
                  case .v4(let v4)? = IPAddress(String(decoding: address, as: UTF8.self)) else {
                throw .perm("an invalid IPv4 address in '\(text)'")
            }
            mechanism = .ip4(v4, prefix: prefix)
        case "ip6":
            guard arg.first == UInt8(ascii: ":") else { throw .perm("'ip6' needs an address") }
            var address = arg.dropFirst()
            var prefix = 128
            if let slash = address.firstIndex(of: UInt8(ascii: "/")) {
                prefix = try Self.cidr(address[(slash + 1)...], max: 128)
                address = address[address.startIndex..<slash]
            }
            guard address.contains(UInt8(ascii: ":")),
                  address.allSatisfy({ Self.isHex($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }),
                  let parsed = IPAddress(String(decoding: address, as: UTF8.self)) else {
                throw .perm("an invalid IPv6 address in '\(text)'")
            }
            switch parsed {
            case .v6(let high, let low): mechanism = .ip6(high: high, low: low, prefix: prefix)
            case .v4(let v4): mechanism = .ip6(high: 0, low: 0xFFFF_0000_0000 | UInt64(v4), prefix: prefix)
            }
        default:
            throw .perm("an unknown mechanism '\(text)'")
        }
        directives.append(Directive(qualifier: qualifier, mechanism: mechanism, text: text))
    }

    private static func requiredDomain(_ arg: ArraySlice<UInt8>, _ text: String) throws(SPFStop) -> MacroString {
        guard arg.first == UInt8(ascii: ":") else { throw .perm("'\(text)' needs a domain") }
        return try MacroString.parseDomainSpec(arg.dropFirst())
    }

    /// Splits `[":" domain-spec] [ip4-cidr-length] ["/" ip6-cidr-length]` off the end.
    private static func dualCIDR(_ arg: ArraySlice<UInt8>) throws(SPFStop) -> (ArraySlice<UInt8>, Int, Int) {
        var rest = arg
        var v4 = 32, v6 = 128
        // The last "/" starts a CIDR length only when digits follow it to the end.
        func trailingLength() -> ArraySlice<UInt8>? {
            guard let slash = rest.lastIndex(of: UInt8(ascii: "/")) else { return nil }
            let digits = rest[(slash + 1)...]
            guard digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
            return rest[slash...]
        }
        if let last = trailingLength() {
            let slash = last.startIndex
            if slash > rest.startIndex, rest[slash - 1] == UInt8(ascii: "/") {
                v6 = try cidr(last.dropFirst(), max: 128)
                rest = rest[rest.startIndex..<(slash - 1)]
                if let ip4 = trailingLength() {
                    v4 = try cidr(ip4.dropFirst(), max: 32)
                    rest = rest[rest.startIndex..<ip4.startIndex]
                }
            } else {
                v4 = try cidr(last.dropFirst(), max: 32)
                rest = rest[rest.startIndex..<slash]
            }
        }
        return (rest, v4, v6)
    }

    /// A CIDR length without leading zeros, at most `max`.
    private static func cidr(_ digits: ArraySlice<UInt8>, max: Int) throws(SPFStop) -> Int {
        guard !digits.isEmpty, digits.count <= 3,
              digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              !(digits.count > 1 && digits.first == UInt8(ascii: "0")),
              let value = Int(String(decoding: digits, as: UTF8.self)), value <= max else {
            throw .perm("an invalid CIDR length")
        }
        return value
    }

    static func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") }
    static func isHex(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || ((c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "f"))
    }
    static func isNameChar(_ c: UInt8) -> Bool {
        isAlpha(c) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "-")
            || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
    }
}
