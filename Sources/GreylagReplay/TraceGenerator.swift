import GreylagCore

/// A deterministic pseudo-random source (SplitMix64): the same seed gives
/// the same trace on every platform and Swift version.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `range` (bounded, no modulo bias worth noting for these sizes).
    mutating func int(_ range: ClosedRange<Int64>) -> Int64 {
        let width = UInt64(range.upperBound - range.lowerBound) &+ 1
        return range.lowerBound + Int64(width == 0 ? next() : next() % width)
    }

    mutating func int(_ range: Range<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    /// A first octet in `range` outside the private, loopback and
    /// link-local blocks (10, 127, 169, 172, 192), which a daemon trusts or
    /// never sees from outside.
    mutating func publicOctet(_ range: ClosedRange<Int64>) -> Int64 {
        while true {
            let o = int(range)
            if ![10, 127, 169, 172, 192].contains(o) { return o }
        }
    }

    /// True with probability `p`.
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
}

/// The synthetic trace of docs/replay.md: pool senders retrying from other
/// hosts of their pools, single-host MTAs on their default queue
/// schedules, and spam engines that never retry or retry at once.
public enum TraceGenerator {
    public static let messageRange = 1...1_000_000
    /// Messages arrive evenly spread over this many seconds (seven days).
    public static let span: Int64 = 7 * 86_400
    /// The recipients' domain and how many users it has.
    public static let localDomain = "example.org"
    public static let localUsers = 500

    /// The kinds of sender, each with its share of the messages (per mille).
    public enum SenderClass: String, CaseIterable, Sendable {
        case outlook, ses, gmail, postfix, exim
        case botnet, ratware, snowshoe, spamMTA = "spam-mta"

        public var share: Int {
            switch self {
            case .outlook: return 200
            case .ses: return 120
            case .gmail: return 130
            case .postfix: return 120
            case .exim: return 80
            case .botnet: return 175
            case .ratware: return 90
            case .snowshoe: return 50
            case .spamMTA: return 35
            }
        }

        public var kind: TraceMessage.Kind {
            switch self {
            case .outlook, .ses, .gmail, .postfix, .exim: return .legit
            case .botnet, .ratware, .snowshoe, .spamMTA: return .spam
            }
        }
    }

    /// The DNS list zones the trace names (weighed by the configuration).
    public static let allowZone = "list.dnswl.org"
    public static let blockZone = "zen.spamhaus.org"
    public static let secondBlockZone = "bl.spamcop.net"

    /// The trace for `seed`, message by message in arrival order;
    /// `messages` is brought into `messageRange`.
    public static func generate(seed: UInt64, messages wanted: Int, emit: (TraceMessage) throws -> Void) rethrows {
        let messages = min(max(wanted, messageRange.lowerBound), messageRange.upperBound)
        var rng = SplitMix64(seed: seed)
        let world = World(seed: seed)
        let slot = max(1, span / Int64(messages))
        for i in 0..<messages {
            let start = Int64(i) * span / Int64(messages) + rng.int(0...(slot - 1))
            var pick = rng.int(0..<1000)
            var cls = SenderClass.outlook
            for c in SenderClass.allCases {
                if pick < c.share { cls = c; break }
                pick -= c.share
            }
            try emit(message(i, cls, start: start, world: world, rng: &rng))
        }
    }

    /// The whole trace in memory.
    public static func generate(seed: UInt64, messages: Int) -> [TraceMessage] {
        var all: [TraceMessage] = []
        all.reserveCapacity(messages)
        generate(seed: seed, messages: messages) { all.append($0) }
        return all
    }

    // MARK: The senders

    /// The single-host sites and the pools' networks, fixed by the seed.
    struct World {
        struct Site {
            var domain: String
            var address: String
            var name: String
            var reverse: TraceAttempt.Reverse
            var spf: Bool
            var allowListed: Bool
            var blockListed: Bool
        }
        var postfix: [Site] = []
        var exim: [Site] = []
        var spamMTAs: [Site] = []

        init(seed: UInt64) {
            var rng = SplitMix64(seed: seed ^ 0x5EED_0F_5175)
            func site(_ i: Int, _ label: String, confirmed: Double, allow: Double, block: Double, rng: inout SplitMix64) -> Site {
                let address = "\(rng.publicOctet(5...94)).\(rng.int(0...255)).\(rng.int(0...255)).\(rng.int(1...254))"
                let domain = "\(label)\(i).example"
                let confirmedName = rng.chance(confirmed)
                return Site(domain: domain, address: address, name: "mail.\(domain)",
                            reverse: confirmedName ? .confirmed : .unconfirmed, spf: rng.chance(0.8),
                            allowListed: rng.chance(allow), blockListed: rng.chance(block))
            }
            postfix = (0..<600).map { site($0, "pf-site", confirmed: 0.92, allow: 0.15, block: 0.02, rng: &rng) }
            exim = (0..<400).map { site($0, "exim-site", confirmed: 0.9, allow: 0.15, block: 0.02, rng: &rng) }
            spamMTAs = (0..<100).map { site($0, "hosted", confirmed: 0.8, allow: 0, block: 0.4, rng: &rng) }
        }
    }

    static func recipients(_ rng: inout SplitMix64, spam: Bool) -> [String] {
        let count = spam ? (rng.chance(0.6) ? 1 : rng.int(2..<6)) : (rng.chance(0.85) ? 1 : rng.int(2..<4))
        var chosen: [String] = []
        while chosen.count < count {
            // Legitimate mail goes mostly to a few busy users.
            let n = spam ? rng.int(0..<localUsers) : min(rng.int(0..<localUsers), rng.int(0..<localUsers))
            let r = "user\(n)@\(localDomain)"
            if !chosen.contains(r) { chosen.append(r) }
        }
        return chosen
    }

    static func message(_ i: Int, _ cls: SenderClass, start: Int64, world: World, rng: inout SplitMix64) -> TraceMessage {
        let id = "\(cls.rawValue)-\(i)"
        let to = recipients(&rng, spam: cls.kind == .spam)
        let times = schedule(cls, start: start, rng: &rng)
        switch cls {
        case .outlook:
            let tenant = "tenant\(rng.int(0..<400)).example"
            let sender = "u\(rng.int(0..<20))@\(tenant)"
            let attempts = times.map { t in pooled(t, rng: &rng, pool: .outlook, domain: tenant) }
            return TraceMessage(id: id, kind: .legit, sender: sender, recipients: to, attempts: attempts)
        case .ses:
            let sender = "0100018c\(hex(rng.next()))-\(hex(rng.next() & 0xFFFF_FFFF))-000000@us-east-1.amazonses.com"
            let attempts = times.map { t in pooled(t, rng: &rng, pool: .ses, domain: "us-east-1.amazonses.com") }
            return TraceMessage(id: id, kind: .legit, sender: sender, recipients: to, attempts: attempts)
        case .gmail:
            let sender = "person\(rng.int(0..<3000))@gmail.com"
            var last: TraceAttempt? = nil
            let attempts = times.map { t -> TraceAttempt in
                let a = pooled(t, rng: &rng, pool: .gmail, domain: "gmail.com", near: last)
                last = a
                return a
            }
            return TraceMessage(id: id, kind: .legit, sender: sender, recipients: to, attempts: attempts)
        case .postfix, .exim, .spamMTA:
            let sites = cls == .postfix ? world.postfix : cls == .exim ? world.exim : world.spamMTAs
            let s = sites[rng.int(0..<sites.count)]
            let sender = cls == .spamMTA ? "offers\(rng.int(0..<1000))@\(s.domain)" : "staff\(rng.int(0..<5))@\(s.domain)"
            var zones: [String] = []
            if s.allowListed { zones.append(allowZone) }
            if s.blockListed { zones.append(cls == .spamMTA ? blockZone : secondBlockZone) }
            let spf = s.spf ? SPFAuthorization(domain: s.domain, mechanism: "ip4:\(s.address) in \(s.domain)") : nil
            let attempts = times.map {
                TraceAttempt(at: $0, client: s.address, name: s.reverse == .confirmed ? s.name : "", helo: s.name,
                             spf: spf, zones: zones, reverse: s.reverse)
            }
            return TraceMessage(id: id, kind: cls.kind, sender: sender, recipients: to, attempts: attempts)
        case .botnet, .ratware:
            let a = botAttempt(times[0], listed: cls == .botnet ? 0.75 : 0.65, rng: &rng)
            let sender = "\(["info", "sales", "admin", "news"][rng.int(0..<4)])\(rng.int(0..<100_000))@"
                + "\(["mailer", "promo", "bank", "shop"][rng.int(0..<4)])\(rng.int(0..<5000)).example"
            let attempts = times.map { t -> TraceAttempt in
                var b = a
                b.at = t
                return b
            }
            return TraceMessage(id: id, kind: .spam, sender: sender, recipients: to, attempts: attempts)
        case .snowshoe:
            let net = "\(rng.publicOctet(100...199)).\(rng.int(0...255)).\(rng.int(0...255))"
            let domain = "promo\(rng.int(0..<300)).example"
            let host = rng.int(1...254)
            let name = "mx\(host).\(domain)"
            let zones = rng.chance(0.3) ? [secondBlockZone] : []
            let attempt = TraceAttempt(at: times[0], client: "\(net).\(host)", name: name, helo: name,
                                       spf: SPFAuthorization(domain: domain, mechanism: "ip4:\(net).0/24 in \(domain)"),
                                       zones: zones, reverse: .confirmed)
            return TraceMessage(id: id, kind: .spam, sender: "deals@\(domain)", recipients: to, attempts: [attempt])
        }
    }

    static func botAttempt(_ at: Int64, listed: Double, rng: inout SplitMix64) -> TraceAttempt {
        let (a, b, c, d) = (rng.publicOctet(2...223), rng.int(0...255), rng.int(0...255), rng.int(1...254))
        let address = "\(a).\(b).\(c).\(d)"
        var zones: [String] = []
        if rng.chance(listed) { zones.append(blockZone) }
        if rng.chance(0.3) { zones.append(secondBlockZone) }
        let helo = rng.chance(0.5) ? "[\(address)]" : "pc\(rng.int(0..<10_000))"
        let roll = rng.int(0..<100)
        if roll < 45 {
            return TraceAttempt(at: at, client: address, helo: helo, zones: zones, reverse: .absent)
        } else if roll < 60 {
            return TraceAttempt(at: at, client: address, helo: helo, zones: zones, reverse: .unconfirmed)
        }
        let name = "dyn-\(a)-\(b)-\(c)-\(d).pool.isp\(rng.int(0..<50)).example"
        return TraceAttempt(at: at, client: address, name: name, helo: helo, zones: zones, reverse: .confirmed, dynamic: true)
    }

    // MARK: Pools

    enum Pool {
        case outlook, ses, gmail

        /// The IPv4 networks of the pool: a /16 or so of each published
        /// range, as (first two octets, how many /24s are in use).
        var v4: [(String, Int)] {
            switch self {
            case .outlook: return [("40.107", 48), ("52.100", 16), ("52.101", 16), ("104.47", 16)]
            case .ses: return [("54.240", 24), ("23.251", 8)]
            case .gmail: return [("209.85", 40), ("74.125", 8)]
            }
        }
        /// The IPv6 /48 of the pool and the share of attempts over IPv6.
        var v6: (String, Double) {
            switch self {
            case .outlook: return ("2a01:111:f403", 0.5)
            case .ses: return ("2600:1f14:ffff", 0)
            case .gmail: return ("2a00:1450:4864", 0.4)
            }
        }
        /// The SPF mechanism (with the record holding it) for a v4 /16 or the v6 range.
        func mechanism(v4 prefix: String?) -> String {
            switch self {
            case .outlook:
                return prefix.map { "ip4:\($0).0.0/16 in spf.protection.outlook.com" }
                    ?? "ip6:2a01:111:f403::/48 in spf.protection.outlook.com"
            case .ses:
                return prefix.map { "ip4:\($0).0.0/16 in amazonses.com" } ?? "ip6:2600:1f14:ffff::/48 in amazonses.com"
            case .gmail:
                return prefix.map { "ip4:\($0).0.0/16 in _netblocks.google.com" } ?? "ip6:2a00:1450:4000::/36 in _netblocks2.google.com"
            }
        }
        func name(_ rng: inout SplitMix64) -> String {
            switch self {
            case .outlook: return "mail-eur\(rng.int(1...6))on2\(rng.int(100...199)).outbound.protection.outlook.com"
            case .ses: return "a\(rng.int(1...99))-\(rng.int(1...250)).smtp-out.amazonses.com"
            case .gmail: return "mail-sor-f\(rng.int(1...99)).google.com"
            }
        }
    }

    /// An attempt from a random host of `pool`; `near` (Gmail) keeps half
    /// the retries in the /24 of the previous attempt.
    static func pooled(_ at: Int64, rng: inout SplitMix64, pool: Pool, domain: String, near: TraceAttempt? = nil) -> TraceAttempt {
        let name = pool.name(&rng)
        let helo = name
        let (v6prefix, v6share) = pool.v6
        if rng.chance(v6share) {
            let address = "\(v6prefix):\(hex16(rng.int(0...0xFFFF)))::\(hex16(rng.int(1...0xFFFF)))"
            return TraceAttempt(at: at, client: address, name: name, helo: helo,
                                spf: SPFAuthorization(domain: domain, mechanism: pool.mechanism(v4: nil)), reverse: .confirmed)
        }
        let address: String
        let prefix: String
        if let near, near.client.contains("."), rng.chance(0.5) {
            let octets = near.client.split(separator: ".")
            prefix = "\(octets[0]).\(octets[1])"
            address = "\(octets[0]).\(octets[1]).\(octets[2]).\(rng.int(1...254))"
        } else {
            let total = pool.v4.reduce(0) { $0 + $1.1 }
            var k = rng.int(0..<total)
            var chosen = pool.v4[0]
            for n in pool.v4 {
                if k < n.1 { chosen = n; break }
                k -= n.1
            }
            prefix = chosen.0
            address = "\(chosen.0).\(k * 256 / chosen.1 % 256).\(rng.int(1...254))"
        }
        return TraceAttempt(at: at, client: address, name: name, helo: helo,
                            spf: SPFAuthorization(domain: domain, mechanism: pool.mechanism(v4: prefix)), reverse: .confirmed)
    }

    // MARK: Schedules

    /// The attempt times of one message of `cls` first tried at `start`
    /// (docs/replay.md says where each schedule comes from); at most
    /// `TraceLimits.maxAttempts`.
    static func schedule(_ cls: SenderClass, start: Int64, rng: inout SplitMix64) -> [Int64] {
        var times = [start]
        func add(_ t: Int64) { if times.count < TraceLimits.maxAttempts { times.append(t) } }
        /// Retries `first` seconds apart, the interval growing by `factor`
        /// once `after` seconds have passed, up to `cap`, until `until`.
        func backoff(first: Int64, factor: Double, after: Int64, cap: Double, until: Int64) {
            var interval = Double(first)
            var t = start
            while true {
                t += Int64(interval)
                if t - start > until { break }
                add(t)
                if t - start > after { interval = min(cap, interval * factor) }
            }
        }
        switch cls {
        case .outlook:
            // Exchange Online: the first retries within 15 minutes, then
            // intervals growing by half up to an hour; expires after 24 hours.
            backoff(first: rng.int(300...900), factor: 1.5, after: 3600, cap: 3600, until: 86_400)
        case .ses:
            // Amazon SES: retries with growing intervals for up to 14 hours.
            backoff(first: rng.int(60...300), factor: 2, after: 0, cap: 3600, until: 14 * 3600)
        case .gmail:
            // Gmail (not published; as observed): back after 5 to 10
            // minutes, then doubling intervals up to an hour, for two days.
            backoff(first: rng.int(300...600), factor: 2, after: 0, cap: 3600, until: 2 * 86_400)
        case .postfix, .spamMTA:
            // Postfix: minimal_backoff_time 300s doubling up to
            // maximal_backoff_time 4000s, found by the queue manager's
            // scan every queue_run_delay (300s); maximal_queue_lifetime 5d.
            var backoff: Int64 = 300
            var t = start
            while true {
                t += backoff + rng.int(0...299)
                if t - start > 5 * 86_400 { break }
                add(t)
                backoff = min(4000, backoff * 2)
            }
        case .exim:
            // Exim's default retry rule: F,2h,15m; G,16h,1h,1.5; F,4d,6h,
            // found by a queue runner every five minutes.
            var t = start
            var interval: Double = 900
            while true {
                let age = t - start
                if age >= 4 * 86_400 { break }
                if age < 7200 {
                    interval = 900
                } else if age < 16 * 3600 {
                    interval = interval <= 900 ? 3600 : interval * 1.5
                } else {
                    interval = 6 * 3600
                }
                t += Int64(interval) + rng.int(0...299)
                if t - start > 4 * 86_400 { break }
                add(t)
            }
        case .botnet, .snowshoe:
            break
        case .ratware:
            // Retries at once: one to three more tries within seconds.
            var t = start
            for _ in 0..<rng.int(1..<4) {
                t += rng.int(1...20)
                add(t)
            }
        }
        return times
    }

    static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 16 - s.count)) + s
    }

    static func hex16(_ v: Int64) -> String { String(v, radix: 16) }
}
