import NIOCore

/// A DNS server to ask: a numeric IPv4 or IPv6 address and a port.
public struct DNSServerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int = 53) {
        self.host = host
        self.port = port
    }

    /// `192.0.2.1`, `192.0.2.1:5353`, `2001:db8::1`, `[2001:db8::1]:5353`;
    /// nil for anything else (names are not allowed: resolving the
    /// resolver would need a resolver).
    public static func parse(_ text: String) -> DNSServerAddress? {
        guard !text.isEmpty, text.utf8.count <= 64, !text.contains("%") else { return nil }
        var host = text
        var port = 53
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()), (1...65535).contains(p) else { return nil }
                port = p
            }
            guard host.contains(":") else { return nil }
        } else if text.filter({ $0 == ":" }).count == 1 {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            host = String(parts[0])
            guard let p = Int(parts[1]), (1...65535).contains(p) else { return nil }
            port = p
        }
        // A zone index (fe80::1%eth0) is not taken: DNS over link-local is not supported.
        guard (try? SocketAddress(ipAddress: host, port: port)) != nil else { return nil }
        return DNSServerAddress(host: host, port: port)
    }

    /// `192.0.2.1:53`, `[2001:db8::1]:53`.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public func socketAddress() throws -> SocketAddress { try SocketAddress(ipAddress: host, port: port) }
}

/// How the DNS client asks: its servers, the deadline of a lookup, the
/// cache and the limit on lookups in flight.
public struct DNSSettings: Sendable, Equatable {
    /// Asked in turn, the first first; empty: every lookup fails with `noResolver`.
    public var servers: [DNSServerAddress]
    /// Seconds a lookup may take in all, every server and retry included.
    public var timeout: Double = 1
    /// Rounds over the servers within the deadline (resolv.conf `attempts:`).
    public var attempts: Int = 2
    /// Entries the cache keeps at most (0: no cache).
    public var cacheEntries: Int = 10_000
    /// Lookups sent to the servers at once at most; more fail at once (counted).
    public var maxInFlight: Int = 1_000
    /// Seconds a failure (timeout, SERVFAIL, ...) is remembered for its name.
    public var failureTTL: Double = 5
    /// Longest time a positive answer is kept, whatever its TTL (one day).
    public var maxTTL: UInt32 = 86_400
    /// Longest time a negative answer (NXDOMAIN, NODATA) is kept (three hours, RFC 2308's advice).
    public var maxNegativeTTL: UInt32 = 10_800

    public init(servers: [DNSServerAddress], timeout: Double = 1, attempts: Int = 2, cacheEntries: Int = 10_000) {
        self.servers = servers
        self.timeout = timeout
        self.attempts = attempts
        self.cacheEntries = cacheEntries
    }
}

/// What greylag reads from /etc/resolv.conf: up to three `nameserver`
/// lines and `options timeout:N attempts:N`. `search`, `domain` and `ndots`
/// do not apply: greylag only asks fully-qualified names.
public struct ResolvConf: Sendable, Equatable {
    public var servers: [DNSServerAddress] = []
    /// `options timeout:N` (glibc's wait per try), if given; 1 to 30.
    public var timeout: Int?
    /// `options attempts:N`, if given; 1 to 5.
    public var attempts: Int?
    /// Lines greylag did not take (a bad address, a fourth server), for the log.
    public var ignored: [String] = []

    public init() {}

    /// glibc's limit on `nameserver` lines.
    public static let maxServers = 3

    public static func parse(_ text: String) -> ResolvConf {
        var conf = ResolvConf()
        // A resolv.conf is a few lines; one that is not is read only so far.
        for raw in text.prefix(65_536).split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            var line = Substring(raw)
            if let hash = line.firstIndex(where: { $0 == "#" || $0 == ";" }) { line = line[..<hash] }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let keyword = words.first else { continue }
            switch keyword {
            case "nameserver":
                guard words.count >= 2 else { conf.ignored.append(String(raw)); continue }
                let value = String(words[1])
                guard conf.servers.count < maxServers else { conf.ignored.append(String(raw)); continue }
                // resolv.conf gives bare addresses; port 53 always.
                if !value.contains("%"), (try? SocketAddress(ipAddress: value, port: 53)) != nil {
                    conf.servers.append(DNSServerAddress(host: value, port: 53))
                } else {
                    conf.ignored.append(String(raw))
                }
            case "options":
                for option in words.dropFirst() {
                    if option.hasPrefix("timeout:"), let n = Int(option.dropFirst(8)) {
                        conf.timeout = min(max(n, 1), 30)
                    } else if option.hasPrefix("attempts:"), let n = Int(option.dropFirst(9)) {
                        conf.attempts = min(max(n, 1), 5)
                    }
                }
            default:
                continue
            }
        }
        return conf
    }

    /// The settings from this file: its servers (or, with none, the local
    /// resolver at 127.0.0.1 and ::1 as glibc does) and its attempts
    /// (rounds over the servers). The deadline is greylag's own `timeout`:
    /// glibc's `timeout:` (seconds per try, 5 by default) is far longer
    /// than mail should wait, so it is read but not used.
    public func settings(timeout: Double, cacheEntries: Int) -> DNSSettings {
        let servers = self.servers.isEmpty
            ? [DNSServerAddress(host: "127.0.0.1"), DNSServerAddress(host: "::1")] : self.servers
        return DNSSettings(servers: servers, timeout: timeout, attempts: attempts ?? 2, cacheEntries: cacheEntries)
    }
}
