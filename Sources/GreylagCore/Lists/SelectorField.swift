/// The part of a query a list rule looks at.
public enum SelectorField: String, Sendable, Hashable, CaseIterable, Codable {
    /// The client's address, matched against an address or CIDR network.
    case client
    /// The client's verified host name (empty when the MTA could not verify it).
    case clientName = "client_name"
    /// The name the client gave in HELO/EHLO.
    case helo
    /// The envelope sender address.
    case sender
    /// The domain of the envelope sender.
    case senderDomain = "sender_domain"
    /// The envelope recipient address.
    case recipient
    /// The domain of the envelope recipient.
    case recipientDomain = "recipient_domain"

    /// The plural configuration key that lists values of this field
    /// (`clients`, `client_names`, ...).
    public var configKey: String {
        switch self {
        case .client: return "clients"
        case .clientName: return "client_names"
        case .helo: return "helo_names"
        case .sender: return "senders"
        case .senderDomain: return "sender_domains"
        case .recipient: return "recipients"
        case .recipientDomain: return "recipient_domains"
        }
    }

    /// The field a configuration key lists, the inverse of `configKey`.
    public init?(configKey: String) {
        guard let f = SelectorField.allCases.first(where: { $0.configKey == configKey }) else { return nil }
        self = f
    }
}

/// A list value that does not parse; the message says what was expected.
public struct ListSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
