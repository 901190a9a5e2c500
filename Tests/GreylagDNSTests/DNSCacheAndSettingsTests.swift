@testable import GreylagDNS
import Testing

@Suite struct DNSCacheTests {
    let a = DNSCache.Key(name: "a.test", type: .a)
    let s: UInt64 = 1_000_000_000

    @Test func entriesLiveForTheirTTL() {
        var c = DNSCache(capacity: 10)
        c.put(a, .records([.a([1, 2, 3, 4])]), ttl: 5 * s, now: 100 * s)
        #expect(c.get(a, now: 104 * s) == .records([.a([1, 2, 3, 4])]))
        #expect(c.get(a, now: 105 * s) == nil)
        #expect(c.count == 0)
        c.put(a, .nxDomain, ttl: 0, now: 100 * s)
        #expect(c.get(a, now: 100 * s) == nil, "a TTL of 0 is not cached")
    }

    @Test func theOldestGoesWhenFull() {
        var c = DNSCache(capacity: 3)
        for i in 0..<3 { c.put(.init(name: "n\(i)", type: .a), .noData, ttl: 100 * s, now: 0) }
        // n0 is put again: n1 is now the oldest.
        c.put(.init(name: "n0", type: .a), .nxDomain, ttl: 100 * s, now: 0)
        c.put(.init(name: "n3", type: .a), .noData, ttl: 100 * s, now: 0)
        #expect(c.count == 3)
        #expect(c.get(.init(name: "n1", type: .a), now: 1) == nil)
        #expect(c.get(.init(name: "n0", type: .a), now: 1) == .nxDomain)
        #expect(c.get(.init(name: "n3", type: .a), now: 1) == .noData)
        // Many more inserts keep it bounded.
        for i in 0..<10_000 { c.put(.init(name: "m\(i)", type: .txt), .noData, ttl: s, now: UInt64(i)) }
        #expect(c.count <= 3)
    }

    @Test func noCacheWithCapacityZero() {
        var c = DNSCache(capacity: 0)
        c.put(a, .noData, ttl: s, now: 0)
        #expect(c.get(a, now: 0) == nil)
    }
}

@Suite struct ResolvConfTests {
    @Test func readsServersAndOptions() {
        let conf = ResolvConf.parse("""
            # generated
            search example.org
            domain example.org
            nameserver 192.0.2.53
            nameserver   2001:db8::53 # comment
            nameserver fe80::1%eth0
            nameserver resolver.example.org
            nameserver 198.51.100.53
            nameserver 203.0.113.53
            options ndots:2 timeout:3 attempts:9 rotate
            nameserver
            """)
        #expect(conf.servers == [DNSServerAddress(host: "192.0.2.53"), DNSServerAddress(host: "2001:db8::53"),
                                 DNSServerAddress(host: "198.51.100.53")])
        #expect(conf.timeout == 3)
        #expect(conf.attempts == 5, "attempts is capped at 5")
        #expect(conf.ignored.count == 4)
        let s = conf.settings(timeout: 1.5, cacheEntries: 10)
        #expect(s.servers.count == 3 && s.timeout == 1.5 && s.attempts == 5 && s.cacheEntries == 10)
    }

    @Test func noServersMeansTheLocalResolver() {
        let s = ResolvConf.parse("options attempts:1\n").settings(timeout: 1, cacheEntries: 1)
        #expect(s.servers == [DNSServerAddress(host: "127.0.0.1"), DNSServerAddress(host: "::1")])
        #expect(s.attempts == 1)
        #expect(ResolvConf.parse(String(repeating: "x", count: 1_000_000)).servers.isEmpty)
    }

    @Test func serverAddresses() {
        #expect(DNSServerAddress.parse("192.0.2.1") == DNSServerAddress(host: "192.0.2.1", port: 53))
        #expect(DNSServerAddress.parse("192.0.2.1:5353") == DNSServerAddress(host: "192.0.2.1", port: 5353))
        #expect(DNSServerAddress.parse("2001:db8::1") == DNSServerAddress(host: "2001:db8::1", port: 53))
        #expect(DNSServerAddress.parse("[2001:db8::1]:10053") == DNSServerAddress(host: "2001:db8::1", port: 10053))
        #expect(DNSServerAddress.parse("[::1]") == DNSServerAddress(host: "::1", port: 53))
        for bad in ["", "dns.example.org", "192.0.2.1:0", "192.0.2.1:65536", "192.0.2.1:x", "[192.0.2.1]:53",
                    "[::1]:", "[::1", "::1]:53", "300.1.1.1", "fe80::1%eth0", String(repeating: "1", count: 100)] {
            #expect(DNSServerAddress.parse(bad) == nil, "\(bad)")
        }
        #expect(DNSServerAddress(host: "::1", port: 53).description == "[::1]:53")
    }
}
