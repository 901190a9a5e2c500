/// One entry of a white- or blacklist: which field it looks at, the pattern,
/// and where it was written, so a decision can name the rule that made it.
public struct ListRule: Sendable, Hashable {
    public enum Pattern: Sendable, Hashable {
        case network(IPNetwork)
        case name(NamePattern)
        case address(AddressPattern)
    }

    public let field: SelectorField
    public let pattern: Pattern
    /// The value as written.
    public let text: String
    /// Where it was written: `greylag.toml:14 (whitelist.senders)`,
    /// `/etc/postgrey/whitelist_clients:12`, `builtin:45`, `manual #7`.
    public let origin: String
    /// Unix seconds after which the rule no longer applies (manual entries).
    public let expires: Int64?

    /// Parses `text` as a value of `field`.
    public init(field: SelectorField, text: String, origin: String, expires: Int64? = nil) throws(ListSyntaxError) {
        let t = text.trimmingBlanks()
        switch field {
        case .client:
            guard let n = IPNetwork(t) else {
                throw ListSyntaxError("\"\(t)\" is not an IP address or CIDR network such as 192.0.2.0/24 or 2001:db8::/32")
            }
            pattern = .network(n)
        case .clientName, .helo, .senderDomain, .recipientDomain:
            pattern = .name(try NamePattern(parsing: t))
        case .sender, .recipient:
            pattern = .address(try AddressPattern(parsing: t))
        }
        self.field = field
        self.text = t
        self.origin = origin
        self.expires = expires
    }

    /// Whether the rule is in force at `now`.
    @inline(__always) func live(at now: Int64) -> Bool { expires.map { now < $0 } ?? true }

    /// What a decision reports about this rule.
    public var match: RuleMatch { RuleMatch(field: field, text: text, origin: origin) }
}

/// The rule that settled a decision, for logs and replies:
/// `whitelist_clients:12 (.google.com)`.
public struct RuleMatch: Sendable, Hashable, CustomStringConvertible {
    public var field: SelectorField
    public var text: String
    public var origin: String

    public init(field: SelectorField, text: String, origin: String) {
        self.field = field
        self.text = text
        self.origin = origin
    }

    public var description: String { "\(origin) (\(text))" }
}

/// The parts of one query that rules look at, prepared once per query:
/// lower-cased, the address parsed, the envelope addresses split. Only the
/// parts some rule looks at are prepared.
public struct MatchSubject: Sendable {
    public let address: IPAddress?
    /// Verified client host name, lower-cased; empty when unknown.
    public let clientName: String
    public let helo: String
    public let sender: MatchAddress
    public let recipient: MatchAddress

    /// `address` is the client address when the caller parsed it already.
    public init(_ query: GreylistQuery, fields: SelectorFields = .all, address: IPAddress?? = nil) {
        if let given = address { self.address = given } else {
            self.address = fields.contains(.client) ? IPAddress(query.clientAddress) : nil
        }
        if fields.contains(.clientName) {
            let name = query.clientName.asciiLowercased().trimmingTrailingDot()
            clientName = name == "unknown" ? "" : name
        } else {
            clientName = ""
        }
        helo = fields.contains(.helo) ? query.heloName.asciiLowercased().trimmingTrailingDot() : ""
        sender = fields.contains(.sender) ? MatchAddress(query.sender) : .empty
        recipient = fields.contains(.recipient) ? MatchAddress(query.recipient) : .empty
    }
}

/// Which parts of a query a set of rules looks at.
public struct SelectorFields: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let client = SelectorFields(rawValue: 1)
    public static let clientName = SelectorFields(rawValue: 2)
    public static let helo = SelectorFields(rawValue: 4)
    /// The sender address or its domain.
    public static let sender = SelectorFields(rawValue: 8)
    /// The recipient address or its domain.
    public static let recipient = SelectorFields(rawValue: 16)
    public static let all: SelectorFields = [.client, .clientName, .helo, .sender, .recipient]

    init(_ field: SelectorField) {
        switch field {
        case .client: self = .client
        case .clientName: self = .clientName
        case .helo: self = .helo
        case .sender, .senderDomain: self = .sender
        case .recipient, .recipientDomain: self = .recipient
        }
    }
}

extension String {
    /// Lower-cased, with a fast path for ASCII (host names and most addresses).
    func asciiLowercased() -> String {
        if utf8.allSatisfy({ $0 < 0x80 && !($0 >= 0x41 && $0 <= 0x5A) }) { return self }
        if utf8.contains(where: { $0 >= 0x80 }) { return lowercased() }
        return String(decoding: utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
