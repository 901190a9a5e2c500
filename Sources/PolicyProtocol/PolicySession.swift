import GreylagCore

/// How verdicts are worded on the policy protocol.
public struct PolicyReplyConfig: Sendable, Hashable {
    /// Action for a deferred recipient (`DEFER_IF_PERMIT`, `DEFER`, `450`, `451 4.7.1`).
    public var deferAction = "DEFER_IF_PERMIT"
    /// Text after the defer action; placeholders as in `ReplyTemplate`.
    public var deferText = "Greylisted, please try again in {seconds} seconds"
    /// Action for a refused recipient (`REJECT`, `550`, `554 5.7.1`).
    public var rejectAction = "REJECT"
    /// Text after the reject action.
    public var rejectText = "Refused by greylag policy"
    /// Add `X-Greylist` on the first pass after a delay.
    public var addHeader = true
    /// Program name and version in the header, e.g. `greylag-0.1.0`.
    public var software = "greylag"
    /// Host name in the header.
    public var hostname = "localhost"
    /// The MTA asks at DATA too (Postfix: `check_policy_service` in
    /// `smtpd_data_restrictions`): a null-sender message is then passed at
    /// RCPT and greylisted at DATA, so a call-out (RCPT, then QUIT) is never
    /// deferred. Off, it is greylisted at RCPT like any other, so it never
    /// slips through an MTA that does not ask at DATA.
    public var nullSenderAtData = false

    public init() {}
}

/// Per-connection policy protocol logic: which requests need a greylisting
/// decision and how a verdict becomes a reply. Holds the `instance` of the
/// last header so a message gets one `X-Greylist` however many recipients
/// it has.
public struct PolicySession: Sendable {
    public var config: PolicyReplyConfig
    /// Honour the `greylag_*` attributes of greylag's qmail helpers. Only
    /// the listeners of `policy.helper_listen` do: from any other client,
    /// `greylag_delay=0` would pass a new triplet at once and a huge delay
    /// would hold someone else's mail.
    public let helperAttributes: Bool
    private var headerInstance: String? = nil

    public init(config: PolicyReplyConfig, helperAttributes: Bool = false) {
        self.config = config
        self.helperAttributes = helperAttributes
    }

    /// The attributes greylag's qmail helpers send (see `query`).
    public static let helperAttributePrefix = "greylag_"

    /// The longest `greylag_delay` taken, in seconds (30 days).
    public static let maxHelperDelay: Int64 = 30 * 86_400

    /// What a session did with a request's `greylag_*` attributes that the
    /// log should say; the request is answered all the same.
    public enum HelperAttributeNote: Sendable, Hashable {
        /// This listener does not honour them: these names were ignored.
        case ignored([String])
        /// The value is not one greylag takes: the attribute was ignored.
        case invalid(name: String, value: String)
    }

    /// The notes for a request: `ignored` on a listener without
    /// `helperAttributes` when the request has any `greylag_*` attribute,
    /// `invalid` for each value `query` throws away on one with them.
    public func helperNotes(_ request: PolicyRequest) -> [HelperAttributeNote] {
        let names = request.names(withPrefix: Self.helperAttributePrefix)
        if names.isEmpty { return [] }
        guard helperAttributes else { return [.ignored(names)] }
        var notes: [HelperAttributeNote] = []
        for name in names {
            let value = request[name]
            let valid: Bool
            switch name {
            case "greylag_origin": valid = Self.isOriginName(value)
            case "greylag_scope": valid = value == "connection"
            case "greylag_key": valid = value == "address"
            case "greylag_delay": valid = Self.helperDelay(value) != nil
            default: valid = false
            }
            if !valid { notes.append(.invalid(name: name, value: value)) }
        }
        return notes
    }

    /// A `greylag_delay` value in range, or nil: digits only (no sign, no
    /// space), at most `maxHelperDelay`. Out of range is nil, never a trap.
    static func helperDelay(_ value: String) -> Int64? {
        guard !value.isEmpty, value.utf8.count <= 12,
              value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let d = Int64(value), d <= maxHelperDelay else { return nil }
        return d
    }

    /// What to do with a request.
    public enum Action: Sendable, Hashable {
        /// Answer at once.
        case reply(PolicyReply)
        /// Ask for a greylisting decision, then call `verdictReceived`.
        case decide(GreylistQuery)
    }

    /// A request arrived.
    public func requestReceived(_ request: PolicyRequest) -> Action {
        // Compared as bytes: the value is longer than a string kept inline.
        let isPolicyRequest = request.withValueBytes("request") {
            $0.isEmpty || $0.elementsEqual("smtpd_access_policy".utf8)
        }
        if !isPolicyRequest { return .reply(.dunno) }
        if helperAttributes && request["greylag_scope"] == "connection" {
            return .decide(Self.query(from: request, stage: .rcpt, helperAttributes: true))
        }
        let state = request["protocol_state"]
        let stage: ProtocolStage = state.isEmpty
            ? (request["recipient"].isEmpty ? .other : .rcpt)  // Exim builds its own minimal request
            : ProtocolStage(policyState: state)
        // The null sender at DATA: only for requests that name their stage
        // (Postfix's), never on a helper listener, and only when configured.
        let nullSenderLater = config.nullSenderAtData && !helperAttributes && !state.isEmpty
            && Self.isNullSender(request["sender"])
        switch stage {
        case .rcpt:
            if nullSenderLater { return .reply(.dunno) }  // decided at DATA
        case .data where nullSenderLater:
            return Self.dataQuery(from: request).map { .decide($0) } ?? .reply(.dunno)
        default:
            return .reply(.dunno)
        }
        return .decide(Self.query(from: request, stage: stage, helperAttributes: helperAttributes))
    }

    /// The recipient a null-sender message with several recipients is keyed
    /// by at DATA, where Postfix sends no `recipient` (it does only when
    /// `recipient_count` is 1). It cannot be an address, so it never meets
    /// the triplet of a single recipient.
    public static let severalRecipients = "(several recipients)"

    /// True for the null sender `<>` (empty, as Postfix sends it).
    public static func isNullSender(_ sender: String) -> Bool {
        AddressNormalizer.sender(sender, normalize: false) == "<>"
    }

    /// The query of a null-sender DATA request, keyed like the RCPT it
    /// stands for: by its one recipient, or with `severalRecipients` when
    /// `recipient_count` is more than 1; nil (pass) when there is none.
    static func dataQuery(from request: PolicyRequest) -> GreylistQuery? {
        var q = query(from: request, stage: .rcpt, helperAttributes: false)
        if q.recipient.isEmpty {
            let count = request["recipient_count"]
            // Digits only, at most 20 of them; more than one recipient keys by the marker.
            let significant = count.drop { $0 == "0" }
            guard !count.isEmpty, count.utf8.count <= 20,
                  count.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  !significant.isEmpty, significant != "1" else { return nil }
            q.recipient = severalRecipients
        }
        return q
    }

    /// The greylisting query a request stands for.
    ///
    /// Besides Postfix's attributes, greylag's own qmail helpers send
    /// `greylag_origin` (named in logs), `greylag_scope=connection` (key by
    /// client alone, at connection time), `greylag_key=address` (exact
    /// address instead of network) and `greylag_delay` (seconds); they count
    /// only with `helperAttributes` (a `policy.helper_listen` listener).
    public static func query(from request: PolicyRequest, stage: ProtocolStage = .rcpt,
                             helperAttributes: Bool) -> GreylistQuery {
        var name = request["client_name"]
        if name == "unknown" { name = "" }
        var q = GreylistQuery(stage: stage, clientAddress: request["client_address"], clientName: name,
                              heloName: request["helo_name"], sender: request["sender"],
                              recipient: request["recipient"], authenticatedUser: request["sasl_username"],
                              origin: "policy")
        // Postfix (2.9 and later) and greylag's OpenSMTPD filter send the
        // unverified PTR name beside the verified `client_name`; without it
        // (Exim's minimal request, the qmail helpers) the MTA said nothing.
        let ptr = request["reverse_client_name"]
        if !ptr.isEmpty {
            if !name.isEmpty {
                q.reverseName = .confirmed(name.lowercased())
                q.ptrName = ptr == "unknown" ? name.lowercased() : ptr.lowercased()
            } else if ptr == "unknown" {
                q.reverseName = .absent
            } else {
                q.reverseName = .unconfirmed
                q.ptrName = ptr.lowercased()
            }
        }
        guard helperAttributes else { return q }
        let origin = request["greylag_origin"]
        if Self.isOriginName(origin) { q.origin = origin }
        if request["greylag_scope"] == "connection" { q.connectionOnly = true }
        if request["greylag_key"] == "address" { q.keyByAddress = true }
        if let d = Self.helperDelay(request["greylag_delay"]) { q.delayOverride = d }
        return q
    }

    /// A short lower-case name (`qmail-spp`), safe to log unescaped.
    static func isOriginName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 32 && s.utf8.allSatisfy {
            ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                || $0 == UInt8(ascii: "-")
        }
    }

    /// The decision for a request arrived; `now` dates the header. `query`
    /// is the request's query, made again when not given.
    public mutating func verdictReceived(_ verdict: Verdict, for request: PolicyRequest, query: GreylistQuery? = nil,
                                         now: Int64) -> PolicyReply {
        let query = query ?? Self.query(from: request, helperAttributes: helperAttributes)
        switch verdict.action {
        case .defer:
            // A `[[rules]]` entry's code and text, where it sets them.
            let r = verdict.reply
            return PolicyReply(action: joined(r?.deferCode ?? config.deferAction, r?.deferText ?? config.deferText,
                                              verdict, query))
        case .reject:
            let r = verdict.reply
            return PolicyReply(action: joined(r?.rejectCode ?? config.rejectAction, r?.rejectText ?? config.rejectText,
                                              verdict, query))
        case .pass:
            guard config.addHeader, let delayed = verdict.delayed, delayed > 0 else { return .dunno }
            let instance = request["instance"]
            if !instance.isEmpty {
                if instance == headerInstance { return .dunno }
                headerInstance = instance
            }
            return PolicyReply(action: "PREPEND X-Greylist: delayed \(delayed) seconds by \(config.software) at "
                               + "\(config.hostname); \(MailDate.format(epochSeconds: now))")
        }
    }

    /// `action` and the text `template` makes for this verdict, with a
    /// space between (the action alone when the text is empty), made in
    /// one string.
    private func joined(_ action: String, _ template: String, _ verdict: Verdict, _ query: GreylistQuery) -> String {
        var out = ""
        out.reserveCapacity(action.utf8.count + 1 + template.utf8.count + 32)
        out += action
        out += " "
        let before = out.utf8.count
        ReplyTemplate.expand(template, verdict: verdict, query: query, into: &out)
        if out.utf8.count == before { out.removeLast() }
        return out
    }
}
