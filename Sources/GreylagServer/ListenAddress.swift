/// Where a listener accepts connections.
///
/// Written as `HOST:PORT` (`127.0.0.1:10023`, `[::1]:10023`, `*:10023` for
/// all addresses), or `unix:/path` / a bare absolute path for a unix socket.
public enum ListenAddress: Sendable, Hashable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public init?(_ text: String) {
        let s = text.trimmingCharacters(in: .whitespaces)
        if s.hasPrefix("unix:") {
            let path = String(s.dropFirst(5))
            guard !path.isEmpty else { return nil }
            self = .unix(path: path)
            return
        }
        if s.hasPrefix("/") {
            self = .unix(path: s)
            return
        }
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return nil  // an IPv6 host needs brackets
        }
        if host == "*" { host = "::" }
        guard !host.isEmpty else { return nil }
        self = .tcp(host: host, port: port)
    }

    /// Also reads the milter socket notation of Sendmail and
    /// milter-greylist: `inet:PORT@HOST`, `inet:PORT` (all IPv4 addresses),
    /// `inet6:PORT@HOST`, `inet6:PORT` (all addresses), `unix:/path`,
    /// `local:/path` and a bare path.
    public init?(milter text: String) {
        let s = text.trimmingCharacters(in: .whitespaces)
        for (prefix, any) in [("inet:", "0.0.0.0"), ("inet6:", "::")] where s.hasPrefix(prefix) {
            let rest = s.dropFirst(prefix.count)
            let parts = rest.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
            guard let port = Int(parts[0]), (1...65535).contains(port) else { return nil }
            var host = parts.count == 2 ? String(parts[1]) : any
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { return nil }
            self = .tcp(host: host, port: port)
            return
        }
        if s.hasPrefix("local:") {
            let path = String(s.dropFirst(6))
            guard path.hasPrefix("/") else { return nil }
            self = .unix(path: path)
            return
        }
        self.init(s)
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}

import Foundation
