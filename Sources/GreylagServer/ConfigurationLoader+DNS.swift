import Foundation
import GreylagDNS
import TOMLKit

extension Reader {
    /// Servers `dns.servers` takes at most.
    static let maxDNSServers = 8

    mutating func readDNS(_ t: TOMLTable, into c: inout GreylagConfiguration) {
        for (key, value) in t {
            let k = "dns.\(key)"
            guard known("dns", key) else { continue }
            switch key {
            case "servers":
                // Read in `resolveDNS`, which needs to know whether it is set.
                guard let list = strings(k, value) else { continue }
                if list.count > Self.maxDNSServers { fail(k, "\(list.count) servers; at most \(Self.maxDNSServers)") }
                for item in list where DNSServerAddress.parse(item) == nil {
                    fail(k, item: item, "\"\(item.logEscaped)\" is not ADDRESS, ADDRESS:PORT or [IPV6]:PORT "
                         + "(an IPv4 or IPv6 address, port 1 to 65535; no names)")
                }
            case "timeout":
                if let v = seconds(k, value, in: 0.1...30) { c.resolverSettings.timeout = v }
            case "cache_entries":
                if let v = integer(k, value, in: 0...1_000_000) { c.resolverSettings.cacheEntries = v }
            case "resolv_conf":
                if let v = string(k, value) {
                    if v.isEmpty || v.utf8.count > 4096 || v.contains("\0") {
                        fail(k, "must be a path")
                    } else {
                        c.resolverConfPath = v.hasPrefix("/") ? v : (directory as NSString).appendingPathComponent(v)
                    }
                }
            default:
                unread(k)
            }
        }
    }

    /// The servers in force: `dns.servers`, or those of the resolv.conf
    /// (read now; a `dns.resolv_conf` that cannot be read is an error, a
    /// missing default one means the local resolver).
    mutating func resolveDNS(_ t: TOMLTable?, into c: inout GreylagConfiguration) {
        if let list = t?["servers"].flatMap({ $0.string.map { [$0] } ?? $0.array?.compactMap(\.string) }) {
            let servers = list.compactMap(DNSServerAddress.parse)
            guard servers.count == list.count else { return }  // reported by readDNS
            c.resolverSettings.servers = servers
            c.resolverSettings.attempts = 2
            c.resolverServersSource = "dns.servers"
            return
        }
        let path = c.resolverConfPath
        let explicit = t?["resolv_conf"] != nil
        let conf: ResolvConf
        if let text = Self.readSmallFile(path) {
            conf = ResolvConf.parse(text)
            c.resolverServersSource = path + (conf.servers.isEmpty ? " (no nameserver lines: the local resolver)" : "")
        } else if explicit {
            fail("dns.resolv_conf", "cannot read \(path)")
            return
        } else {
            conf = ResolvConf()
            c.resolverServersSource = "the local resolver (\(path) cannot be read)"
        }
        let s = conf.settings(timeout: c.resolverSettings.timeout, cacheEntries: c.resolverSettings.cacheEntries)
        c.resolverSettings.servers = s.servers
        c.resolverSettings.attempts = s.attempts
    }

    /// At most 64 KiB of a regular file; nil if it cannot be read.
    static func readSmallFile(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG,
              let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: 65_536) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
