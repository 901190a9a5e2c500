/// What the DNS checks found out about one query, gathered by the daemon
/// (or read from a replayed trace) between the engine's two steps.
public struct DNSFacts: Sendable, Hashable {
    /// Set when SPF said `pass`: the sender's domain authorises the client.
    public var spf: SPFAuthorization?
    /// Every DNS list zone that listed the client, the sender's domain or
    /// the HELO name, with the weight its configuration gives it.
    public var listings: [ZoneListing]
    public var reverseName: ReverseName
    /// The client's verified name matches one of the dynamic-name patterns.
    public var dynamicName: Bool
    /// Checks that gave no answer within the deadline (a zone name, `spf`,
    /// `ptr`): logged and counted; whatever needed them is skipped.
    public var skipped: [String]

    public init(spf: SPFAuthorization? = nil, listings: [ZoneListing] = [], reverseName: ReverseName = .notChecked,
                dynamicName: Bool = false, skipped: [String] = []) {
        self.spf = spf
        self.listings = listings
        self.reverseName = reverseName
        self.dynamicName = dynamicName
        self.skipped = skipped
    }

    /// The sum of the listings' weights (allow-lists weigh below zero).
    public var score: Int {
        listings.reduce(0) { s, l in
            let (sum, overflow) = s.addingReportingOverflow(l.weight)
            return overflow ? (l.weight > 0 ? Int.max : Int.min) : sum
        }
    }
}

/// The SPF authorisation a triplet can be keyed by.
public struct SPFAuthorization: Sendable, Hashable {
    /// The domain `check_host` was asked about (the sender's, or the HELO
    /// name's for the null sender), lower-cased.
    public var domain: String
    /// The mechanism that matched, as written in the record, with the
    /// domain whose record held it: `ip4:192.0.2.0/24 in _spf.example.net`.
    public var mechanism: String

    /// The mechanism as it goes into a triplet's key and log lines: no
    /// spaces (`ip4:192.0.2.0/24@_spf.example.net`).
    public var mechanismKey: String {
        String(mechanism.replacing(" in ", with: "@").map { $0 == " " ? "_" : $0 })
    }

    public init(domain: String, mechanism: String) {
        self.domain = domain
        self.mechanism = mechanism
    }
}

/// One DNS list zone that answered with a listing.
public struct ZoneListing: Sendable, Hashable {
    public var zone: String
    public var weight: Int

    public init(zone: String, weight: Int) {
        self.zone = zone
        self.weight = weight
    }
}

/// What the client's reverse name looks like.
public enum ReverseName: Sendable, Hashable {
    /// Not looked at (no rule needs it).
    case notChecked
    /// A PTR name whose forward lookup gives the client address back.
    case confirmed(String)
    /// A PTR name that does not resolve back to the client address.
    case unconfirmed
    /// No PTR record at all.
    case absent
}

/// How DNS facts change a decision: SPF keying, DNS-list weights and
/// selective greylisting. The defaults change nothing.
public struct DNSPolicy: Sendable, Hashable {
    public enum SPFKeying: String, Sendable, Hashable, CaseIterable {
        /// Triplets keyed by the client network, as always.
        case off
        /// Keyed by the sender domain that authorised the client.
        case domain
        /// Keyed by that domain and the SPF mechanism that matched.
        case mechanism
    }

    public var spfKeying: SPFKeying = .off
    /// A score at or below this, reached by at least one listing, skips
    /// greylisting (allow-lists weigh below zero).
    public var allowThreshold: Int = -1
    /// Selective mode: only suspicious clients are greylisted.
    public var selective: Bool = false
    /// Selective mode: a score at or above this makes a client suspicious.
    public var greylistThreshold: Int = 1
    /// Selective mode: a client without a forward-confirmed reverse name is suspicious.
    public var suspectUnconfirmedReverse: Bool = true
    /// Selective mode: a client whose name looks dynamic is suspicious.
    public var suspectDynamicNames: Bool = true
    /// A score at or above this rejects; nil never rejects.
    public var rejectThreshold: Int? = nil

    public init() {}

    /// Whether any DNS fact can change a decision.
    public var isActive: Bool { spfKeying != .off || selective || rejectThreshold != nil }
}

extension Engine {
    /// What `screen` settled.
    public enum Screening: Sendable, Hashable {
        case decided(Verdict)
        /// Look up this triplet (rekeyed by SPF where that applies).
        case lookup(Triplet)
    }

    /// The step between `prepare` and the store: DNS-list scores, selective
    /// mode and SPF keying, applied to a triplet `prepare` returned. `rule`
    /// is the `[[rules]]` greylist entry that matched: it greylists whatever
    /// selective mode says.
    public func screen(_ triplet: Triplet, _ query: GreylistQuery, facts: DNSFacts, rule: RuleSettings? = nil) -> Screening {
        let score = facts.score
        let zones = facts.listings.map(\.zone)
        if let reject = dns.rejectThreshold, score >= reject {
            return .decided(Verdict(action: .reject, reason: .dnsRejected, triplet: triplet, zones: zones))
        }
        if score <= dns.allowThreshold, facts.listings.contains(where: { $0.weight < 0 }) {
            return .decided(Verdict(action: .pass, reason: .dnsAllowlisted, triplet: triplet, zones: zones))
        }
        if dns.selective && rule == nil && !query.connectionOnly {
            var suspicious = score >= dns.greylistThreshold
            if dns.suspectUnconfirmedReverse {
                switch facts.reverseName {
                case .unconfirmed, .absent: suspicious = true
                case .confirmed, .notChecked: break
                }
            }
            if dns.suspectDynamicNames && facts.dynamicName { suspicious = true }
            if !suspicious {
                return .decided(Verdict(action: .pass, reason: .notSuspicious, triplet: triplet, zones: zones))
            }
        }
        var keyed = triplet
        if let spf = facts.spf, !query.connectionOnly {
            switch dns.spfKeying {
            case .off: break
            case .domain: keyed.network = "spf:\(spf.domain)"
            case .mechanism: keyed.network = "spf:\(spf.domain):\(spf.mechanismKey)"
            }
        }
        return .lookup(keyed)
    }
}
