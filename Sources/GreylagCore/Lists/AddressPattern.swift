/// A pattern for an envelope address (sender or recipient), with the forms
/// of postgrey's `whitelist_recipients` and Postfix access tables:
///
/// | written | matches |
/// |---|---|
/// | `user@example.com` | that address, also with a `+extension` (`user+tag@example.com`) |
/// | `user@` | that local part (and its `+extension`s) at any domain |
/// | `example.com` / `.example.com` / `=example.com` | by domain, as `NamePattern` |
/// | `@example.com` | every address at exactly that domain |
/// | `/regex/` | addresses the expression matches, case-insensitively |
/// | `<>` | the null sender (bounces) |
public enum AddressPattern: Hashable, Sendable, CustomStringConvertible {
    case address(local: String, domain: String)
    case localPart(String)
    case domain(NamePattern)
    case regex(RegexPattern)
    case nullSender

    public init(parsing text: String) throws(ListSyntaxError) {
        let t = text.trimmingBlanks().lowercased()
        guard !t.isEmpty else { throw ListSyntaxError("empty address") }
        if t == "<>" {
            self = .nullSender
            return
        }
        if t.count >= 2, t.hasPrefix("/"), t.hasSuffix("/") {
            self = .regex(try RegexPattern(String(text.trimmingBlanks().dropFirst().dropLast())))
            return
        }
        guard !t.contains(where: { $0 == " " || $0 == "\t" || $0 == "<" || $0 == ">" }) else {
            throw ListSyntaxError("\"\(text)\" is not an address, domain or /regex/")
        }
        if let at = t.lastIndex(of: "@") {
            let local = String(t[..<at])
            let domain = t[t.index(after: at)...]
            if local.isEmpty {
                self = .domain(.exact(try NamePattern.validName(domain)))
            } else if domain.isEmpty {
                self = .localPart(local)
            } else {
                self = .address(local: local, domain: try NamePattern.validName(domain))
            }
        } else {
            self = .domain(try NamePattern(parsing: t))
        }
    }

    public var description: String {
        switch self {
        case .address(let l, let d): return "\(l)@\(d)"
        case .localPart(let l): return "\(l)@"
        case .domain(.exact(let d)): return "@\(d)"
        case .domain(let p): return p.description
        case .regex(let r): return r.description
        case .nullSender: return "<>"
        }
    }
}

/// An envelope address split for matching: lower-cased, without brackets,
/// BATV tag removed (so a signed bounce address matches its plain form).
public struct MatchAddress: Sendable, Hashable {
    /// The whole address; empty for the null sender.
    public let full: String
    public let local: String
    /// The local part up to a `+extension`.
    public let baseLocal: String
    public let domain: String

    /// No address (the part was not needed).
    public static let empty = MatchAddress(full: "", local: "", baseLocal: "", domain: "")

    private init(full: String, local: String, baseLocal: String, domain: String) {
        self.full = full
        self.local = local
        self.baseLocal = baseLocal
        self.domain = domain
    }

    public init(_ raw: String) {
        let full = AddressNormalizer.withoutBATV(raw)
        self.full = full
        if let at = full.lastIndex(of: "@") {
            local = String(full[..<at])
            domain = String(full[full.index(after: at)...]).trimmingTrailingDot()
        } else {
            local = full
            domain = ""
        }
        if let plus = local.firstIndex(of: "+"), plus != local.startIndex {
            baseLocal = String(local[..<plus])
        } else {
            baseLocal = local
        }
    }
}

extension String {
    func trimmingTrailingDot() -> String { hasSuffix(".") ? String(dropLast()) : self }
}
