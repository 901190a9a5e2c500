/// A pattern for a host or domain name (client host name, HELO name, the
/// domain of a sender or recipient).
///
/// | written | matches |
/// |---|---|
/// | `example.com` | example.com and every name under it (postgrey, milter-greylist) |
/// | `.example.com` | only names under example.com (Postfix's leading dot) |
/// | `=mx.example.com` | that name only |
/// | `/regex/` | names the expression matches, case-insensitively |
///
/// Names are compared lower-cased; a trailing dot is ignored.
public enum NamePattern: Hashable, Sendable, CustomStringConvertible {
    case domain(String)
    case subdomains(String)
    case exact(String)
    case regex(RegexPattern)

    public init(parsing text: String) throws(ListSyntaxError) {
        let t = text.trimmingBlanks()
        if t.count >= 2, t.hasPrefix("/"), t.hasSuffix("/") {
            self = .regex(try RegexPattern(String(t.dropFirst().dropLast())))
        } else if t.hasPrefix("=") {
            self = .exact(try Self.validName(t.dropFirst()))
        } else if t.hasPrefix(".") {
            self = .subdomains(try Self.validName(t.dropFirst()))
        } else {
            self = .domain(try Self.validName(t[...]))
        }
    }

    /// Whether `name` (lower-cased, without trailing dot) matches.
    public func matches(_ name: String) -> Bool {
        guard !name.isEmpty else { return false }
        switch self {
        case .exact(let n): return name == n
        case .domain(let d): return name == d || name.hasLabelSuffix(d)
        case .subdomains(let d): return name.hasLabelSuffix(d)
        case .regex(let r): return r.matches(name)
        }
    }

    public var description: String {
        switch self {
        case .exact(let n): return "=\(n)"
        case .domain(let d): return d
        case .subdomains(let d): return ".\(d)"
        case .regex(let r): return r.description
        }
    }

    /// A host or domain name: labels of letters, digits, `-` and `_` (and
    /// UTF-8 for IDNs), no empty label, no blanks.
    static func validName(_ raw: Substring) throws(ListSyntaxError) -> String {
        var s = raw
        if s.hasSuffix(".") { s = s.dropLast() }
        guard !s.isEmpty else { throw ListSyntaxError("empty name") }
        let lowered = s.lowercased()
        for label in lowered.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty else { throw ListSyntaxError("\"\(raw)\" has an empty label") }
            guard label.unicodeScalars.allSatisfy({ $0.value >= 0x80 || $0.properties.isAlphabetic
                    || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "*" }) else {
                throw ListSyntaxError("\"\(raw)\" is not a host or domain name")
            }
        }
        if lowered.contains("*") {
            throw ListSyntaxError("\"\(raw)\": wildcards are not used; \"example.com\" already matches every name under it")
        }
        return lowered
    }
}

extension String {
    /// Whether the string ends with `.` + `domain`: a name strictly under it.
    func hasLabelSuffix(_ domain: String) -> Bool {
        let u = utf8, d = domain.utf8
        guard u.count > d.count, u.reversed().starts(with: d.reversed()) else { return false }
        return u[u.index(u.endIndex, offsetBy: -d.count - 1)] == UInt8(ascii: ".")
    }
}

extension StringProtocol {
    /// Without leading and trailing blanks (space, tab, CR, LF).
    func trimmingBlanks() -> String {
        func blank(_ c: Character) -> Bool { c == " " || c == "\t" || c == "\r" || c == "\n" }
        guard let first = firstIndex(where: { !blank($0) }) else { return "" }
        let last = lastIndex(where: { !blank($0) })!
        return String(self[first...last])
    }
}
