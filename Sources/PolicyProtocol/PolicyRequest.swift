// Postfix SMTP access policy delegation, request side.
//
// Grammar (Postfix SMTPD_POLICY_README):
//   request   = *( attribute LF ) LF
//   attribute = name "=" value          ; value may be empty, may contain "="
// Lines end with LF only. One connection carries many requests. Exim's
// readsocket sends one request and half-closes instead of sending the final
// empty line; such a request is taken at end of input.

/// One policy request: its attributes in the order received.
///
/// Kept as a list rather than a dictionary: a request has about thirty
/// attributes and a decision reads a handful, so a scan is cheaper than
/// hashing every name. When a name repeats, the last value counts.
public struct PolicyRequest: Sendable, Hashable, CustomStringConvertible {
    public private(set) var attributes: [(name: String, value: String)]

    public init(attributes: [String: String] = [:]) {
        self.attributes = attributes.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
    }

    public init(pairs: [(name: String, value: String)]) {
        self.attributes = pairs
    }

    /// The value of an attribute, or "" when absent.
    public subscript(_ name: String) -> String {
        for attribute in attributes.reversed() where attribute.name == name { return attribute.value }
        return ""
    }

    /// The attributes as a dictionary (last value of a repeated name).
    public var dictionary: [String: String] {
        Dictionary(attributes.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
    }

    mutating func append(_ name: String, _ value: String) {
        attributes.append((name, value))
    }

    var isEmpty: Bool { attributes.isEmpty }

    public static func == (lhs: PolicyRequest, rhs: PolicyRequest) -> Bool {
        lhs.dictionary == rhs.dictionary
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(dictionary)
    }

    public var description: String {
        attributes.map { "\($0.name)=\($0.value)" }.joined(separator: "\n")
    }
}
