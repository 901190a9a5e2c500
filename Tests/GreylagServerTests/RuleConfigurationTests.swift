import Foundation
import GreylagCore
import GreylagServer
import Testing

/// `[[rules]]` as the loader reads it: values, defaults, and every
/// mistake located by file, line and key.
@Suite struct RuleConfigurationTests {
    let file = "/etc/greylag/greylag.toml"

    func errors(_ text: String) -> [String] { configurationErrors(text, file: file) }

    @Test func rulesAreReadInFileOrderWithTheirSettings() throws {
        let c = try ConfigurationLoader.parse("""
            [greylist]
            delay = "5m"

            [[rules]]
            sender_domains = ["example.com"]
            recipients = ["list@example.net"]
            delay = "1h"
            retry_window = "2d"
            pass_ttl = "7d"
            defer_code = "451 4.7.1"
            defer_text = "Slow down, {sender}"

            [[rules]]
            action = "blacklist"
            clients = ["203.0.113.0/24"]
            reject_code = "554 5.7.1"
            reject_text = "Go away"

            [[rules]]
            action = "whitelist"
            lists = ["partners"]

            [lists.partners]
            senders = ["news@partner.example"]
            """, file: file)
        let rules = c.lists.rules
        #expect(rules.count == 3)
        #expect(rules.map(\.action) == [.greylist, .blacklist, .whitelist])
        #expect(rules.map(\.origin) == ["\(file):4 rules[1]", "\(file):13 rules[2]", "\(file):19 rules[3]"])
        #expect(rules[0].selectors.count == 2)
        #expect(rules[0].delay == 3600 && rules[0].retryWindow == 2 * 86_400 && rules[0].passTTL == 7 * 86_400)
        #expect(rules[0].reply == RuleReply(deferCode: "451 4.7.1", deferText: "Slow down, {sender}"))
        #expect(rules[1].reply == RuleReply(rejectCode: "554 5.7.1", rejectText: "Go away"))
        #expect(rules[1].delay == nil && rules[2].reply == nil)
        #expect(rules[2].selectors.first?.rules.map(\.text) == ["news@partner.example"])
        // The selectors' entries are located like the list tables' entries.
        #expect(rules[0].selectors.map { $0.rules.map(\.origin) } == [["\(file):5 rules[1].sender_domains"],
                                                                      ["\(file):6 rules[1].recipients"]])
    }

    @Test func aRuleWithoutTimingsUsesTheGreylistSection() throws {
        let c = try ConfigurationLoader.parse("""
            [[rules]]
            recipient_domains = ["example.net"]
            """, file: file)
        let r = try #require(c.lists.rules.first)
        #expect(r.action == .greylist && r.delay == nil && r.retryWindow == nil && r.passTTL == nil && r.reply == nil)
    }

    @Test func mistakesAreLocatedByLineAndKey() {
        let found = errors("""
            [[rules]]
            action = "greylist"

            [[rules]]
            senders = ["a@example.com"]
            action = "maybe"

            [[rules]]
            action = "whitelist"
            clients = ["192.0.2.0/24"]
            delay = "1h"
            defer_text = "no"

            [[rules]]
            senders = ["a@example.com"]
            reject_text = "no"
            colour = "red"

            [[rules]]
            action = "blacklist"
            senders = ["a@example.com"]
            pass_ttl = "7d"
            defer_code = "451"

            [[rules]]
            clients = ["192.0.2.0/33"]
            delay = "-1h"
            retry_window = "0s"
            pass_ttl = "11y"
            defer_code = "550 5.7.1"
            defer_text = "try in {minutes}"

            [[rules]]
            recipients = []
            lists = ["nope"]
            """)
        let expected = [
            "\(file):1: rules[1]: has no selector; give at least one of",
            "\(file):6: rules[2].action: \"maybe\" is not \"greylist\", \"whitelist\" or \"blacklist\"",
            "\(file):11: rules[3].delay: does not apply to a whitelist rule",
            "\(file):12: rules[3].defer_text: does not apply to a whitelist rule",
            "\(file):16: rules[4].reject_text: does not apply to a greylist rule; it takes defer_code, defer_text, "
                + "delay, pass_ttl, retry_window",
            "\(file):17: rules[4].colour: unknown key; expected one of clients,",
            "\(file):22: rules[5].pass_ttl: does not apply to a blacklist rule; it takes reject_code, reject_text",
            "\(file):23: rules[5].defer_code: does not apply to a blacklist rule",
            "\(file):26: rules[6].clients: \"192.0.2.0/33\" is not an IP address",
            "\(file):27: rules[6].delay: \"-1h\" is not a duration",
            "\(file):28: rules[6].retry_window: must be more than 0",
            "\(file):29: rules[6].pass_ttl: \"11y\"",
            "\(file):30: rules[6].defer_code: \"550 5.7.1\" is not a 4xx code",
            "\(file):31: rules[6].defer_text: unknown placeholder {minutes}",
            "\(file):34: rules[7].recipients: is empty; a selector without values never matches",
            "\(file):35: rules[7].lists: no list named \"nope\"; define it as [lists.nope]",
        ]
        for e in expected {
            #expect(found.contains { $0.hasPrefix(e) }, "missing: \(e)\nfound:\n\(found.joined(separator: "\n"))")
        }
        #expect(found.count == expected.count, "\(found.joined(separator: "\n"))")
    }

    @Test func theRetryWindowMustOutlastTheDelayWhicheverSetsThem() {
        #expect(errors("""
            [greylist]
            retry_window = "2h"
            [[rules]]
            senders = ["a@example.com"]
            delay = "3h"
            """) == ["\(file):5: rules[1].delay: the retry window (2h) must be longer than the delay (3h)"])
        #expect(errors("""
            [[rules]]
            senders = ["a@example.com"]
            delay = "1h"
            retry_window = "30m"
            """) == ["\(file):4: rules[1].retry_window: the retry window (30m) must be longer than the delay (1h)"])
    }

    @Test func rulesMustBeAnArrayOfTables() {
        #expect(errors("[rules]\nsenders = [\"a@example.com\"]\n").first?.hasPrefix(
            "\(file):1: rules: expected [[rules]] entries (an array of tables), found table") == true)
        #expect(errors("rules = [\"a\"]\n").first?.hasPrefix("\(file): rules[1]: expected a table") == true)
    }

    @Test func ruleSelectorsReadGreylagListFiles() throws {
        let dir = TemporaryDirectory()
        try "sender_domain example.com\nclient 192.0.2.0/24\n".write(toFile: dir.path + "/slow", atomically: true,
                                                                        encoding: .utf8)
        let c = try ConfigurationLoader.parse("""
            [[rules]]
            files = ["slow"]
            delay = "1h"
            """, file: dir.path + "/greylag.toml")
        #expect(c.lists.rules.first?.selectors.first?.rules.map(\.text) == ["example.com", "192.0.2.0/24"])
        #expect(c.listFiles == [dir.path + "/slow"])
    }
}
