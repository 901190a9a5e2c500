import Foundation
import GreylagCore
import GreylagDNS
@testable import GreylagServer
import Logging
import NIOPosix
import ServiceLifecycle
import Testing

/// `[dns]`: the loader, the resolv.conf it reads, check-config's line, the
/// reload warning, the daemon's client and its metrics.
@Suite struct DNSConfigurationTests {
    func errors(_ text: String, file: String = "/etc/greylag/greylag.toml") -> [String] { configurationErrors(text, file: file) }

    @Test func serversTimeoutAndCache() throws {
        let c = try ConfigurationLoader.parse("""
            [dns]
            servers = ["192.0.2.53", "198.51.100.53:5353", "2001:db8::53", "[2001:db8::54]:10053"]
            timeout = 0.25
            cache_entries = 0
            """, file: "/etc/greylag/greylag.toml")
        #expect(c.resolverSettings.servers == [
            DNSServerAddress(host: "192.0.2.53"), DNSServerAddress(host: "198.51.100.53", port: 5353),
            DNSServerAddress(host: "2001:db8::53"), DNSServerAddress(host: "2001:db8::54", port: 10053),
        ])
        #expect(c.resolverSettings.timeout == 0.25 && c.resolverSettings.cacheEntries == 0)
        #expect(c.resolverServersSource == "dns.servers")
        #expect(try ConfigurationLoader.parse("[dns]\ntimeout = \"2s\"\nservers = []\n", file: "g.toml").resolverSettings
                == DNSSettings(servers: [], timeout: 2))
    }

    @Test func badValuesAreClearErrors() {
        let e = errors("""
            [dns]
            servers = ["dns.example.org", "192.0.2.1:99999", "192.0.2.1"]
            timeout = 0
            cache_entries = 2000000
            """)
        #expect(e.contains { $0.contains("2: dns.servers: \"dns.example.org\" is not ADDRESS, ADDRESS:PORT or [IPV6]:PORT") })
        #expect(e.contains { $0.contains("dns.servers: \"192.0.2.1:99999\" is not ADDRESS") })
        #expect(e.contains { $0.contains("3: dns.timeout: 0 is out of range 0.1...30 seconds") })
        #expect(e.contains { $0.contains("4: dns.cache_entries: 2000000 is out of range 0...1000000") })
        #expect(e.count == 4)
        #expect(errors("[dns]\ntimeout = \"1h\"\n").first?.contains("3600 is out of range") == true)
        #expect(errors("[dns]\ntimeout = nan\n").first?.contains("is not a number of seconds") == true)
        #expect(errors("[dns]\nservers = 53\n").first?.contains("expected a string or an array of strings") == true)
        #expect(errors("[dns]\nservers = [\(Array(repeating: "\"192.0.2.1\"", count: 9).joined(separator: ","))]\n")
                    .first?.contains("9 servers; at most 8") == true)
        #expect(errors("[dns]\nport = 53\n").first?.contains("unknown key; expected servers, timeout, cache_entries or resolv_conf") == true)
        #expect(errors("[dns]\nresolv_conf = \"/nonexistent/resolv.conf\"\n").first?.contains("cannot read /nonexistent/resolv.conf") == true)
    }

    @Test func serversFromResolvConfRelativeToTheConfiguration() throws {
        let dir = NSTemporaryDirectory() + "greylag-dns-conf-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "nameserver 192.0.2.1\nnameserver ::1\noptions timeout:2 attempts:3\n".write(toFile: dir + "/resolv", atomically: true, encoding: .utf8)
        let c = try ConfigurationLoader.parse("[dns]\nresolv_conf = \"resolv\"\ntimeout = 3\n", file: dir + "/g.toml")
        #expect(c.resolverSettings.servers == [DNSServerAddress(host: "192.0.2.1"), DNSServerAddress(host: "::1")])
        #expect(c.resolverSettings.attempts == 3 && c.resolverSettings.timeout == 3)
        #expect(c.resolverServersSource == dir + "/resolv")
        #expect(GreylagDaemon.describeResolver(c)
                == "192.0.2.1:53, [::1]:53 from \(dir)/resolv, timeout 3s, 3 round(s), cache 10000 entries")
        // dns.servers wins over the file.
        let d = try ConfigurationLoader.parse("[dns]\nresolv_conf = \"resolv\"\nservers = [\"192.0.2.9\"]\n", file: dir + "/g.toml")
        #expect(d.resolverSettings.servers == [DNSServerAddress(host: "192.0.2.9")] && d.resolverSettings.attempts == 2)
        // A file without nameserver lines: the local resolver.
        try "search example.org\n".write(toFile: dir + "/empty", atomically: true, encoding: .utf8)
        let e = try ConfigurationLoader.parse("[dns]\nresolv_conf = \"empty\"\n", file: dir + "/g.toml")
        #expect(e.resolverSettings.servers == [DNSServerAddress(host: "127.0.0.1"), DNSServerAddress(host: "::1")])
        #expect(e.resolverServersSource.contains("no nameserver lines"))
        // A directory is not a resolv.conf.
        #expect(errors("[dns]\nresolv_conf = \"\(dir)\"\n").first?.contains("cannot read") == true)
    }

    @Test func aReloadSaysDNSChangesNeedARestart() throws {
        let a = try ConfigurationLoader.parse("[dns]\nservers = [\"192.0.2.1\"]\n", file: "g.toml")
        let b = try ConfigurationLoader.parse("[dns]\nservers = [\"192.0.2.2\"]\n", file: "g.toml")
        #expect(ConfigReloader.restartOnly(a, b) == ["dns (servers, timeout, cache_entries or the resolv.conf)"])
        #expect(ConfigReloader.restartOnly(a, a).isEmpty)
    }

    @Test func lookupsAreCountedInTheDaemonsMetrics() async {
        let metrics = GreylagMetrics()
        let client = DNSClient(settings: DNSSettings(servers: []), group: MultiThreadedEventLoopGroup.singleton,
                               logger: Logger(label: "t"), metricsFactory: metrics.factory)
        _ = await client.lookup("a..example", .txt)
        _ = await client.lookup("ok.example", .a)
        _ = await client.lookup("ok.example", .a)
        let text = metrics.text()
        #expect(text.contains("greylag_dns_lookups_total{type=\"TXT\",outcome=\"bad_name\"} 1"))
        #expect(text.contains("greylag_dns_lookups_total{type=\"A\",outcome=\"no_resolver\"} 2"), "every lookup, cached or not")
        #expect(text.contains("greylag_dns_cache_hits_total{type=\"A\"} 1"), "the failure was cached")
        #expect(text.contains("greylag_dns_lookup_seconds"))
    }

    /// The daemon makes one client from `[dns]`, keeps it as `resolver`,
    /// and shuts it down when it stops.
    @Test func theDaemonHasOneResolverUntilItStops() async throws {
        let dir = NSTemporaryDirectory() + "greylag-dns-daemon-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = GreylagConfiguration()
        config.storePath = dir + "/greylag.db"
        config.policyListeners = [.tcp(host: "127.0.0.1", port: 0)]
        config.milterListeners = []
        config.httpListener = nil
        config.adminSocket = .off
        config.resolverSettings = DNSSettings(servers: [], timeout: 0.5, cacheEntries: 7)
        let (stream, continuation) = AsyncStream.makeStream(of: [String].self)
        let daemon = GreylagDaemon(configuration: config, logger: Logger(label: "t"),
                                   onListening: { continuation.yield($0) })
        #expect(daemon.resolver == nil)
        let group = ServiceGroup(configuration: .init(services: [daemon], logger: Logger(label: "t")))
        let running = Task { try await group.run() }
        var it = stream.makeAsyncIterator()
        _ = await it.next()
        let resolver = try #require(daemon.resolver)
        #expect(resolver.settings == config.resolverSettings)
        #expect(await resolver.lookup("x.example", .a) == .failure(.noResolver))
        #expect(resolver.cachedEntries == 1)
        await group.triggerGracefulShutdown()
        try await running.value
        // Stopped: nothing is asked, not even the cache.
        #expect(await resolver.lookup("y.example", .a) == .failure(.noResolver))
        #expect(resolver.cachedEntries == 1)
    }
}
