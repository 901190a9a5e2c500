/// What the answers to one lookup say, CNAME chains followed: the pure part
/// of the client, which the fuzz target runs on decoded packets too.
public struct DNSAnswerChain: Sendable {
    /// Links of a CNAME chain followed at most, over all the answers of a lookup.
    public static let maxLinks = 8

    public enum Reading: Equatable, Sendable {
        /// The outcome, and how many seconds it may be cached (failures: the caller's failure TTL).
        case result(DNSLookupResult, seconds: UInt32)
        /// The answer ends at a CNAME whose target it does not cover: ask for `name` (now `self.name`).
        case ask(String)
    }

    /// The name to ask for next.
    public private(set) var name: String
    public let type: DNSRecordType
    private let maxTTL: UInt32
    private let maxNegativeTTL: UInt32
    private var seen: Set<String>
    private var ttl: UInt32
    private var links = 0

    public init(name: String, type: DNSRecordType, settings: DNSSettings) {
        self.name = name
        self.type = type
        self.maxTTL = settings.maxTTL
        self.maxNegativeTTL = settings.maxNegativeTTL
        self.seen = [name]
        self.ttl = settings.maxTTL
    }

    /// Reads the answer to the question for `name`.
    public mutating func read(_ message: DNSWire.Message) -> Reading {
        // The chain inside the answer: CNAME records from `name` on.
        var current = name
        var records: [DNSRecordData] = []
        while true {
            let own = message.answers.filter { $0.name == current && $0.type == type.rawValue && $0.class == 1 }
            records = own.compactMap(\.data)
            if !records.isEmpty {
                ttl = own.reduce(ttl) { min($0, $1.ttl) }
                break
            }
            guard type != .cname,
                  let link = message.answers.first(where: { $0.name == current && $0.type == DNSRecordType.cname.rawValue }),
                  case .cname(let target)? = link.data else { break }
            links += 1
            guard links <= Self.maxLinks, seen.insert(target).inserted else {
                return .result(.failure(.malformed), seconds: 0)
            }
            ttl = min(ttl, link.ttl)
            current = target
        }
        if !records.isEmpty { return .result(.records(records), seconds: min(ttl, maxTTL)) }
        // RFC 2308: the SOA of a negative answer gives its TTL, min(TTL, MINIMUM).
        let soa = message.authority.first { $0.type == DNSRecordType.soa.rawValue && $0.soaMinimum != nil }
        let negative = soa.map { min($0.ttl, $0.soaMinimum!, ttl, maxNegativeTTL) } ?? 0
        if message.rcode == .nxDomain { return .result(.nxDomain, seconds: negative) }
        if current != name && soa == nil {
            // A CNAME into a zone the answer does not cover: ask for the target.
            name = current
            return .ask(current)
        }
        return .result(.noData, seconds: negative)
    }
}
