import Foundation
import GreylagCore
import Testing
@testable import GreylagImport

/// Fixtures: `qmail-spp.sql` (`mysqldump --hex-blob --complete-insert`, each
/// INSERT on one line: greylisting_data on line 50, greylisting_lists on line
/// 86, with a trigger under `DELIMITER ;;`), `qmail-spp-binary.sql` (plain
/// dump, `relay_ip` as raw bytes, data rows on lines 52-58) and the
/// `mysql --batch` outputs `qmail-spp-data.tsv` and `qmail-spp-lists.tsv`.
@Suite struct QmailSppImportTests {
    /// 2015-06-10 12:00:00 UTC
    let now: Int64 = 1_433_937_600

    let expectedRecords = [
        // ids 1 and 2 (192.0.2.10 and .20): created 2015-06-09 08:00:00, last
        // update 2015-06-10 10:05:00, block 2015-06-10 10:55:00, record
        // expiry 2015-07-15 09:30:00, blocked 1+2, passed 4+0.
        record("192.0.2.0/24", "alice@example.org", "bob@example.net", first: 1_433_836_800, last: 1_433_930_700,
               block: 1_433_933_700, expires: 1_436_952_600, blocked: 3, passed: 4),
        // id 3: IPv6, empty mail_from is the null sender.
        record("2001:db8:1:2::/64", "<>", "postmaster@example.net", first: 1_433_933_100, last: 1_433_933_100,
               block: 1_433_936_400, expires: 1_433_963_100, blocked: 1, passed: 0),
        // id 4: INET6_ATON('::ffff:203.0.113.50') is an IPv4 client.
        record("203.0.113.0/24", "carol@example.com", "dave@example.net", first: 1_433_764_800, last: 1_433_769_000,
               block: 1_433_768_100, expires: 1_436_879_400, blocked: 1, passed: 1),
        // id 7: 10.0.0.1
        record("10.0.0.0/24", "grace@example.com", "heidi@example.net", first: 1_433_932_500, last: 1_433_932_500,
               block: 1_433_935_800, expires: 1_433_962_500, blocked: 1, passed: 0),
    ]

    let expectedEntries = [
        ManualEntry(id: 0, list: .whitelist, field: .client, value: "127.0.0.1", comment: "whitelist for localhost",
                    created: 1_432_065_600),
        ManualEntry(id: 0, list: .blacklist, field: .client, value: "198.51.100.0/24",
                    comment: "blacklist: snowshoe spam range", created: 1_432_110_600),
        // record_expires 2015-12-31 23:59:59
        ManualEntry(id: 0, list: .whitelist, field: .client, value: "2001:db8:85a3::/48", comment: "partner IPv6 range",
                    created: 1_432_198_800, expires: 1_451_606_399),
        // rcpt_to holds the recipient domain.
        ManualEntry(id: 0, list: .whitelist, field: .recipientDomain, value: "example.org",
                    comment: "no greylisting for example.org", created: 1_432_288_800),
        ManualEntry(id: 0, list: .blacklist, field: .recipientDomain, value: "sub.example.com",
                    comment: "greylisting_lists #5", created: 1_432_378_800),
    ]

    @Test func hexBlobDump() throws {
        let result = try Importer.parse(try Fixture.text("qmail-spp.sql"), format: .qmailSpp,
                                        options: ImportOptions(now: now))
        #expect(result.records == expectedRecords)
        #expect(result.manualEntries == expectedEntries)
        // greylisting_data id 5 and greylisting_lists id 6 have expired.
        #expect(result.expired == 2)
        #expect(result.skipped == [ImportProblem(line: 50, reason: "id 6: relay_ip is NULL")])
        #expect(result.clients == [
            ClientRecord(network: "192.0.2.0/24", passedTriplets: 1, firstSeen: 1_433_836_800, lastSeen: 1_433_930_700,
                         recordExpires: 1_436_952_600),
            ClientRecord(network: "203.0.113.0/24", passedTriplets: 1, firstSeen: 1_433_764_800,
                         lastSeen: 1_433_769_000, recordExpires: 1_436_879_400),
        ])
    }

    @Test func binaryDumpReadAsBytes() throws {
        let result = try Importer.parse(bytes: try Fixture.bytes("qmail-spp-binary.sql"), format: .qmailSpp,
                                        options: ImportOptions(now: now))
        #expect(result.records == expectedRecords)
        #expect(result.manualEntries == expectedEntries)
        #expect(result.expired == 2)
        #expect(result.skipped == [ImportProblem(line: 57, reason: "id 6: relay_ip is NULL")])
    }

    @Test func binaryDumpReadAsTextReportsTheDamage() throws {
        let result = try Importer.parse(try Fixture.text("qmail-spp-binary.sql"), format: .qmailSpp,
                                        options: ImportOptions(now: now))
        // Only 10.0.0.1 ('\n\0\0\x01') is plain ASCII and survives.
        #expect(result.records == [expectedRecords[3]])
        let damaged = "relay_ip was damaged by reading binary as text; pass the file as bytes or dump with --hex-blob"
        #expect(result.skipped == [
            ImportProblem(line: 52, reason: "id 1: " + damaged),
            ImportProblem(line: 53, reason: "id 2: " + damaged),
            ImportProblem(line: 54, reason: "id 3: " + damaged),
            ImportProblem(line: 55, reason: "id 4: " + damaged),
            ImportProblem(line: 56, reason: "id 5: " + damaged),
            ImportProblem(line: 57, reason: "id 6: relay_ip is NULL"),
        ])
    }

    @Test func batchOutput() throws {
        let data = try Importer.parse(try Fixture.text("qmail-spp-data.tsv"), format: .qmailSpp,
                                      options: ImportOptions(now: now))
        #expect(data.records == expectedRecords)
        #expect(data.skipped == [ImportProblem(line: 7, reason: "id 6: relay_ip is NULL")])
        #expect(data.expired == 1)
        let lists = try Importer.parse(try Fixture.text("qmail-spp-lists.tsv"), format: .qmailSpp,
                                       options: ImportOptions(now: now))
        #expect(lists.manualEntries == expectedEntries)
        #expect(lists.records.isEmpty && lists.clients.isEmpty && lists.skipped.isEmpty)
        #expect(lists.expired == 1)
    }

    @Test func batchTimesAreInTheServerZone() throws {
        var options = ImportOptions(now: now)
        options.timeZone = TimeZone(identifier: "Europe/Vienna")!
        let result = try Importer.parse(try Fixture.text("qmail-spp-data.tsv"), format: .qmailSpp, options: options)
        // CEST (UTC+2): every DATETIME and TIMESTAMP moves two hours back.
        let r = try #require(result.record("203.0.113.0/24", "carol@example.com", "dave@example.net"))
        #expect(r.firstSeen == 1_433_764_800 - 7200)
        #expect(r.lastSeen == 1_433_769_000 - 7200)
        #expect(r.blockExpires == 1_433_768_100 - 7200)
        #expect(r.recordExpires == 1_436_879_400 - 7200)
    }

    @Test func relayAddressForms() {
        #expect(QmailSppImport.relayAddress(.binary([192, 0, 2, 1])) == IPAddress("192.0.2.1"))
        #expect(QmailSppImport.relayAddress(.string(Array("192.0.2.1".utf8))) == IPAddress("192.0.2.1"))
        // INET_ATON('192.0.2.1')
        #expect(QmailSppImport.relayAddress(.number(Array("3221225985".utf8))) == IPAddress("192.0.2.1"))
        #expect(QmailSppImport.relayAddress(.string([0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]))
                == IPAddress("2001:db8::1"))
        #expect(QmailSppImport.relayAddress(.string([1, 2, 3])) == nil)
        #expect(QmailSppImport.relayAddress(.null) == nil)
    }

    @Test func wrongTablesAreRefused() throws {
        #expect(throws: ImportError(line: 1, "the dump has no CREATE TABLE or INSERT for `greylisting_data` or "
                                    + "`greylisting_lists` (it has tables `dns_name`, `relaytofrom`)")) {
            try Importer.parse(try Fixture.text("relaytofrom.sql"), format: .qmailSpp, options: ImportOptions(now: now))
        }
        #expect(throws: ImportError(line: 2, "`smtpd_recipient_restrictions` does not start an SQL statement")) {
            try Importer.parse(try Fixture.text("not-a-dump.txt"), format: .qmailSpp, options: ImportOptions(now: now))
        }
    }
}
