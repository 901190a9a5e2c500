import Foundation
import GreylagCore
import GreylagDNS
import GreylagStore
import Logging
import Milter
import PolicyProtocol
import Synchronization

/// Answers greylisting queries for every protocol: engine rules, the store,
/// the failure mode when the store cannot answer, and one log line per
/// decision.
public final class GreylistService: Sendable {
    /// What every decision reads, replaced as a whole by reloads and admin
    /// commands: a decision takes one reference to it instead of copying
    /// the engine's rules and the replies.
    public final class Current: Sendable {
        public let engine: Engine
        public let replies: PolicyReplyConfig
        public let milterReplies: MilterReplyConfig
        /// DNS lists, the deadline and dynamic names (the engine holds the `DNSPolicy`).
        public let checks: DNSCheckSettings
        /// Changes with every replacement: a connection copies the replies
        /// again only when it does.
        public let generation: UInt64

        init(engine: Engine, replies: PolicyReplyConfig, milterReplies: MilterReplyConfig, checks: DNSCheckSettings,
             generation: UInt64) {
            self.engine = engine
            self.replies = replies
            self.milterReplies = milterReplies
            self.checks = checks
            self.generation = generation
        }

        // The engine's steps, called on the snapshot in place. Called as
        // `current.engine.prepare(...)` from the service, the optimizer
        // copied the whole engine (some thirty references: its rule lists)
        // for each decision.
        func prepare(_ query: GreylistQuery, now: Int64) -> Engine.Preparation {
            engine.prepare(query, now: now)
        }

        func screen(_ triplet: Triplet, _ query: GreylistQuery, facts: DNSFacts, rule: Engine.RuleSettings?) -> Engine.Screening {
            engine.screen(triplet, query, facts: facts, rule: rule)
        }

        func decide(_ triplet: Triplet, state: TripletState, now: Int64, dryRun: RuleMatch?, delay: Int64?,
                    rule: Engine.RuleSettings?) -> Decision {
            engine.decide(triplet, state: state, now: now, dryRun: dryRun, delay: delay, rule: rule)
        }

        /// Whether DNS facts can change a decision.
        var needsDNS: Bool { engine.dns.isActive || !checks.lists.isEmpty }

        func with(engine: Engine? = nil, replies: PolicyReplyConfig? = nil, milterReplies: MilterReplyConfig? = nil,
                  checks: DNSCheckSettings? = nil) -> Current {
            Current(engine: engine ?? self.engine, replies: replies ?? self.replies,
                    milterReplies: milterReplies ?? self.milterReplies, checks: checks ?? self.checks,
                    generation: generation &+ 1)
        }
    }

    /// What reloads and admin commands change.
    struct State: Sendable {
        var current: Current
        /// The configuration's list rules, before manual entries are added.
        var configLists: ListRules
        var manual: [ManualEntry] = []
        /// The ticket of the manual entries in force (see `refreshManualEntries`).
        var manualTicket: UInt64 = 0
    }

    private let manualTickets = Atomic<UInt64>(0)

    private let state: Mutex<State>
    public let store: any GreylistStore
    public let failureMode: GreylagConfiguration.FailureMode
    private let logger: Logger
    /// The decision lines' path past swift-log, when the logger is greylag's own.
    private let directLog: GreylagLogHandler.DirectLines?
    /// The wall clock in Unix seconds; tests pass a manual one.
    public let now: @Sendable () -> Int64
    /// Decisions since start, by reason and action.
    public let counters = DecisionCounters()
    /// Whether the store answers (degraded while it fails).
    public let health: StoreHealth
    /// Counts and latencies for `/metrics`.
    public let metrics: GreylagMetrics
    /// Hourly counts and recent decisions for the dashboard.
    public let history = DecisionHistory()
    /// Answers the DNS checks' lookups; nil: no lookups (DNS lists and
    /// reverse lookups are skipped).
    public let resolver: (any DNSResolving)?
    /// SPF for SPF keying; nil: no SPF check.
    public let spf: SPFCheck?

    public init(policy: GreylistPolicy, lists: ListRules = ListRules(), replies: PolicyReplyConfig = PolicyReplyConfig(),
                milterReplies: MilterReplyConfig = MilterReplyConfig(), store: any GreylistStore, failureMode: GreylagConfiguration.FailureMode = .pass, logger: Logger,
                clock: @escaping @Sendable () -> Int64 = unixNow, metrics: GreylagMetrics = GreylagMetrics(),
                dns: DNSPolicy = DNSPolicy(), checks: DNSCheckSettings = DNSCheckSettings(),
                resolver: (any DNSResolving)? = nil, spf: SPFCheck? = nil) {
        self.state = Mutex(State(current: Current(engine: Engine(policy: policy, lists: lists, dns: dns), replies: replies,
                                                  milterReplies: milterReplies, checks: checks, generation: 1),
                                 configLists: lists))
        self.resolver = resolver
        self.spf = spf
        self.store = store
        self.failureMode = failureMode
        self.logger = logger
        self.directLog = (logger.handler as? GreylagLogHandler)?.direct
        self.now = clock
        self.metrics = metrics
        self.health = StoreHealth(logger: logger, failureMode: failureMode, factory: metrics.factory)
    }

    /// The engine, replies and checks in force, as one reference.
    public var current: Current { state.withLock { $0.current } }

    /// The engine in force (replaced on reload and by admin commands).
    public var engine: Engine { current.engine }

    /// How replies are worded now.
    public var replies: PolicyReplyConfig { current.replies }

    /// How milter replies and headers are worded now.
    public var milterReplies: MilterReplyConfig { current.milterReplies }

    /// The configuration's list rules in force, without manual entries.
    public var configuredLists: ListRules { state.withLock { $0.configLists } }

    /// The manual entries in force.
    public var manualEntries: [ManualEntry] { state.withLock { $0.manual } }

    /// The DNS checks' settings in force.
    public var dnsChecks: DNSCheckSettings { current.checks }

    /// Puts a reloaded configuration in force; manual entries stay.
    public func reconfigure(policy: GreylistPolicy, lists: ListRules, replies: PolicyReplyConfig,
                            milterReplies: MilterReplyConfig, dns: DNSPolicy = DNSPolicy(),
                            checks: DNSCheckSettings = DNSCheckSettings()) {
        state.withLock { s in
            s.configLists = lists
            s.current = s.current.with(engine: Engine(policy: policy, lists: Self.merged(lists, s.manual, logger: logger), dns: dns),
                                       replies: replies, milterReplies: milterReplies, checks: checks)
        }
    }

    /// Reads the manual entries from the store and puts them in force.
    /// Concurrent refreshes may finish in any order; a ticket taken before
    /// each read makes sure the last read started wins, and it sees every
    /// change written before any refresh was asked for.
    public func refreshManualEntries() async throws {
        let ticket = manualTickets.add(1, ordering: .sequentiallyConsistent).newValue
        let entries = try await store.manualEntries()
        state.withLock { s in
            guard ticket > s.manualTicket else { return }
            s.manualTicket = ticket
            s.manual = entries
            var engine = s.current.engine
            engine.lists = Self.merged(s.configLists, entries, logger: logger)
            s.current = s.current.with(engine: engine)
        }
    }

    /// The configuration's lists with the manual entries added to the
    /// white- and blacklist.
    static func merged(_ lists: ListRules, _ manual: [ManualEntry], logger: Logger) -> ListRules {
        guard !manual.isEmpty else { return lists }
        var out = lists
        var white = lists.whitelist.rules
        var black = lists.blacklist.rules
        for entry in manual {
            do {
                let rule = try entry.rule()
                if entry.list == .whitelist { white.insert(rule, at: 0) } else { black.insert(rule, at: 0) }
            } catch {
                logger.warning("manual entry #\(entry.id) ignored: \(error)")
            }
        }
        out.whitelist = RuleSet(white)
        out.blacklist = RuleSet(black)
        return out
    }

    /// Decides one query at `now` and calls `completion` with the verdict,
    /// synchronously when no store lookup is needed, else from the store's
    /// thread once the change is committed. The caller logs the decision.
    ///
    /// When DNS facts can change the decision (SPF keying, DNS lists,
    /// selective mode), they are gathered first, off the event loop and
    /// within `DNSCheckSettings.deadline`; `completion` is then called from
    /// the resolver's or the store's thread. Without DNS settings the path
    /// is the synchronous one.
    public func decide(_ query: GreylistQuery, now: Int64, completion: @escaping @Sendable (Verdict) -> Void) {
        let current = self.current
        let started = StoreHealth.now()
        switch current.prepare(query, now: now) {
        case .decided(let verdict):
            metrics.decisionTook(nanoseconds: StoreHealth.now() &- started)
            completion(verdict)
        case .lookup(let triplet, let dryRun, let rule):
            guard current.needsDNS, let address = IPAddress(query.clientAddress) else {
                lookup(triplet, query, current: current, dryRun: dryRun, rule: rule, now: now, started: started,
                       completion: completion)
                return
            }
            let plan = DNSCheckPlan(query: query, address: address, policy: current.engine.dns, settings: current.checks, rule: rule,
                                    canSPF: spf != nil)
            if plan.isEmpty {
                lookup(triplet, query, current: current, dryRun: dryRun, rule: rule, now: now, started: started,
                       completion: completion)
                return
            }
            let dnsStarted = StoreHealth.now()
            DNSFactGathering.start(plan, query: query, address: address, settings: current.checks,
                                   suspectDynamic: current.engine.dns.suspectDynamicNames, resolver: resolver, spf: spf) { facts, spfResult in
                if plan.needsLookups { self.metrics.dnsChecked(facts, nanoseconds: StoreHealth.now() &- dnsStarted) }
                let zones = facts.listings.map(\.zone)
                @Sendable func dressed(_ v: Verdict) -> Verdict {
                    var v = v
                    v.zones = zones
                    v.spf = spfResult
                    v.skipped = facts.skipped
                    return v
                }
                switch current.screen(triplet, query, facts: facts, rule: rule) {
                case .decided(var verdict):
                    if verdict.reason == .dnsRejected, verdict.reply == nil { verdict.reply = current.checks.rejectReply }
                    self.metrics.decisionTook(nanoseconds: StoreHealth.now() &- started)
                    completion(dressed(verdict))
                case .lookup(let keyed):
                    self.lookup(keyed, query, current: current, dryRun: dryRun, rule: rule, now: now, started: started) {
                        completion(dressed($0))
                    }
                }
            }
        }
    }

    /// The store step of a decision: the verdict for `triplet` as stored.
    private func lookup(_ triplet: Triplet, _ query: GreylistQuery, current: Current, dryRun: RuleMatch?,
                        rule: Engine.RuleSettings?, now: Int64, started: UInt64,
                        completion: @escaping @Sendable (Verdict) -> Void) {
        let delay = query.delayOverride
        let client = query.clientAddress  // all the answer needs of the query: not a copy of all of it
        store.decide(triplet, now: now, {
            current.decide(triplet, state: $0, now: now, dryRun: dryRun, delay: delay, rule: rule)
        }) { result in
            self.finish(result, triplet: triplet, client: client, startedAt: started, completion: completion)
        }
    }

    /// The verdict the failure mode gives when the store cannot answer.
    /// Ends a store decision begun at `startedAt`: its time in the metrics,
    /// the store's health, and the failure mode when the store failed.
    func finish(_ result: Result<Decision, any Error>, triplet: Triplet, client: String, startedAt started: UInt64,
                completion: @Sendable (Verdict) -> Void) {
        let took = StoreHealth.now() &- started
        metrics.storeTook(nanoseconds: took)
        metrics.decisionTook(nanoseconds: took)
        switch result {
        case .success(let decision):
            health.succeeded()
            completion(decision.verdict)
        case .failure(let error):
            health.failed("\(error)", client: client, startedAt: started)
            completion(failureVerdict(for: triplet))
        }
    }

    public func failureVerdict(for triplet: Triplet?) -> Verdict {
        switch failureMode {
        case .pass: return Verdict(action: .pass, reason: .storeUnavailable, triplet: triplet)
        case .defer: return Verdict(action: .defer, reason: .storeUnavailable, timeLeft: 0, triplet: triplet)
        }
    }

    /// One line per decision: verdict, client, sender, recipient, reason, delay.
    public func log(_ verdict: Verdict, _ query: GreylistQuery) {
        counters.count(verdict)
        metrics.decided(verdict, via: query.origin)
        history.record(verdict, query, now: now())
        let level: Logger.Level = verdict.reason == .notRecipientStage ? .debug : .info
        guard logger.logLevel <= level else { return }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        Self.decisionLine(verdict, query, into: &bytes)
        if let directLog {
            directLog.write(level, bytes)  // copied into the log's buffer: no string, no event
        } else {
            logger.log(level: level, Logger.Message(stringLiteral: String(decoding: bytes, as: UTF8.self)))
        }
    }

    /// The message of a decision's log line. What a peer chose (addresses,
    /// SPF text, a rule's text, the SASL user) is escaped.
    static func decisionLine(_ verdict: Verdict, _ query: GreylistQuery, into line: inout [UInt8]) {
        switch verdict.action {
        case .pass: line.appendText(verdict.wouldDefer ? "would defer (dry run), passing" : "pass")
        case .defer: line.appendText("defer")
        case .reject: line.appendText("reject")
        }
        line.appendText(": client=")
        line.appendEscaped(query.clientAddress)
        if let t = verdict.triplet {
            line.appendText(" network=")
            line.appendText(t.network)
        }
        line.appendText(" sender=<")
        line.appendEscaped(query.sender)
        line.appendText("> recipient=<")
        line.appendEscaped(query.recipient)
        line.appendText("> reason=")
        line.appendText(verdict.reason.rawValue)
        if let left = verdict.timeLeft, verdict.action == .defer || verdict.wouldDefer {
            line.appendText(" retry_in=")
            line.appendDecimal(left)
            line.append(UInt8(ascii: "s"))
        }
        if let delayed = verdict.delayed {
            line.appendText(" delayed=")
            line.appendDecimal(delayed)
            line.append(UInt8(ascii: "s"))
        }
        if !verdict.zones.isEmpty {
            line.appendText(" zones=")
            line.appendText(verdict.zones.joined(separator: ","))
        }
        if let spf = verdict.spf {
            line.appendText(" spf=")
            line.appendEscaped(spf)
        }
        if !verdict.skipped.isEmpty {
            line.appendText(" skipped=")
            line.appendText(verdict.skipped.joined(separator: ","))
        }
        if let rule = verdict.rule {
            line.appendText(" rule=\"")
            line.appendEscaped(rule.description)
            line.append(UInt8(ascii: "\""))
        } else if verdict.reason == .authenticated {
            line.appendText(" sasl_user=")
            line.appendEscaped(query.authenticatedUser)
        }
        line.appendText(" via=")
        line.appendText(query.origin)
    }
}

extension [UInt8] {
    /// Appends `text`'s UTF-8 bytes.
    @inline(__always)
    mutating func appendText(_ text: String) {
        append(contentsOf: text.utf8)
    }

    /// Appends `text` as `logEscaped` shows it (which returns plain text
    /// itself, without a copy).
    mutating func appendEscaped(_ text: String) {
        append(contentsOf: text.logEscaped.utf8)
    }

    /// Appends `value` in decimal.
    mutating func appendDecimal(_ value: Int64) {
        if value < 0 { append(UInt8(ascii: "-")) }
        var m = value.magnitude
        var low = count
        repeat {
            append(UInt8(ascii: "0") + UInt8(m % 10))
            m /= 10
        } while m > 0
        // Swapped in place: reversing `self[start...]` copied the whole
        // array, as the slice shares its storage.
        var high = count - 1
        while low < high {
            swapAt(low, high)
            low += 1
            high -= 1
        }
    }
}

/// The wall clock in Unix seconds.
@Sendable public func unixNow() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec)
}
