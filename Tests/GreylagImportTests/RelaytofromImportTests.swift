import Foundation
import GreylagCore
import Testing
@testable import GreylagImport

/// Fixtures: `relaytofrom.sql` (a MariaDB dump, one row a line from line 80,
/// ids 1...15) and `relaytofrom.tsv` (`mysql --batch` output of some rows,
/// columns reordered, plus row 16 with a tab and a newline).
@Suite struct RelaytofromImportTests {
    /// 2006-11-15 12:00:00 UTC
    let now: Int64 = 1_163_592_000

    @Test func mysqldumpRecords() throws {
        let result = try Importer.parse(try Fixture.text("relaytofrom.sql"), format: .relaytofrom,
                                        options: ImportOptions(now: now))
        #expect(result.records == [
            // ids 3 and 5: 192.0.2.10 and 192.0.2.99 share 192.0.2.0/24; the
            // addresses differ only in case. Merged: earliest create_time (id 5,
            // 2006-11-13 08:00:00), latest last_update (id 3, 2006-11-15
            // 09:30:00), latest block_expires (id 3, 2006-11-14 17:14:27 →
            // 1163524467), latest record_expires (id 5, 2006-12-24 08:00:00),
            // blocked 2+1, passed 5+3.
            record("192.0.2.0/24", "alice@example.org", "bob@example.net", first: 1_163_404_800, last: 1_163_583_000,
                   block: 1_163_524_467, expires: 1_166_947_200, blocked: 3, passed: 8),
            // id 4: +extension removed from the sender.
            record("192.0.2.0/24", "newsletter@lists.example.com", "carol@example.net", first: 1_163_586_000,
                   last: 1_163_586_000, block: 1_163_589_600, expires: 1_163_604_000, blocked: 1, passed: 0),
            // id 6: IPv6 client, null sender.
            record("2001:db8:aaaa:1::/64", "<>", "postmaster@example.net", first: 1_163_574_300, last: 1_163_576_700,
                   block: 1_163_577_900, expires: 1_163_592_300, blocked: 3, passed: 0),
            // id 13: \' escape and a ; inside the string.
            record("203.0.113.0/24", "o'brien;sales@example.ie", "erin@example.net", first: 1_163_530_800,
                   last: 1_163_538_000, block: 1_163_534_400, expires: 1_166_562_000, blocked: 1, passed: 1),
            // id 15: \\ escape.
            record("203.0.113.0/24", "back\\slash@example.com", "frank@example.net", first: 1_163_581_200,
                   last: 1_163_581_200, block: 1_163_584_800, expires: 1_163_754_000, blocked: 1, passed: 0),
        ])
        // id 12 expired on 2006-11-01.
        #expect(result.expired == 1)
    }

    @Test func mysqldumpManualEntriesAndSkippedRows() throws {
        let result = try Importer.parse(try Fixture.text("relaytofrom.sql"), format: .relaytofrom,
                                        options: ImportOptions(now: now))
        #expect(result.manualEntries == [
            // block_expires 0000-00-00 (past): whitelist; record_expires 9999: no expiry.
            ManualEntry(id: 0, list: .whitelist, field: .client, value: "127.0.0.1", comment: "relaytofrom #1",
                        created: 1_159_776_000),
            // relaydelay's partial subnet "192.168".
            ManualEntry(id: 0, list: .whitelist, field: .client, value: "192.168.0.0/16", comment: "relaytofrom #2",
                        created: 1_159_776_000),
            // block_expires 9999-12-31: blacklist.
            ManualEntry(id: 0, list: .blacklist, field: .client, value: "198.51.100.0/24", comment: "relaytofrom #8",
                        created: 1_160_049_600),
            ManualEntry(id: 0, list: .whitelist, field: .recipient, value: "postmaster@example.net",
                        comment: "relaytofrom #9", created: 1_160_049_660),
            // record_expires 2007-01-31 00:00:00.
            ManualEntry(id: 0, list: .blacklist, field: .sender, value: "spammer@bad.example", comment: "relaytofrom #10",
                        created: 1_162_375_200, expires: 1_170_201_600),
        ])
        #expect(result.skipped == [
            ImportProblem(line: 86, reason: "id 7: no relay_ip (a reverse-tracking row); greylag keys triplets by client"),
            ImportProblem(line: 90, reason: "id 11: manual entry on relay_ip and rcpt_to together has no greylag equivalent"),
            ImportProblem(line: 93, reason: "id 14: relay_ip is not an IP address: not-an-ip"),
        ])
    }

    @Test func clientsDerivedFromPassedRecords() throws {
        let result = try Importer.parse(try Fixture.text("relaytofrom.sql"), format: .relaytofrom,
                                        options: ImportOptions(now: now))
        #expect(result.clients == [
            ClientRecord(network: "192.0.2.0/24", passedTriplets: 1, firstSeen: 1_163_404_800, lastSeen: 1_163_583_000,
                         recordExpires: 1_166_947_200),
            ClientRecord(network: "203.0.113.0/24", passedTriplets: 1, firstSeen: 1_163_530_800,
                         lastSeen: 1_163_538_000, recordExpires: 1_166_562_000),
        ])
    }

    @Test func serverTimeZoneAppliesToDatetimeButNotDumpedTimestamps() throws {
        var options = ImportOptions(now: now)
        options.timeZone = TimeZone(identifier: "Europe/Berlin")!
        let result = try Importer.parse(try Fixture.text("relaytofrom.sql"), format: .relaytofrom, options: options)
        let r = try #require(result.record("192.0.2.0/24", "alice@example.org", "bob@example.net"))
        // DATETIME in CET (UTC+1): 2006-11-14 17:14:27 CET → 1163524467 - 3600.
        #expect(r.blockExpires == 1_163_520_867)
        // create_time (DATETIME) of id 5, 2006-11-13 08:00:00 CET.
        #expect(r.firstSeen == 1_163_401_200)
        // last_update is a TIMESTAMP dumped with TIME_ZONE='+00:00': UTC.
        #expect(r.lastSeen == 1_163_583_000)
        // id 6 (record_expires 12:05 CET = 11:05 UTC) has now expired too.
        #expect(result.expired == 2)
    }

    @Test func batchOutputMapsColumnsByHeader() throws {
        let result = try Importer.parse(try Fixture.text("relaytofrom.tsv"), format: .relaytofrom,
                                        options: ImportOptions(now: now))
        #expect(result.records == [
            record("192.0.2.0/24", "alice@example.org", "bob@example.net", first: 1_163_520_867, last: 1_163_583_000,
                   block: 1_163_524_467, expires: 1_166_635_800, blocked: 2, passed: 5),
            record("192.0.2.0/24", "newsletter@lists.example.com", "carol@example.net", first: 1_163_586_000,
                   last: 1_163_586_000, block: 1_163_589_600, expires: 1_163_604_000, blocked: 1, passed: 0),
            record("2001:db8:aaaa:1::/64", "<>", "postmaster@example.net", first: 1_163_574_300, last: 1_163_576_700,
                   block: 1_163_577_900, expires: 1_163_592_300, blocked: 3, passed: 0),
            record("203.0.113.0/24", "o'brien;sales@example.ie", "erin@example.net", first: 1_163_530_800,
                   last: 1_163_538_000, block: 1_163_534_400, expires: 1_166_562_000, blocked: 1, passed: 1),
            // \\ in batch output is one backslash.
            record("203.0.113.0/24", "back\\slash@example.com", "frank@example.net", first: 1_163_581_200,
                   last: 1_163_581_200, block: 1_163_584_800, expires: 1_163_754_000, blocked: 1, passed: 0),
            // \t and \n escapes.
            record("198.51.100.0/24", "tab\there@example.com", "line\nbreak@example.net", first: 1_163_584_800,
                   last: 1_163_584_800, block: 1_163_588_400, expires: 1_163_757_600, blocked: 1, passed: 0),
        ])
        #expect(result.manualEntries == [
            ManualEntry(id: 0, list: .whitelist, field: .recipient, value: "postmaster@example.net",
                        comment: "relaytofrom #9", created: 1_160_049_660),
            ManualEntry(id: 0, list: .blacklist, field: .sender, value: "spammer@bad.example", comment: "relaytofrom #10",
                        created: 1_162_375_200, expires: 1_170_201_600),
        ])
        // Row id 7 (line 5) has relay_ip NULL.
        #expect(result.skipped == [
            ImportProblem(line: 5, reason: "id 7: no relay_ip (a reverse-tracking row); greylag keys triplets by client"),
        ])
        #expect(result.expired == 0)
    }

    @Test func keyingDecidesTheNetworks() throws {
        var options = ImportOptions(now: now)
        options.keying = NetworkKeying(ipv4Prefix: 32, ipv6Prefix: 128)
        let result = try Importer.parse(try Fixture.text("relaytofrom.sql"), format: .relaytofrom, options: options)
        // Without /24 keying ids 3 and 5 stay apart.
        #expect(result.records.map(\.triplet.network) == [
            "192.0.2.10", "192.0.2.77", "192.0.2.99", "2001:db8:aaaa:1::25", "203.0.113.9", "203.0.113.10",
        ])
        #expect(result.record("192.0.2.10", "alice@example.org", "bob@example.net")?.passedCount == 5)
    }

    @Test func senderNormalisationCanBeTurnedOff() throws {
        var options = ImportOptions(now: now)
        options.normalizeSender = false
        let result = try Importer.parse(try Fixture.text("relaytofrom.sql"), format: .relaytofrom, options: options)
        #expect(result.record("192.0.2.0/24", "newsletter+bounce-4711@lists.example.com", "carol@example.net") != nil)
    }

    @Test func otherFormatsAreRefused() throws {
        #expect(throws: ImportError(line: 2, "`smtpd_recipient_restrictions` does not start an SQL statement")) {
            try Importer.parse(try Fixture.text("not-a-dump.txt"), format: .relaytofrom, options: ImportOptions(now: now))
        }
        #expect(throws: ImportError(line: 1, "the dump has no CREATE TABLE or INSERT for `relaytofrom` "
                                    + "(it has tables `greylisting_data`, `greylisting_lists`)")) {
            try Importer.parse(try Fixture.text("qmail-spp.sql"), format: .relaytofrom, options: ImportOptions(now: now))
        }
        #expect(throws: ImportError.self) {
            try Importer.parse(try Fixture.text("qmail-spp-lists.tsv"), format: .relaytofrom,
                               options: ImportOptions(now: now))
        }
        #expect(throws: ImportError(line: 1, "empty input: expected mysqldump SQL or mysql --batch output")) {
            try Importer.parse("\n\n", format: .relaytofrom, options: ImportOptions(now: now))
        }
    }
}
