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

    public init() {}
}

/// Per-connection policy protocol logic: which requests need a greylisting
/// decision and how a verdict becomes a reply. Holds the `instance` of the
/// last header so a message gets one `X-Greylist` however many recipients
/// it has.
public struct PolicySession: Sendable {
    public var config: PolicyReplyConfig
    private var headerInstance: String? = nil

    public init(config: PolicyReplyConfig) {
        self.config = config
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
        let kind = request["request"]
        if !kind.isEmpty && kind != "smtpd_access_policy" { return .reply(.dunno) }
        if request["greylag_scope"] == "connection" {
            return .decide(Self.query(from: request, stage: .rcpt))
        }
        let state = request["protocol_state"]
        let stage: ProtocolStage = state.isEmpty
            ? (request["recipient"].isEmpty ? .other : .rcpt)  // Exim builds its own minimal request
            : ProtocolStage(policyState: state)
        guard stage == .rcpt else { return .reply(.dunno) }
        return .decide(Self.query(from: request, stage: stage))
    }

    /// The greylisting query a request stands for.
    ///
    /// Besides Postfix's attributes, greylag's own qmail helpers send
    /// `greylag_origin` (named in logs), `greylag_scope=connection` (key by
    /// client alone, at connection time), `greylag_key=address` (exact
    /// address instead of network) and `greylag_delay` (seconds).
    public static func query(from request: PolicyRequest, stage: ProtocolStage = .rcpt) -> GreylistQuery {
        var name = request["client_name"]
        if name == "unknown" { name = "" }
        let origin = request["greylag_origin"]
        var q = GreylistQuery(stage: stage, clientAddress: request["client_address"], clientName: name,
                              heloName: request["helo_name"], sender: request["sender"],
                              recipient: request["recipient"], authenticatedUser: request["sasl_username"],
                              origin: Self.isOriginName(origin) ? origin : "policy")
        if request["greylag_scope"] == "connection" { q.connectionOnly = true }
        if request["greylag_key"] == "address" { q.keyByAddress = true }
        if let d = Int64(request["greylag_delay"]), d >= 0, d <= 30 * 86_400 { q.delayOverride = d }
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
        let query = query ?? Self.query(from: request)
        switch verdict.action {
        case .defer:
            return PolicyReply(action: joined(config.deferAction,
                                              ReplyTemplate.expand(config.deferText, verdict: verdict, query: query)))
        case .reject:
            return PolicyReply(action: joined(config.rejectAction,
                                              ReplyTemplate.expand(config.rejectText, verdict: verdict, query: query)))
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

    private func joined(_ action: String, _ text: String) -> String {
        text.isEmpty ? action : action + " " + text
    }
}
