/// The SMTP stage a query was asked at. Greylisting happens at RCPT only.
public enum ProtocolStage: String, Sendable, Hashable {
    case connect = "CONNECT"
    case helo = "HELO"
    case ehlo = "EHLO"
    case mail = "MAIL"
    case rcpt = "RCPT"
    case data = "DATA"
    case endOfMessage = "END-OF-MESSAGE"
    case vrfy = "VRFY"
    case etrn = "ETRN"
    case other = "OTHER"

    /// Maps a Postfix `protocol_state` value (case-insensitive).
    public init(policyState: String) {
        self = ProtocolStage(rawValue: policyState.uppercased()) ?? .other
    }
}

/// One greylisting question, in protocol-neutral terms.
public struct GreylistQuery: Sendable, Hashable {
    public var stage: ProtocolStage
    /// The client address as the MTA sent it (may be unparseable or empty).
    public var clientAddress: String
    public var clientName: String
    public var heloName: String
    /// Envelope sender as sent; empty for the null sender.
    public var sender: String
    public var recipient: String
    /// Set when the client authenticated (SASL/SMTP AUTH).
    public var authenticatedUser: String
    /// The MTA itself says the client may relay (qmail `RELAYCLIENT`).
    public var trustedByMTA: Bool
    /// Greylist the client alone, at connection time (the tcpserver
    /// wrapper): sender and recipient are not part of the key.
    public var connectionOnly: Bool = false
    /// Key by the exact client address instead of its network.
    public var keyByAddress: Bool = false
    /// A delay for this query instead of the policy's (the wrapper's hold time).
    public var delayOverride: Int64? = nil
    /// Which protocol asked, for logs and metrics ("policy", "milter", ...).
    public var origin: String
    /// What the MTA said of the client's reverse name: `.notChecked` when
    /// it said nothing, and greylag looks it up itself when a rule needs it.
    public var reverseName: ReverseName = .notChecked
    /// The client's PTR name as the MTA sent it, verified or not; "" when
    /// it has none or sent none. Dynamic-name patterns apply to it.
    public var ptrName: String = ""

    public init(stage: ProtocolStage = .rcpt, clientAddress: String, clientName: String = "",
                heloName: String = "", sender: String, recipient: String,
                authenticatedUser: String = "", trustedByMTA: Bool = false, origin: String = "policy") {
        self.stage = stage
        self.clientAddress = clientAddress
        self.clientName = clientName
        self.heloName = heloName
        self.sender = sender
        self.recipient = recipient
        self.authenticatedUser = authenticatedUser
        self.trustedByMTA = trustedByMTA
        self.origin = origin
    }
}
