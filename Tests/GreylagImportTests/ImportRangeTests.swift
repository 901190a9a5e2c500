import Foundation
import GreylagCore
import Testing
@testable import GreylagImport

/// Numbers out of range in an import are an error for their line, never a
/// trap in the arithmetic on them (first seen + delay, last seen + TTL, ...).
@Suite struct ImportRangeTests {
    let now: Int64 = 1_709_294_400
    let huge = "9223372036854775807"
    let tiny = "-9223372036854775807"
    let range = "is out of range (Unix seconds of the years 1 to 9999)"

    @Test func postgreyTimesAndCounts() throws {
        let dump = """
            VERSION=3
            format=print
            type=btree
            HEADER=END
             192.0.2.0/alice@example.org/bob@example.net
             \(tiny),\(huge)
             192.0.2.0/carol@example.org/bob@example.net
             1709200000,\(huge)
             192.0.2.0/dave@example.org/bob@example.net
             1709200000,1709290000
             198.51.100.7
             1,\(huge)
            DATA=END

            """
        let result = try Importer.parse(dump, format: .postgrey, options: ImportOptions(now: now))
        #expect(result.records.count + result.expired == 1)
        #expect(result.skipped == [
            ImportProblem(line: 5, reason: "first seen time \(tiny) \(range)"),
            ImportProblem(line: 7, reason: "last seen time \(huge) \(range)"),
            ImportProblem(line: 11, reason: "last seen time \(huge) \(range)"),
        ])
    }

    @Test func milterGreylistTime() throws {
        let dump = "192.0.2.10\t<a@example.org>\t<b@example.net>\t\(huge)\n"
            + "192.0.2.11\t<a@example.org>\t<b@example.net>\t\(tiny) AUTO\n"
            + "192.0.2.12\t<c@example.org>\t<b@example.net>\t1267446000\n"
        let result = try Importer.parse(dump, format: .milterGreylist, options: ImportOptions(now: now))
        #expect(result.records.count + result.expired == 1)
        #expect(result.skipped == [
            ImportProblem(line: 1, reason: "time \(huge) \(range)"),
            ImportProblem(line: 2, reason: "time \(tiny) \(range)"),
        ])
    }

    @Test func relaytofromTimesAndCounts() throws {
        let sql = """
            INSERT INTO relaytofrom VALUES
              (1,'192.0.2.1','<a@example.org>','<b@example.net>',\(tiny),'2006-11-16 10:00:00',1,0,0,'AUTO','2006-11-15 10:00:00','2006-11-15 10:00:00'),
              (2,'192.0.2.2','<c@example.org>','<d@example.net>','2006-11-15 10:05:00',\(huge),1,0,0,'AUTO','2006-11-15 10:00:00','2006-11-15 10:00:00'),
              (3,'192.0.2.3','<e@example.org>','<f@example.net>','2006-11-15 10:05:00','2006-11-16 10:00:00',-1,0,0,'AUTO','2006-11-15 10:00:00','2006-11-15 10:00:00'),
              (4,'192.0.2.4','<g@example.org>','<h@example.net>','2006-11-15 10:05:00','2006-11-16 10:00:00',1,0,0,'AUTO','2006-11-15 10:00:00','2006-11-15 10:00:00');
            """
        let result = try Importer.parse(sql, format: .relaytofrom, options: ImportOptions(now: now))
        #expect(result.records.count + result.expired == 1)
        #expect(result.skipped == [
            ImportProblem(line: 2, reason: "id 1: block_expires \(tiny) \(range)"),
            ImportProblem(line: 3, reason: "id 2: record_expires \(huge) \(range)"),
            ImportProblem(line: 4, reason: "id 3: blocked_count -1 is negative"),
        ])
    }

    @Test func greylagExportNumbers() throws {
        let header = #"{"type":"greylag-export","version":1,"exported_at":1700000000,"ipv4_prefix":24,"ipv6_prefix":64}"#
        func rec(_ first: String, _ passed: String = "1") -> String {
            #"{"type":"record","network":"192.0.2.0/24","sender":"a@example.org","recipient":"b@example.net","first_seen":"#
                + first + #","last_seen":1699999000,"block_expires":1699990300,"record_expires":1703109000,"blocked_count":1,"passed_count":"#
                + passed + #","origin":"AUTO"}"#
        }
        let text = [header, rec(huge), rec("1699990000", "-1"), rec("99999999999999999999"), rec("1e308"),
                    rec("1699990000"),
                    #"{"type":"manual","id":1,"list":"whitelist","field":"client","value":"192.0.2.1","created":1,"expires":"# + huge + "}"]
            .joined(separator: "\n") + "\n"
        let result = try Importer.parse(text, format: .greylag, options: ImportOptions(now: now))
        #expect(result.records.count + result.expired == 1)
        #expect(result.manualEntries.isEmpty)
        #expect(result.skipped == [
            ImportProblem(line: 2, reason: "first_seen \(huge) \(range)"),
            ImportProblem(line: 3, reason: "passed_count -1 is negative"),
            ImportProblem(line: 4, reason: "not a JSON object with a type"),
            ImportProblem(line: 5, reason: "not a JSON object with a type"),
            ImportProblem(line: 7, reason: "expires \(huge) \(range)"),
        ])
    }
}
