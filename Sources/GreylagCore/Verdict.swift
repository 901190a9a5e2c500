/// Why a decision was made. The raw values appear in logs and metrics.
public enum DecisionReason: String, Sendable, Hashable, CaseIterable {
    /// Not a recipient-stage query: greylisting has no opinion.
    case notRecipientStage = "not_rcpt_stage"
    /// The client address could not be parsed, so no triplet can be formed.
    case noClientAddress = "no_client_address"
    /// No recipient in the query.
    case noRecipient = "no_recipient"
    /// The client authenticated (SMTP AUTH); never greylisted.
    case authenticated = "authenticated"
    /// The client is in a trusted network (or the MTA marked it a relay client).
    case trustedClient = "trusted_client"
    /// A blacklist rule matched: refused.
    case blacklisted = "blacklisted"
    /// A whitelist rule matched (configuration, list file, built-in list or manual entry).
    case whitelisted = "whitelisted"
    /// The recipient opted out of greylisting.
    case recipientOptedOut = "recipient_opted_out"
    /// Opt-in mode and the recipient did not opt in.
    case recipientNotOptedIn = "recipient_not_opted_in"
    /// The client network has passed enough triplets to skip greylisting.
    case clientAutowhitelisted = "client_autowhitelisted"
    /// First time this triplet is seen (or its old record expired).
    case newTriplet = "new_triplet"
    /// Retried before the delay was over.
    case tooEarly = "too_early"
    /// Retried after the delay, within the retry window: first pass.
    case delayElapsed = "delay_elapsed"
    /// Already passed earlier and not expired.
    case knownTriplet = "known_triplet"
    /// The store could not be asked; the configured failure mode applied.
    case storeUnavailable = "store_unavailable"
    /// DNS allow-lists vouch for the client: its score is at or below the allow threshold.
    case dnsAllowlisted = "dns_allowlisted"
    /// DNS lists weigh the client at or above the reject threshold.
    case dnsRejected = "dns_rejected"
    /// Selective mode: nothing makes the client suspicious, so it is not greylisted.
    case notSuspicious = "not_suspicious"
}

/// What greylisting answers for one recipient.
public struct Verdict: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable {
        case pass
        case `defer`
        case reject
    }

    public var action: Action
    public var reason: DecisionReason
    /// For a defer: seconds until a retry will pass.
    public var timeLeft: Int64?
    /// On the first pass after a delay: seconds since the triplet was first seen.
    public var delayed: Int64?
    /// The triplet the decision was about, when one was formed.
    public var triplet: Triplet?
    /// Dry-run turned a defer into this pass.
    public var wouldDefer: Bool
    /// The list rule that settled the decision (or made it a dry run).
    public var rule: RuleMatch?
    /// The reply code and texts of the `[[rules]]` entry that decided, used
    /// instead of the protocol's own where set.
    public var reply: RuleReply?
    /// The DNS list zones that listed the client or sender, when DNS lists
    /// took part in the decision.
    public var zones: [String]
    /// The SPF result word (`pass`, `fail`, `temperror`, ...) when SPF was
    /// checked for this decision.
    public var spf: String?
    /// The DNS checks that gave no answer in time (see `DNSFacts.skipped`).
    public var skipped: [String]

    public init(action: Action, reason: DecisionReason, timeLeft: Int64? = nil, delayed: Int64? = nil,
                triplet: Triplet? = nil, wouldDefer: Bool = false, rule: RuleMatch? = nil, reply: RuleReply? = nil,
                zones: [String] = [], spf: String? = nil, skipped: [String] = []) {
        self.action = action
        self.reason = reason
        self.timeLeft = timeLeft
        self.delayed = delayed
        self.triplet = triplet
        self.wouldDefer = wouldDefer
        self.rule = rule
        self.reply = reply
        self.zones = zones
        self.spf = spf
        self.skipped = skipped
    }
}

/// A verdict together with the writes that make it true in the store.
public struct Decision: Sendable, Hashable {
    public var verdict: Verdict
    public var change: StoreChange

    public init(verdict: Verdict, change: StoreChange = .none) {
        self.verdict = verdict
        self.change = change
    }
}
