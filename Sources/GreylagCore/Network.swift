/// How a client address is reduced to the network that keys a triplet.
///
/// Large senders retry from other hosts of the same network, so the default
/// keys IPv4 clients by /24 and IPv6 clients by /64, as postgrey and the qmail
/// greylisting tools do. Prefixes of 32 and 128 key by the exact address.
public struct NetworkKeying: Sendable, Hashable {
    public var ipv4Prefix: Int
    public var ipv6Prefix: Int

    public init(ipv4Prefix: Int = 24, ipv6Prefix: Int = 64) {
        self.ipv4Prefix = ipv4Prefix
        self.ipv6Prefix = ipv6Prefix
    }

    /// The network text stored in the triplet, e.g. `192.0.2.0/24` or `2001:db8::/64`.
    public func network(of address: IPAddress) -> String {
        let prefix = address.isIPv4 ? ipv4Prefix : ipv6Prefix
        let full = address.isIPv4 ? 32 : 128
        let masked = address.masked(to: prefix)
        if prefix >= full { return masked.description }
        return "\(masked)/\(prefix)"
    }
}
