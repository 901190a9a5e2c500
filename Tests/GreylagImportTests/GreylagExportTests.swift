import Foundation
import GreylagCore
import Testing
@testable import GreylagImport

@Suite struct GreylagExportTests {
    @Test func linesAreSnakeCaseJSONWithTypeFirst() {
        #expect(GreylagExport.header(exportedAt: 1_700_000_000)
                == #"{"type":"greylag-export","version":1,"exported_at":1700000000,"ipv4_prefix":24,"ipv6_prefix":64}"#)
        let r = record("192.0.2.0/24", "alice@example.org", "bob@example.net", first: 1, last: 2, block: 301,
                       expires: 3_110_402, blocked: 1, passed: 2)
        #expect(GreylagExport.line(r) == #"{"type":"record","network":"192.0.2.0/24","sender":"alice@example.org","#
                + #""recipient":"bob@example.net","first_seen":1,"last_seen":2,"block_expires":301,"#
                + #""record_expires":3110402,"blocked_count":1,"passed_count":2,"origin":"AUTO"}"#)
        let c = ClientRecord(network: "2001:db8::/64", passedTriplets: 5, firstSeen: 10, lastSeen: 20, recordExpires: 30)
        #expect(GreylagExport.line(c) == #"{"type":"client","network":"2001:db8::/64","passed_triplets":5,"#
                + #""first_seen":10,"last_seen":20,"record_expires":30}"#)
        let m = ManualEntry(id: 3, list: .blacklist, field: .senderDomain, value: "spam.example",
                            comment: "say \"no\"\n\u{1}", created: 100)
        #expect(GreylagExport.line(m) == #"{"type":"manual","id":3,"list":"blacklist","field":"sender_domain","#
                + #""value":"spam.example","comment":"say \"no\"\n\u0001","created":100,"expires":null}"#)
    }

    @Test func decodesTheFixture() throws {
        let result = try Importer.parse(try Fixture.text("greylag-export.jsonl"), format: .greylag,
                                        options: ImportOptions(now: 1_700_000_000))
        #expect(result.records == [
            record("192.0.2.0/24", "alice@example.org", "bob@example.net", first: 1_699_990_000, last: 1_699_999_000,
                   block: 1_699_990_300, expires: 1_703_109_000, blocked: 1, passed: 3),
            record("2001:db8::/64", "<>", "postmaster@example.net", first: 1_699_999_500, last: 1_699_999_500,
                   block: 1_699_999_800, expires: 1_700_172_300, blocked: 1, passed: 0, origin: .manual),
        ])
        #expect(result.clients == [
            ClientRecord(network: "192.0.2.0/24", passedTriplets: 1, firstSeen: 1_699_990_000, lastSeen: 1_699_999_000,
                         recordExpires: 1_703_109_000),
        ])
        #expect(result.manualEntries == [
            ManualEntry(id: 7, list: .blacklist, field: .senderDomain, value: "spam.example",
                        comment: "seen in \"abuse\" reports\tand more", created: 1_699_000_000),
            ManualEntry(id: 8, list: .whitelist, field: .client, value: "198.51.100.0/24", comment: "",
                        created: 1_699_000_100, expires: 1_709_000_000),
        ])
        #expect(result.skipped == [
            ImportProblem(line: 7, reason: "origin is missing"),
            ImportProblem(line: 8, reason: "unknown type tuple"),
            ImportProblem(line: 9, reason: "not a JSON object with a type"),
        ])
    }

    @Test func roundTripIsExact() throws {
        // Everything the relaytofrom fixture gives, plus awkward strings.
        let now: Int64 = 1_163_592_000
        var source = try Importer.parse(try Fixture.text("relaytofrom.sql"), format: .relaytofrom,
                                        options: ImportOptions(now: now))
        source.records.append(record("198.51.100.0/24", "tab\there@ex\u{e4}mple.com", "line\nbreak\\@example.net",
                                     first: -5, last: Int64(Int32.max) + 1, block: 0, expires: 253_402_300_799,
                                     blocked: 0, passed: Int64.max, origin: .manual))
        source.manualEntries.append(ManualEntry(id: 42, list: .whitelist, field: .helo, value: "mx.example.com",
                                                comment: "\u{0}\u{1f}\"\\/ \u{2028}", created: 7, expires: 8_000_000_000))
        let text = GreylagExport.encode(records: source.records, clients: source.clients,
                                        manualEntries: source.manualEntries, exportedAt: now)
        #expect(text.hasSuffix("\n"))
        #expect(text.split(separator: "\n").count == 1 + source.records.count + source.clients.count
                + source.manualEntries.count)
        let back = try Importer.parse(text, format: .greylag, options: ImportOptions(now: now))
        #expect(back.records == source.records)
        #expect(back.clients == source.clients)
        #expect(back.manualEntries == source.manualEntries)
        #expect(back.skipped.isEmpty && back.expired == 0)
    }

    @Test func emptyExportKeepsNoClients() throws {
        // An export is authoritative: no client lines means none, even with passed records.
        let r = record("192.0.2.0/24", "a@example.org", "b@example.net", first: 1, last: 400, block: 301,
                       expires: 5_000_000, blocked: 1, passed: 1)
        let text = GreylagExport.encode(records: [r], clients: [], manualEntries: [], exportedAt: 500)
        let back = try Importer.parse(text, format: .greylag, options: ImportOptions(now: 500))
        #expect(back.records == [r])
        #expect(back.clients.isEmpty)
    }

    @Test func headerIsRequired() throws {
        #expect(throws: ImportError(line: 1, "not a greylag export: the first line is not a JSON object with a type")) {
            try Importer.parse(try Fixture.text("not-a-dump.txt"), format: .greylag, options: ImportOptions(now: 0))
        }
        #expect(throws: ImportError(line: 1, "not a greylag export: the first line must be the greylag-export header")) {
            try Importer.parse(#"{"type":"record"}"#, format: .greylag, options: ImportOptions(now: 0))
        }
        #expect(throws: ImportError(line: 2, "greylag export version 2 is not supported (this reads version 1)")) {
            try Importer.parse("\n" + #"{"type":"greylag-export","version":2}"#, format: .greylag,
                               options: ImportOptions(now: 0))
        }
        #expect(throws: ImportError(line: 1, "empty input: expected a greylag export")) {
            try Importer.parse("", format: .greylag, options: ImportOptions(now: 0))
        }
    }
}
