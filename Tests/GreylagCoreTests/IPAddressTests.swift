import GreylagCore
import Testing

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1"),
        ("[192.0.2.1]", "192.0.2.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("IPv6:2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("::1", "::1"),
        ("::", "::"),
        ("fe80::1%eth0", "fe80::1"),
        ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
        ("2001:0:0:1:2:0:0:1", "2001::1:2:0:0:1"),
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
        ("::ffff:192.0.2.9", "192.0.2.9"),
        ("::FFFF:c000:0209", "192.0.2.9"),
        ("64:ff9b::192.0.2.1", "64:ff9b::c000:201"),
        ("1:2:3:4:5:6:192.0.2.1", "1:2:3:4:5:6:c000:201"),
        ("1::", "1::"),
        ("0:0:0:0:0:0:0:0", "::"),
    ])
    func parsesAndPrints(input: String, expected: String) {
        #expect(IPAddress(input)?.description == expected)
    }

    @Test(arguments: ["", "unknown", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", "1..2.3",
                      ":::", "1:2:3:4:5:6:7:8:9", "2001:db8::1::2", "g::1", "12345::1", ":1:2::", "1:2::3:",
                      "[1.2.3.4", "::ffff:1.2.3", "+1::1", "1:2:3:4:5:6:7:1.2.3.4", "1.2.3.4::1",
                      "::1.2.3.4.5", "1:2:3:4:5:6:7:8:", ":", "::g", "1:2:3:4:5:6:7", "0x1::1"])
    func refusesGarbage(input: String) {
        #expect(IPAddress(input) == nil)
    }

    @Test func mappedAddressIsIPv4() {
        #expect(IPAddress("::ffff:10.1.2.3") == IPAddress("10.1.2.3"))
        #expect(IPAddress("::ffff:10.1.2.3")?.isIPv4 == true)
    }

    @Test(arguments: [
        ("192.0.2.77", 24, "192.0.2.0"), ("192.0.2.77", 32, "192.0.2.77"), ("192.0.2.77", 0, "0.0.0.0"),
        ("192.0.2.77", 16, "192.0.0.0"), ("192.0.2.77", 25, "192.0.2.0"), ("192.0.2.200", 25, "192.0.2.128"),
        ("2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::"), ("2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::"),
        ("2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6"), ("2001:db8:1:2:3:4:5:6", 96, "2001:db8:1:2:3:4::"),
        ("2001:db8:1:2:ffff:4:5:6", 65, "2001:db8:1:2:8000::"), ("2001:db8:1:2:3:4:5:6", 0, "::"),
    ])
    func masks(input: String, prefix: Int, expected: String) {
        #expect(IPAddress(input)?.masked(to: prefix).description == expected)
    }
}

@Suite struct NetworkKeyingTests {
    @Test func defaultsAreSlash24AndSlash64() {
        let keying = NetworkKeying()
        #expect(keying.network(of: IPAddress("198.51.100.23")!) == "198.51.100.0/24")
        #expect(keying.network(of: IPAddress("2001:db8:a:b:c::1")!) == "2001:db8:a:b::/64")
        #expect(keying.network(of: IPAddress("::ffff:198.51.100.23")!) == "198.51.100.0/24")
    }

    @Test func exactAddressKeying() {
        let keying = NetworkKeying(ipv4Prefix: 32, ipv6Prefix: 128)
        #expect(keying.network(of: IPAddress("198.51.100.23")!) == "198.51.100.23")
        #expect(keying.network(of: IPAddress("2001:db8::1")!) == "2001:db8::1")
    }

    @Test func neighboursShareANetworkAndOthersDoNot() {
        let keying = NetworkKeying()
        #expect(keying.network(of: IPAddress("198.51.100.1")!) == keying.network(of: IPAddress("198.51.100.254")!))
        #expect(keying.network(of: IPAddress("198.51.100.1")!) != keying.network(of: IPAddress("198.51.101.1")!))
        #expect(keying.network(of: IPAddress("2001:db8::1")!) == keying.network(of: IPAddress("2001:db8::ffff:1")!))
        #expect(keying.network(of: IPAddress("2001:db8::1")!) != keying.network(of: IPAddress("2001:db8:0:1::1")!))
    }
}
