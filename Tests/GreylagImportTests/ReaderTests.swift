import Foundation
import GreylagCore
import Testing
@testable import GreylagImport

@Suite struct CivilTimeTests {
    @Test func parsesMySQLDatetimes() {
        #expect(CivilTime.parse(Array("2006-11-14 17:14:27".utf8)) == .wall(1_163_524_467))
        #expect(CivilTime.parse(Array("2006-11-14T17:14:27.123456".utf8)) == .wall(1_163_524_467))
        #expect(CivilTime.parse(Array("2006-11-14".utf8)) == .wall(1_163_462_400))
        #expect(CivilTime.parse(Array("0000-00-00 00:00:00".utf8)) == .zero)
        #expect(CivilTime.parse(Array("9999-12-31 23:59:59".utf8)) == .wall(253_402_300_799))
        #expect(CivilTime.parse(Array("1969-12-31 23:59:59".utf8)) == .wall(-1))
        #expect(CivilTime.parse(Array("2006-13-01 00:00:00".utf8)) == nil)
        #expect(CivilTime.parse(Array("2006-11-14 17:14".utf8)) == nil)
        #expect(CivilTime.parse(Array("yesterday".utf8)) == nil)
    }

    @Test func appliesTheZoneIncludingSummerTime() {
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        // Winter: UTC+1; summer: UTC+2.
        #expect(CivilTime.unixSeconds(.wall(1_163_524_467), in: berlin) == 1_163_524_467 - 3600)
        #expect(CivilTime.unixSeconds(.wall(CivilTime.utc(2015, 6, 10, 12)), in: berlin) == 1_433_937_600 - 7200)
        // 2015-03-29 03:30 CEST, just after the change.
        #expect(CivilTime.unixSeconds(.wall(CivilTime.utc(2015, 3, 29, 3, 30)), in: berlin)
                == CivilTime.utc(2015, 3, 29, 1, 30))
        #expect(CivilTime.unixSeconds(.zero, in: berlin) == 0)
        #expect(CivilTime.unixSeconds(.wall(5), in: TimeZone(secondsFromGMT: -3600)!) == 3605)
    }
}

@Suite struct MySQLReaderTests {
    let now: Int64 = 1_163_592_000  // 2006-11-15 12:00:00 UTC

    @Test func positionalInsertsLiteralsAndExpressions() throws {
        // No CREATE TABLE and no column list: relaydelay's column order.
        // Double-quoted strings, a hex literal, a charset introducer, string
        // concatenation, a negative number, NOW(), a comment in the row and
        // a row too short to place by position.
        let sql = """
            -- hand-made
            INSERT INTO relaydelay.relaytofrom VALUES
              (1,"192.0.2.1",'<a@example.org>','<b@example.net>','2006-11-15 10:05:00','2006-11-16 10:00:00',1,0,0,'AUTO','2006-11-15 10:00:00','2006-11-15 10:00:00'),
              (2,X'3139322E302E322E32',_utf8mb4'<c@' 'example.org>','<d@example.net>','2006-11-15 10:05:00','2006-11-16 10:00:00',1,0,0,'AUTO','2006-11-15 10:00:00','2006-11-15 10:00:00'),
              (3,'192.0.2.3','<e@example.org>','<f@example.net>',NOW(),'2006-11-16 10:00:00',1,0,0,'AUTO','2006-11-15 10:00:00','2006-11-15 10:00:00'),
              (4,'192.0.2.4','<g@example.org>','<h@example.net>','2006-11-15 10:05:00','2006-11-16 10:00:00',-1,0,0,'AUTO',/* created */ '2006-11-15 10:00:00','2006-11-15 10:00:00'),
              (5,'192.0.2.5','<i@example.org>')
            ON DUPLICATE KEY UPDATE passed_count = passed_count + 1;
            """
        let result = try Importer.parse(sql, format: .relaytofrom, options: ImportOptions(now: now))
        #expect(result.records.map(\.triplet) == [
            Triplet(network: "192.0.2.0/24", sender: "a@example.org", recipient: "b@example.net"),
            Triplet(network: "192.0.2.0/24", sender: "c@example.org", recipient: "d@example.net"),
        ])
        #expect(result.skipped == [
            ImportProblem(line: 5, reason: "row 3 of INSERT INTO `relaytofrom`: value 5: unsupported value `NOW`"),
            ImportProblem(line: 6, reason: "id 4: blocked_count -1 is negative"),
            ImportProblem(line: 7, reason: "id 5: has 3 values for the 12 columns of `relaytofrom`"),
        ])
    }

    @Test func columnListsMapByName() throws {
        let sql = """
            INSERT INTO `relaytofrom` (`rcpt_to`, `mail_from`, `relay_ip`, `record_expires`, `block_expires`, `passed_count`) VALUES ('<b@example.net>','<a@example.org>','192.0.2.1','2006-11-20 10:00:00','2006-11-15 10:05:00',2);
            """
        let result = try Importer.parse(sql, format: .relaytofrom, options: ImportOptions(now: now))
        // Without create_time first seen is the block expiry less the delay.
        #expect(result.records == [
            record("192.0.2.0/24", "a@example.org", "b@example.net", first: 1_163_584_800, last: 1_163_584_800,
                   block: 1_163_585_100, expires: 1_164_016_800, blocked: 0, passed: 2),
        ])
    }

    @Test func manualTripletIsAManualRecord() throws {
        // A MANUAL row with all three fields set is a triplet a postmaster
        // entered, kept as a record of origin MANUAL; '' in a MANUAL row is a wildcard.
        let sql = """
            INSERT INTO relaytofrom (relay_ip, mail_from, rcpt_to, block_expires, record_expires, origin_type) VALUES
            ('192.0.2.1','<a@example.org>','<b@example.net>','0000-00-00 00:00:00','9999-12-31 23:59:59','MANUAL'),
            ('','','<c@example.net>','0000-00-00 00:00:00','9999-12-31 23:59:59','manual'),
            ('192.0.2.2','<a@example.org>','<b@example.net>','0000-00-00 00:00:00','9999-12-31 23:59:59','LATER');
            """
        let result = try Importer.parse(sql, format: .relaytofrom, options: ImportOptions(now: now))
        #expect(result.records == [
            record("192.0.2.0/24", "a@example.org", "b@example.net", first: 0, last: 0, block: 0,
                   expires: 253_402_300_799, blocked: 0, passed: 0, origin: .manual),
        ])
        #expect(result.manualEntries == [
            ManualEntry(id: 0, list: .whitelist, field: .recipient, value: "c@example.net", comment: "relaytofrom",
                        created: 0),
        ])
        #expect(result.skipped == [ImportProblem(line: 4, reason: "row 3: origin_type is neither AUTO nor MANUAL: LATER")])
    }

    @Test func createTableColumnsOrderTheValues() throws {
        // A table created with its columns in another order than relaydelay's.
        let sql = """
            CREATE TABLE IF NOT EXISTS `relaytofrom` (
              `rcpt_to` varchar(255),
              `key` int,
              `mail_from` varchar(255) DEFAULT 'a,b',
              `relay_ip` varchar(39),
              `block_expires` datetime NOT NULL,
              `record_expires` datetime NOT NULL,
              PRIMARY KEY (`key`),
              KEY `x` (`relay_ip`, `mail_from`(20))
            ) ENGINE=MyISAM;
            INSERT INTO `relaytofrom` VALUES ('<b@example.net>',1,'<a@example.org>','192.0.2.1','2006-11-15 10:05:00','2006-11-20 10:00:00');
            """
        let result = try Importer.parse(sql, format: .relaytofrom, options: ImportOptions(now: now))
        #expect(result.records.map(\.triplet) == [
            Triplet(network: "192.0.2.0/24", sender: "a@example.org", recipient: "b@example.net"),
        ])
    }

    @Test func brokenSQLThrows() {
        #expect(throws: ImportError(line: 2, "unterminated quoted string")) {
            try Importer.parse("INSERT INTO relaytofrom VALUES\n(1,'192.0.2.1);\n", format: .relaytofrom,
                               options: ImportOptions(now: now))
        }
        #expect(throws: ImportError(line: 1, "unterminated /* comment")) {
            try Importer.parse("/* no end\n", format: .relaytofrom, options: ImportOptions(now: now))
        }
    }

    @Test func headerlessBatchUsesTheTableOrder() throws {
        // mysql --batch --skip-column-names, greylisting_data's column order.
        let tsv = "1\t192.0.2.1\ta@example.org\tb@example.net\t2015-06-10 10:55:00\t2015-06-10 18:20:00\t1\t0\t0\t"
            + "2015-06-10 10:00:00\t2015-06-10 10:00:00\n"
            + "2\t192.0.2.2\tshort\n"
        let result = try Importer.parse(tsv, format: .qmailSpp, options: ImportOptions(now: 1_433_930_400))
        #expect(result.records == [
            record("192.0.2.0/24", "a@example.org", "b@example.net", first: 1_433_930_400, last: 1_433_930_400,
                   block: 1_433_933_700, expires: 1_433_960_400, blocked: 1, passed: 0),
        ])
        #expect(result.skipped == [ImportProblem(line: 2, reason: "has 3 tab-separated fields, expected 11")])
        // greylisting_lists' column order: the fifth field is no date.
        let lists = "3\t192.0.2.0/24\tNULL\tNULL\t24\tNULL\t9999-12-31 23:59:59\t9999-12-31 23:59:59\t"
            + "2015-05-20 08:30:00\t2015-05-20 08:30:00\tblock them\n"
        let listResult = try Importer.parse(lists, format: .qmailSpp, options: ImportOptions(now: 1_433_930_400))
        #expect(listResult.manualEntries == [
            ManualEntry(id: 0, list: .blacklist, field: .client, value: "192.0.2.0/24", comment: "block them",
                        created: 1_432_110_600),
        ])
    }

    @Test func badDatesAndCountsSkipTheRow() throws {
        let tsv = """
            relay_ip\tmail_from\trcpt_to\tblock_expires\trecord_expires\tpassed_count
            192.0.2.1\ta@example.org\tb@example.net\tsoon\t2006-11-20 10:00:00\t0
            192.0.2.1\ta@example.org\tb@example.net\t2006-11-15 10:05:00\t2006-11-20 10:00:00\tmany
            192.0.2.1\ta@example.org\t\t2006-11-15 10:05:00\t2006-11-20 10:00:00\t0
            192.0.2.1\ta@example.org\tb@example.net\t2006-11-15 10:05:00\tNULL\t0
            """
        let result = try Importer.parse(tsv, format: .relaytofrom, options: ImportOptions(now: now))
        #expect(result.records.isEmpty)
        #expect(result.skipped == [
            ImportProblem(line: 2, reason: "block_expires is not a date and time: soon"),
            ImportProblem(line: 3, reason: "passed_count is not a number: many"),
            ImportProblem(line: 4, reason: "rcpt_to is empty"),
            ImportProblem(line: 5, reason: "record_expires is NULL"),
        ])
    }
}

@Suite struct CollectorTests {
    @Test func mergesDuplicatesAndDropsExpired() {
        var c = ImportCollector(options: ImportOptions(now: 100))
        c.add(record("n", "s", "r", first: 10, last: 20, block: 40, expires: 500, blocked: 1, passed: 0))
        c.add(record("n", "s", "r", first: 5, last: 15, block: 30, expires: 900, blocked: 2, passed: 3, origin: .manual))
        c.add(record("n", "s", "x", first: 1, last: 2, block: 3, expires: 99, blocked: 1, passed: 0))
        c.add(ManualEntry(id: 0, list: .whitelist, field: .client, value: "192.0.2.1", created: 50, expires: 200))
        c.add(ManualEntry(id: 0, list: .whitelist, field: .client, value: "192.0.2.1", comment: "again", created: 40))
        c.add(ManualEntry(id: 0, list: .blacklist, field: .client, value: "192.0.2.2", created: 40, expires: 100))
        let r = c.result()
        #expect(r.records == [
            record("n", "s", "r", first: 5, last: 20, block: 40, expires: 900, blocked: 3, passed: 3, origin: .manual),
        ])
        #expect(r.manualEntries == [
            ManualEntry(id: 0, list: .whitelist, field: .client, value: "192.0.2.1", comment: "again", created: 40),
        ])
        #expect(r.expired == 2)
        #expect(r.clients == [ClientRecord(network: "n", passedTriplets: 1, firstSeen: 5, lastSeen: 20,
                                           recordExpires: 900)])
    }
}
