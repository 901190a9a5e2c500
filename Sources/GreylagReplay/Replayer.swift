import GreylagCore

/// A configuration to replay a trace against: the engine (policy, lists,
/// DNS policy) and the weight of each DNS list zone.
public struct ReplayProfile: Sendable {
    public var name: String
    public var engine: Engine
    /// Zone name (lower case) to weight; zones not here are not asked.
    public var zoneWeights: [String: Int]

    public init(name: String, engine: Engine, zoneWeights: [String: Int] = [:]) {
        self.name = name
        self.engine = engine
        self.zoneWeights = Dictionary(zoneWeights.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
    }
}

/// What a replay found, for one profile.
public struct ReplayReport: Sendable, Hashable, Codable {
    public var profile: String
    public var messages: Int
    /// Decisions asked (one per recipient still waiting, per attempt).
    public var decisions: Int

    public var spam: Int
    /// Spam messages none of whose recipients was ever accepted.
    public var spamBlocked: Int
    /// Of those, refused outright (a DNS-list score over the reject threshold, a blacklist).
    public var spamRejected: Int
    public var spamBlockedShare: Double

    public var legit: Int
    /// Legitimate messages accepted for every recipient.
    public var legitAccepted: Int
    /// Of those, accepted later than their first attempt.
    public var legitDelayed: Int
    /// `legitDelayed` over all legitimate messages.
    public var legitDelayedShare: Double
    /// Legitimate messages with a recipient still deferred when the sender gave up.
    public var legitGaveUp: Int
    /// Legitimate messages with a recipient refused.
    public var legitRejected: Int
    /// Seconds from the first attempt to the acceptance of the last
    /// recipient, over the accepted legitimate messages (0 for those not
    /// delayed); nil without any.
    public var delayMedian: Int64?
    public var delayP90: Int64?
    public var delayMax: Int64?
}

/// Feeds a trace through the engine on a manual clock, with an in-memory
/// store, the way the daemon would decide.
public enum Replayer {
    /// Replays `messages` under `profile`. Attempts of all messages are
    /// walked in time order (ties in trace order); a message stops at the
    /// attempt that gets every recipient accepted; a refused recipient is
    /// not retried (a 5xx is final). Records that expired are forgotten
    /// every simulated hour, as the daemon's expiry job would.
    public static func run(_ messages: [TraceMessage], profile: ReplayProfile) -> ReplayReport {
        struct Event: Comparable {
            var at: Int64
            var message: Int32
            var attempt: Int32
            static func < (a: Event, b: Event) -> Bool {
                (a.at, a.message, a.attempt) < (b.at, b.message, b.attempt)
            }
        }
        var events: [Event] = []
        events.reserveCapacity(messages.reduce(0) { $0 + $1.attempts.count })
        for (i, m) in messages.enumerated() {
            for (j, a) in m.attempts.enumerated() { events.append(Event(at: a.at, message: Int32(i), attempt: Int32(j))) }
        }
        events.sort()

        struct Progress {
            var waiting: [Int]
            var accepted = 0
            var rejected = 0
            var lastAccepted: Int64 = 0
        }
        var progress = messages.map { Progress(waiting: Array($0.recipients.indices)) }
        var store = MemoryStore()
        var decisions = 0
        var nextExpiry: Int64 = events.first.map { $0.at + 3600 } ?? 0
        for e in events {
            if e.at >= nextExpiry {
                store.expire(before: e.at)
                nextExpiry = e.at + 3600
            }
            let m = messages[Int(e.message)]
            var p = progress[Int(e.message)]
            guard !p.waiting.isEmpty else { continue }
            let a = m.attempts[Int(e.attempt)]
            let facts = a.facts(weights: profile.zoneWeights)
            var still: [Int] = []
            for r in p.waiting {
                // As Postfix sends it: a name only when it is verified.
                let verified = !a.name.isEmpty && (a.reverse == .confirmed || a.reverse == .unchecked)
                let query = GreylistQuery(clientAddress: a.client, clientName: verified ? a.name : "unknown",
                                          heloName: a.helo, sender: m.sender, recipient: m.recipients[r], origin: "replay")
                decisions += 1
                let verdict = store.ask(profile.engine, query, facts: facts, at: a.at)
                switch verdict.action {
                case .pass:
                    p.accepted += 1
                    p.lastAccepted = a.at
                case .reject:
                    p.rejected += 1
                case .defer:
                    still.append(r)
                }
            }
            p.waiting = still
            progress[Int(e.message)] = p
        }

        var report = ReplayReport(profile: profile.name, messages: messages.count, decisions: decisions,
                                  spam: 0, spamBlocked: 0, spamRejected: 0, spamBlockedShare: 0,
                                  legit: 0, legitAccepted: 0, legitDelayed: 0, legitDelayedShare: 0,
                                  legitGaveUp: 0, legitRejected: 0)
        var delays: [Int64] = []
        for (m, p) in zip(messages, progress) {
            switch m.kind {
            case .spam:
                report.spam += 1
                if p.accepted == 0 {
                    report.spamBlocked += 1
                    if p.rejected > 0 { report.spamRejected += 1 }
                }
            case .legit:
                report.legit += 1
                if p.rejected > 0 {
                    report.legitRejected += 1
                } else if !p.waiting.isEmpty {
                    report.legitGaveUp += 1
                } else {
                    report.legitAccepted += 1
                    let delay = p.lastAccepted - m.attempts[0].at
                    delays.append(delay)
                    if delay > 0 { report.legitDelayed += 1 }
                }
            }
        }
        report.spamBlockedShare = report.spam == 0 ? 0 : Double(report.spamBlocked) / Double(report.spam)
        report.legitDelayedShare = report.legit == 0 ? 0 : Double(report.legitDelayed) / Double(report.legit)
        delays.sort()
        report.delayMedian = Percentile.nearestRank(delays, 0.5)
        report.delayP90 = Percentile.nearestRank(delays, 0.9)
        report.delayMax = delays.last
        return report
    }
}
