import GreylagCore
import Testing

@Suite struct DurationTextTests {
    @Test(arguments: [
        ("300", Int64(300)), ("0", 0), ("90s", 90), ("5m", 300), ("2h", 7200), ("2d", 172_800),
        ("36d", 3_110_400), ("1w", 604_800), ("1h30m", 5400), (" 5M ", 300),
    ])
    func parses(text: String, seconds: Int64) {
        #expect(DurationText.parse(text) == seconds)
    }

    @Test(arguments: ["", "m", "5x", "-5", "5 m", "1.5h", "99999999999999999999d", "5m3"])
    func refuses(text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test func readingChecksTheLimitWithoutOverflowing() {
        let max = NumericLimits.maxDuration
        #expect(DurationText.read("315576000") == .seconds(max))
        #expect(DurationText.read("3652d12h") == .seconds(max))
        #expect(DurationText.read("3652d12h1s") == .tooLong)
        for text in ["315576001", "99999999999d", "99999999999999999999d", "99999999999999999999",
                     "9223372036854775807", "9223372036854775807s1s", "15250284452471w", "1000000000000000000000w5m"] {
            #expect(DurationText.read(text) == .tooLong, "\(text)")
        }
        for text in ["", "-1", "nan", "inf", "1e308", "99999999999999999999x", "5m3"] {
            #expect(DurationText.read(text) == .invalid, "\(text)")
        }
        // Without the limit, only what fits in Int64.
        let long: Int64 = 8_639_999_999_913_600
        #expect(DurationText.parse("99999999999d") == long)
        #expect(DurationText.parse("9223372036854775807s1s") == nil)
    }

    @Test func formats() {
        #expect(DurationText.format(292) == "4m52s")
        #expect(DurationText.format(172_800) == "2d")
        #expect(DurationText.format(0) == "0s")
        #expect(DurationText.clock(292) == "00:04:52")
        #expect(DurationText.clock(90_061) == "25:01:01")
    }
}

@Suite struct MailDateTests {
    @Test(arguments: [
        (Int64(0), "Thu, 01 Jan 1970 00:00:00 +0000"),
        (1_795_292_186, "Sat, 21 Nov 2026 20:16:26 +0000"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 +0000"),
        (-1, "Wed, 31 Dec 1969 23:59:59 +0000"),
    ])
    func formatsRFC5322(seconds: Int64, expected: String) {
        #expect(MailDate.format(epochSeconds: seconds) == expected)
    }
}

@Suite struct ReplyTemplateTests {
    @Test func expandsPlaceholders() {
        let verdict = Verdict(action: .defer, reason: .tooEarly, timeLeft: 292,
                              triplet: Triplet(network: "192.0.2.0/24", sender: "a@b", recipient: "c@d"))
        let query = GreylistQuery(clientAddress: "192.0.2.7", sender: "", recipient: "C@d")
        let text = ReplyTemplate.expand("{seconds}|{left}|{hms}|{client}|{network}|{sender}|{recipient}|{nope}|{",
                                        verdict: verdict, query: query)
        #expect(text == "292|4m52s|00:04:52|192.0.2.7|192.0.2.0/24|<>|C@d|{nope}|{")
    }
}
