/// The decision engine: pure rules, no I/O, time passed in.
///
/// A decision is made in two steps so a store can make it atomically:
/// `prepare` settles what needs no stored state (stage, exemptions, lists,
/// recipient scope) or returns the triplet to look up; `decide` turns the
/// stored state of that triplet into a verdict and the writes that go with it.
public struct Engine: Sendable {
    public var policy: GreylistPolicy
    public var lists: ListRules
    /// How DNS facts (SPF, DNS lists, reverse names) change decisions; see `screen`.
    public var dns: DNSPolicy

    public init(policy: GreylistPolicy = GreylistPolicy(), lists: ListRules = ListRules(), dns: DNSPolicy = DNSPolicy()) {
        self.policy = policy
        self.lists = lists
        self.dns = dns
    }

    /// The outcome of the first step.
    public enum Preparation: Sendable, Hashable {
        /// Decided without the store.
        case decided(Verdict)
        /// Look up this triplet and call `decide`; `dryRun` names the rule
        /// that puts this recipient in dry-run mode, if any; `rule` is the
        /// greylist rule whose timings and texts apply, if any.
        case lookup(Triplet, dryRun: RuleMatch?, rule: RuleSettings?)
    }

    /// What `decide` needs of the `[[rules]]` entry that matched.
    public struct RuleSettings: Sendable, Hashable {
        public var delay: Int64?
        public var retryWindow: Int64?
        public var passTTL: Int64?
        public var reply: RuleReply?
        public var match: RuleMatch

        public init(delay: Int64? = nil, retryWindow: Int64? = nil, passTTL: Int64? = nil, reply: RuleReply? = nil,
                    match: RuleMatch) {
            self.delay = delay
            self.retryWindow = retryWindow
            self.passTTL = passTTL
            self.reply = reply
            self.match = match
        }

        init(_ rule: GreylistRule, match: RuleMatch) {
            self.init(delay: rule.delay, retryWindow: rule.retryWindow, passTTL: rule.passTTL, reply: rule.reply,
                      match: match)
        }
    }

    /// First step: everything that is decided without stored state, in the
    /// order of ARCHITECTURE.md: stage; authenticated or trusted client;
    /// `[[rules]]` (first match); blacklist; whitelist (not after a
    /// greylist rule); recipient scope. `now` decides whether manual
    /// entries with an expiry still apply.
    public func prepare(_ query: GreylistQuery, now: Int64) -> Preparation {
        guard query.stage == .rcpt else {
            return .decided(Verdict(action: .pass, reason: .notRecipientStage))
        }
        if lists.exemptAuthenticated && !query.authenticatedUser.isEmpty {
            return .decided(Verdict(action: .pass, reason: .authenticated))
        }
        if query.trustedByMTA {
            return .decided(Verdict(action: .pass, reason: .trustedClient))
        }
        var dryRun: RuleMatch? = nil
        var rule: RuleSettings? = nil
        let address = IPAddress(query.clientAddress)
        if lists.hasRules {
            let subject = MatchSubject(query, fields: lists.fields, address: .some(address))
            if let r = lists.trusted.firstMatch(subject, now: now) {
                return .decided(Verdict(action: .pass, reason: .trustedClient, rule: r.match))
            }
            if !lists.rules.isEmpty {
                for r in lists.rules {
                    guard let m = r.match(subject, now: now) else { continue }
                    switch r.action {
                    case .blacklist: return .decided(Verdict(action: .reject, reason: .blacklisted, rule: m, reply: r.reply))
                    case .whitelist: return .decided(Verdict(action: .pass, reason: .whitelisted, rule: m))
                    case .greylist: rule = RuleSettings(r, match: m)
                    }
                    break
                }
            }
            if let r = lists.blacklist.firstMatch(subject, now: now) {
                return .decided(Verdict(action: .reject, reason: .blacklisted, rule: r.match))
            }
            if rule == nil, let r = lists.whitelist.firstMatch(subject, now: now) {
                return .decided(Verdict(action: .pass, reason: .whitelisted, rule: r.match))
            }
            let scoped = query.connectionOnly ? nil : lists.scope.firstMatch(subject, now: now)
            switch query.connectionOnly ? .optOut : lists.scopeMode {
            case .optOut:
                if let r = scoped { return .decided(Verdict(action: .pass, reason: .recipientOptedOut, rule: r.match)) }
            case .optIn:
                if scoped == nil { return .decided(Verdict(action: .pass, reason: .recipientNotOptedIn)) }
            }
            dryRun = lists.dryRun.firstMatch(subject, now: now)?.match
        }
        guard let address else { return .decided(Verdict(action: .pass, reason: .noClientAddress)) }
        guard let triplet = triplet(for: query, address: address) else {
            return .decided(Verdict(action: .pass, reason: .noRecipient))
        }
        return .lookup(triplet, dryRun: dryRun, rule: rule)
    }

    /// The triplet a query is keyed by, or nil without a usable client
    /// address or recipient.
    public func triplet(for query: GreylistQuery) -> Triplet? {
        guard let address = IPAddress(query.clientAddress) else { return nil }
        return triplet(for: query, address: address)
    }

    func triplet(for query: GreylistQuery, address: IPAddress) -> Triplet? {
        if query.connectionOnly {
            let network = query.keyByAddress ? address.description : policy.keying.network(of: address)
            return Triplet(network: network, sender: Triplet.connectionMarker, recipient: Triplet.connectionMarker)
        }
        let recipient = AddressNormalizer.recipient(query.recipient)
        guard !recipient.isEmpty else { return nil }
        return Triplet(network: policy.keying.network(of: address),
                       sender: AddressNormalizer.sender(query.sender, normalize: policy.normalizeSender),
                       recipient: recipient)
    }

    /// Second step: the verdict for a triplet given its stored state at `now`.
    /// `dryRun` is the rule that puts this recipient in dry-run mode.
    /// `rule` is the greylist rule that matched: its timings replace the
    /// policy's where set (except the client network's, which all rules
    /// share), its reply goes with the verdict. `delay` (a qmail helper's
    /// hold time) replaces the delay of both.
    public func decide(_ triplet: Triplet, state: TripletState, now: Int64, dryRun: RuleMatch? = nil,
                       delay: Int64? = nil, rule: RuleSettings? = nil) -> Decision {
        guard let rule else { return decide(triplet, state: state, now: now, dryRun: dryRun, delay: delay, policy: policy) }
        var p = policy
        if let d = rule.delay { p.delay = d }
        if let r = rule.retryWindow { p.retryWindow = r }
        if let t = rule.passTTL { p.passTTL = t }
        var d = decide(triplet, state: state, now: now, dryRun: dryRun, delay: delay, policy: p)
        if d.verdict.rule == nil { d.verdict.rule = rule.match }
        if d.verdict.action == .defer { d.verdict.reply = rule.reply }
        return d
    }

    /// `decide` with `p`'s triplet timings; the client network's expiry
    /// always follows the configured policy.
    func decide(_ triplet: Triplet, state: TripletState, now: Int64, dryRun: RuleMatch?, delay: Int64?,
                policy rulePolicy: GreylistPolicy) -> Decision {
        var p = rulePolicy
        if let delay { p.delay = delay }
        let clientTTL = policy.passTTL
        if p.clientAutowhitelist > 0 && state.clientPassedTriplets >= p.clientAutowhitelist {
            return Decision(verdict: Verdict(action: .pass, reason: .clientAutowhitelisted, triplet: triplet),
                            change: StoreChange(client: .refresh(expires: now.saturatingAdd(clientTTL))))
        }
        if var record = state.record, record.recordExpires >= now {
            record.lastSeen = now
            if record.hasPassed {
                record.passedCount = record.passedCount.saturatingAdd(1)
                record.recordExpires = max(record.recordExpires, now.saturatingAdd(p.passTTL))
                let client: StoreChange.ClientChange = p.clientAutowhitelist > 0 ? .refresh(expires: now.saturatingAdd(clientTTL)) : .none
                return Decision(verdict: Verdict(action: .pass, reason: .knownTriplet, triplet: triplet),
                                change: StoreChange(record: record, client: client))
            }
            if now < record.blockExpires {
                record.blockedCount = record.blockedCount.saturatingAdd(1)
                return deferral(Verdict(action: .defer, reason: .tooEarly, timeLeft: record.blockExpires.saturatingSubtract(now),
                                        triplet: triplet), record: record, dryRun: dryRun)
            }
            record.passedCount = 1
            record.recordExpires = now.saturatingAdd(p.passTTL)
            let client: StoreChange.ClientChange = p.clientAutowhitelist > 0 ? .countPass(expires: now.saturatingAdd(clientTTL)) : .none
            return Decision(verdict: Verdict(action: .pass, reason: .delayElapsed, delayed: max(0, now.saturatingSubtract(record.firstSeen)),
                                             triplet: triplet),
                            change: StoreChange(record: record, client: client))
        }
        // Unknown, or its record expired: start over.
        if p.delay <= 0 {
            let record = GreylistRecord(triplet: triplet, firstSeen: now, lastSeen: now, blockExpires: now,
                                        recordExpires: now.saturatingAdd(p.passTTL), blockedCount: 0, passedCount: 1)
            return Decision(verdict: Verdict(action: .pass, reason: .delayElapsed, delayed: 0, triplet: triplet),
                            change: StoreChange(record: record))
        }
        let record = GreylistRecord(triplet: triplet, firstSeen: now, lastSeen: now, blockExpires: now.saturatingAdd(p.delay),
                                    recordExpires: now.saturatingAdd(p.retryWindow), blockedCount: 1, passedCount: 0)
        return deferral(Verdict(action: .defer, reason: .newTriplet, timeLeft: p.delay, triplet: triplet),
                        record: record, dryRun: dryRun)
    }

    /// A defer, or in dry-run mode (global, or for this recipient by
    /// `dryRun`) the pass that replaces it. The record is written either
    /// way, so dry-run learns the same state as live mode. Both values are
    /// made for the call and changed in place (`consuming`), not copied.
    func deferral(_ verdict: consuming Verdict, record: consuming GreylistRecord, dryRun: RuleMatch?) -> Decision {
        if policy.dryRun || dryRun != nil {
            verdict.action = .pass
            verdict.wouldDefer = true
            verdict.rule = dryRun
        }
        return Decision(verdict: verdict, change: StoreChange(record: record))
    }
}
