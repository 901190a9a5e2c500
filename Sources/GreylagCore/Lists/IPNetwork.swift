/// An IPv4 or IPv6 network in CIDR form, as written in lists.
///
/// Accepted forms: `192.0.2.7` (one address), `192.0.2.0/24`, `2001:db8::/32`,
/// `[2001:db8::]/32`, and postgrey's partial IPv4 forms `192.0.2` (/24) and
/// `10.1` (/16). Host bits after the prefix are cleared, as Postfix does.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    /// The first address of the network.
    public let address: IPAddress
    /// Prefix length: 0...32 for IPv4, 0...128 for IPv6.
    public let prefix: Int

    public init(address: IPAddress, prefix: Int) {
        let p = max(0, min(address.isIPv4 ? 32 : 128, prefix))
        self.address = address.masked(to: p)
        self.prefix = p
    }

    /// Parses a network; nil if the text is not one of the accepted forms.
    public init?(_ text: some StringProtocol) {
        var s = Substring(text)
        var prefix: Int? = nil
        if let slash = s.lastIndex(of: "/") {
            let digits = s[s.index(after: slash)...]
            guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy(\.isASCII), let p = Int(digits) else { return nil }
            prefix = p
            s = s[..<slash]
        }
        if s.hasPrefix("["), s.hasSuffix("]") { s = s.dropFirst().dropLast() }
        if !s.contains(":"), prefix == nil {
            // postgrey's partial IPv4 forms: leading octets only.
            let octets = s.split(separator: ".", omittingEmptySubsequences: false)
            if octets.count == 2 || octets.count == 3,
               let a = IPAddress(octets.joined(separator: ".") + String(repeating: ".0", count: 4 - octets.count)) {
                self.init(address: a, prefix: 8 * octets.count)
                return
            }
        }
        guard let address = IPAddress(s) else { return nil }
        var p = prefix ?? (address.isIPv4 ? 32 : 128)
        if address.isIPv4 && s.contains(":") {
            // An IPv4-mapped IPv6 network (::ffff:192.0.2.0/120) is an IPv4 one.
            guard p >= 96 || prefix == nil else { return nil }
            if prefix != nil { p -= 96 }
        }
        guard p <= (address.isIPv4 ? 32 : 128) else { return nil }
        self.init(address: address, prefix: p)
    }

    /// Whether `other` lies inside this network.
    public func contains(_ other: IPAddress) -> Bool {
        other.isIPv4 == address.isIPv4 && other.masked(to: prefix) == address
    }

    public var description: String {
        prefix == (address.isIPv4 ? 32 : 128) ? address.description : "\(address)/\(prefix)"
    }
}
