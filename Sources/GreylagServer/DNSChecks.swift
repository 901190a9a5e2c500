import Foundation
import GreylagCore
import GreylagDNS
import GreylagSPF
import Synchronization

/// What an SPF check answers: the result word for logs (`pass`, `fail`,
/// `softfail`, `neutral`, `none`, `temperror`, `permerror`) and, for
/// `pass` only, the authorisation a triplet can be keyed by.
public struct SPFCheckResult: Sendable, Hashable {
    public var result: String
    public var authorization: SPFAuthorization?

    public init(result: String, authorization: SPFAuthorization? = nil) {
        self.result = result
        self.authorization = authorization
    }
}

/// Checks the client against the sender's SPF record (RFC 7208 `check_host`
/// on the MAIL FROM identity, or the HELO name's for the null sender).
/// The daemon wraps `SPFEvaluator.check(ip:mailFrom:helo:)` in one.
public typealias SPFCheck = @Sendable (_ client: IPAddress, _ mailFrom: String, _ helo: String) async -> SPFCheckResult

extension SPFCheckResult {
    /// The SPF check of `evaluator`: RFC 7208 on the MAIL FROM identity, or
    /// the HELO name's for the null sender.
    public static func check(_ evaluator: SPFEvaluator) -> SPFCheck {
        { ip, mailFrom, helo in
            let o = await evaluator.check(ip: ip, mailFrom: mailFrom, helo: helo)
            return SPFCheckResult(result: o.result.rawValue, authorization: o.authorization)
        }
    }
}

/// Which answers of a DNS list count as a listing.
///
/// By default any address in 127.0.0.0/8 except 127.255.255.0/24, the
/// range public lists use to say "you are querying wrongly" (Spamhaus:
/// open resolver, over the free limit). `patterns` (postscreen's
/// `127.0.0.[2..11]`, `127.0.0.[1;3;5..7]`) replace that default; `mask`
/// keeps only answers whose last octet has one of its bits.
public struct AnswerCodes: Sendable, Hashable {
    /// One answer pattern: for each of the four octets, the values it takes.
    public struct Pattern: Sendable, Hashable, CustomStringConvertible {
        public var octets: [[ClosedRange<UInt8>]]

        public func matches(_ a: [UInt8]) -> Bool {
            a.count == 4 && zip(octets, a).allSatisfy { ranges, b in ranges.contains { $0.contains(b) } }
        }

        public var description: String {
            octets.map { r in
                if r.count == 1 && r[0].lowerBound == r[0].upperBound { return "\(r[0].lowerBound)" }
                return "[" + r.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)..\($0.upperBound)" }
                    .joined(separator: ";") + "]"
            }.joined(separator: ".")
        }
    }

    public var patterns: [Pattern]
    /// Bits of the last octet, one of which an answer must have.
    public var mask: UInt8?

    public init(patterns: [Pattern] = [], mask: UInt8? = nil) {
        self.patterns = patterns
        self.mask = mask
    }

    /// Whether the A record `a` (four bytes) counts.
    public func counts(_ a: [UInt8]) -> Bool {
        guard a.count == 4 else { return false }
        if let mask, a[3] & mask == 0 { return false }
        if patterns.isEmpty {
            return a[0] == 127 && !(a[1] == 255 && a[2] == 255)
        }
        return patterns.contains { $0.matches(a) }
    }

    public struct PatternError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses one pattern: four dot-separated octets, each a number
    /// (`2`), a range (`[2..11]`) or a list of both (`[1;3;5..7]`).
    public static func pattern(_ text: String) throws(PatternError) -> Pattern {
        let bad = PatternError(description: "\"\(text.logEscaped)\" is not an answer pattern such as "
                               + "\"127.0.0.2\", \"127.0.0.[2..11]\" or \"127.0.0.[1;3;5..7]\"")
        guard text.utf8.count <= 200 else { throw bad }
        // Split at the dots outside brackets.
        var parts: [String] = []
        var current = ""
        var inBracket = false
        for c in text {
            switch c {
            case "[":
                guard !inBracket, current.isEmpty else { throw bad }
                inBracket = true
                current.append(c)
            case "]":
                guard inBracket else { throw bad }
                inBracket = false
                current.append(c)
            case "." where !inBracket:
                parts.append(current)
                current = ""
            default:
                current.append(c)
            }
        }
        parts.append(current)
        guard !inBracket, parts.count == 4 else { throw bad }
        var octets: [[ClosedRange<UInt8>]] = []
        for p in parts {
            if let v = UInt8(p) {
                octets.append([v...v])
                continue
            }
            guard p.hasPrefix("["), p.hasSuffix("]"), p.count > 2 else { throw bad }
            var ranges: [ClosedRange<UInt8>] = []
            for item in p.dropFirst().dropLast().split(separator: ";", omittingEmptySubsequences: false) {
                if let v = UInt8(item) {
                    ranges.append(v...v)
                    continue
                }
                let ends = item.components(separatedBy: "..")
                guard ends.count == 2, let a = UInt8(ends[0]), let b = UInt8(ends[1]), a <= b else { throw bad }
                ranges.append(a...b)
            }
            octets.append(ranges)
        }
        return Pattern(octets: octets)
    }
}

/// One `[[dnslists]]` entry.
public struct DNSListZone: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// DNSBL / DNSWL: the client address, reversed (IPv4 octets, IPv6 nibbles).
        case client
        /// RHSBL on the sender's domain.
        case sender
        /// RHSBL on the HELO name.
        case helo
    }

    public var zone: String
    public var kind: Kind
    /// Added to the client's score when the zone lists it; allow-lists weigh below zero.
    public var weight: Int
    public var codes: AnswerCodes

    public init(zone: String, kind: Kind = .client, weight: Int = 1, codes: AnswerCodes = AnswerCodes()) {
        self.zone = zone
        self.kind = kind
        self.weight = weight
        self.codes = codes
    }

    /// The name to look up for `query`, or nil when the query has nothing
    /// this list can be asked about (the null sender, an address literal
    /// as HELO name, a name too long once the zone is added).
    public func queryName(for query: GreylistQuery, address: IPAddress) -> String? {
        let subject: String
        switch kind {
        case .client:
            subject = DNSNames.reversed(address)
        case .sender:
            guard let at = query.sender.lastIndex(of: "@") else { return nil }
            guard let d = DNSNames.hostName(String(query.sender[query.sender.index(after: at)...])) else { return nil }
            subject = d
        case .helo:
            guard let d = DNSNames.hostName(query.heloName), IPAddress(d) == nil else { return nil }
            subject = d
        }
        let name = subject + "." + zone
        return name.utf8.count <= 253 ? name : nil
    }
}

/// Names as DNS checks build and validate them.
public enum DNSNames {
    /// The reversed address without a zone: `1.2.0.192` or 32 nibbles.
    public static func reversed(_ address: IPAddress) -> String {
        switch address {
        case .v4(let a):
            return "\(a & 0xFF).\((a >> 8) & 0xFF).\((a >> 16) & 0xFF).\(a >> 24)"
        case .v6(let high, let low):
            let hex = Array("0123456789abcdef")
            var nibbles: [Character] = []
            nibbles.reserveCapacity(32)
            for word in [low, high] {
                for i in 0..<16 { nibbles.append(hex[Int((word >> (4 * UInt64(i))) & 0xF)]) }
            }
            return nibbles.map(String.init).joined(separator: ".")
        }
    }

    /// The PTR name of an address: `1.2.0.192.in-addr.arpa`, `...ip6.arpa`.
    public static func ptrName(_ address: IPAddress) -> String {
        reversed(address) + (address.isIPv4 ? ".in-addr.arpa" : ".ip6.arpa")
    }

    /// `text` lower-cased without a trailing dot if it is a host name
    /// (labels of letters, digits, `-` and `_`, 1 to 63 bytes, at least two
    /// labels, at most 253 bytes); nil otherwise.
    public static func hostName(_ text: String) -> String? {
        var s = text.lowercased()
        if s.hasSuffix(".") { s.removeLast() }
        guard isDomain(s), s.contains(".") else { return nil }
        return s
    }

    /// Whether `s` is a valid domain name as greylag asks for one.
    public static func isDomain(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 253 else { return false }
        for label in s.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard (1...63).contains(label.count), label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-"),
                  label.allSatisfy({ c in
                      (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                          || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "-")
                          || c == UInt8(ascii: "_")
                  }) else { return false }
        }
        return true
    }
}

/// Patterns of host names that access providers give their customers'
/// dynamic lines, matched against the client's PTR name.
public struct DynamicNames: Sendable, Hashable {
    public var patterns: [RegexPattern]
    /// Where the patterns came from: `builtin` or a file path.
    public var origin: String

    public init(patterns: [RegexPattern], origin: String) {
        self.patterns = patterns
        self.origin = origin
    }

    /// Reads the pattern file format (one regex a line, `#` comments);
    /// throws naming the first bad line.
    public static func parse(_ text: String, origin: String) throws(ListSyntaxError) -> DynamicNames {
        var out: [RegexPattern] = []
        var n = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            n += 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            do {
                out.append(try RegexPattern(String(line)))
            } catch {
                throw ListSyntaxError("line \(n): \(error)")
            }
        }
        return DynamicNames(patterns: out, origin: origin)
    }

    /// The shipped set: `Sources/GreylagServer/Resources/dynamic-names`.
    public static let builtin: DynamicNames = {
        (try? parse(builtinText, origin: "builtin")) ?? DynamicNames(patterns: [], origin: "builtin")
    }()

    public static var builtinText: String { String(decoding: PackageResources.dynamic_names, as: UTF8.self) }

    /// Whether `name` (a host name, any case) looks dynamic.
    public func matches(_ name: String) -> Bool {
        var s = name.lowercased()
        if s.hasSuffix(".") { s.removeLast() }
        guard !s.isEmpty, s.utf8.count <= 253 else { return false }
        return patterns.contains { $0.matches(s) }
    }
}


/// The DNS checks' settings: everything besides the engine's `DNSPolicy`.
public struct DNSCheckSettings: Sendable, Hashable {
    public var lists: [DNSListZone] = []
    /// One deadline for all the checks of one decision, in seconds.
    public var deadline: Double = 2
    public var dynamicNames: DynamicNames = .builtin
    /// The reply of a `dns_rejected` verdict, when configured.
    public var rejectReply: RuleReply? = nil

    public init() {}
}

