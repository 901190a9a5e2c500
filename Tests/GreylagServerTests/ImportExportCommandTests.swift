import Foundation
import GreylagCore
import GreylagServer
import Testing

/// `greylag import` and `greylag export` with the real binary: a
/// milter-greylist dump into SQLite, then SQLite → PostgreSQL → MariaDB (the
/// servers the test script runs) through greylag's export format, and the
/// same state out of each.
@Suite(.serialized, .enabled(if: E2E.enabled)) struct ImportExportCommandTests {
    /// A `[store]` section for a backend.
    static func storeSection(_ backend: GreylagConfiguration.Backend, sqlite: String) -> String {
        switch backend {
        case .sqlite:
            return "[store]\npath = \"\(sqlite)\""
        case .postgresql(let s):
            return "[store]\nbackend = \"postgresql\"\nhost = \"\(s.host)\"\nport = \(s.port)\nuser = \"\(s.user)\"\n"
                + "password = \"\(s.password ?? "")\"\ndatabase = \"\(s.database)\"\npath = \"\(sqlite)\""
        case .mysql(let s):
            return "[store]\nbackend = \"mysql\"\nhost = \"\(s.host)\"\nport = \(s.port)\nuser = \"\(s.user)\"\n"
                + "password = \"\(s.password ?? "")\"\ndatabase = \"\(s.database)\"\npath = \"\(sqlite)\""
        }
    }

    /// The body lines of an export (the header carries the time of export).
    static func body(_ path: String) throws -> [String] {
        Array(try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").dropFirst().map(String.init))
    }

    @Test func importsASeedDumpAndMovesItBetweenBackends() async throws {
        let binary = try E2E.value("GREYLAG_BINARY")
        let dir = TemporaryDirectory()
        let now = Int64(Date().timeIntervalSince1970)
        // milter-greylist's dump format: greylisted tuples carry the time they
        // will be accepted, auto-whitelisted ones the time they expire.
        let dump = dir.path + "/greylist.db"
        try """
            # milter-greylist databases, dumped by milter-greylist-4.6.4
            192.0.2.10\t<alice@example.org>\t<bob@example.net>\t\(now + 200) # soon
            2001:db8:1:2::25\t<>\t<postmaster@example.net>\t\(now + 100)
            192.0.2.99\t<carol@example.com>\t<dave@example.net>\t\(now + 86_400) AUTO
            198.51.100.7\t<old@example.com>\t<erin@example.net>\t\(now - 10) AUTO
            192.0.2.11\t<broken@example.org>\t<bob@example.net>\tsoon
            """.write(toFile: dump, atomically: true, encoding: .utf8)
        let sqliteConfig = dir.path + "/sqlite.toml"
        try Self.storeSection(.sqlite, sqlite: dir.path + "/a.db").write(toFile: sqliteConfig, atomically: true, encoding: .utf8)

        let dry = try await runProgram(binary, ["import", "-c", sqliteConfig, "--format", "milter-greylist", "--dry-run", dump])
        #expect(dry.status == 0 && dry.output.contains("\(dump): read 3 triplets (1 passed, 2 pending)"), "\(dry.output)")
        let imported = try await runProgram(binary, ["import", "-c", sqliteConfig, "--format", "milter-greylist", dump])
        #expect(imported.status == 0, "\(imported.output)")
        #expect(imported.output.contains("\(dump):6: skipped: "), "\(imported.output)")
        #expect(imported.output.contains("\(dump): imported 3 triplets (1 passed, 2 pending), 1 client networks, "
                                         + "0 whitelist and 0 blacklist entries; 1 rows skipped, 1 expired"), "\(imported.output)")
        let list = try await runProgram(binary, ["list", "-c", sqliteConfig])
        #expect(list.output.contains("192.0.2.0/24\talice@example.org\tbob@example.net\tpending"), "\(list.output)")
        #expect(list.output.contains("2001:db8:1:2::/64\t<>\tpostmaster@example.net\tpending"), "\(list.output)")
        #expect(list.output.contains("192.0.2.0/24\tcarol@example.com\tdave@example.net\tpassed"), "\(list.output)")

        // Importing again changes nothing.
        _ = try await runProgram(binary, ["import", "-c", sqliteConfig, "--format", "milter-greylist", dump])
        let first = dir.path + "/sqlite.jsonl"
        let export = try await runProgram(binary, ["export", "-c", sqliteConfig, "-o", first])
        #expect(export.status == 0 && export.output.contains("exported 3 triplets, 1 client networks and 0 manual entries"),
                "\(export.output)")
        let lines = try Self.body(first)
        #expect(lines.count == 4)

        // Through every server backend the test script runs, and back out
        // unchanged; one whose setting is missing fails (the suite runs only
        // under GREYLAG_E2E=1).
        var previous = first
        for server in SharedServer.allCases {
            previous = try await server.withDatabase { [previous] backend in
                let config = dir.path + "/\(server.rawValue).toml"
                try Self.storeSection(backend, sqlite: dir.path + "/unused.db")
                    .write(toFile: config, atomically: true, encoding: .utf8)
                let into = try await runProgram(binary, ["import", "-c", config, "--format", "greylag", previous])
                #expect(into.status == 0 && into.output.contains("imported 3 triplets"), "\(server): \(into.output)")
                let out = dir.path + "/\(server.rawValue).jsonl"
                let export = try await runProgram(binary, ["export", "-c", config, "-o", out])
                #expect(export.status == 0, "\(server): \(export.output)")
                // Each store lists in its own order (SQLite by its key hash).
                #expect(try Self.body(out).sorted() == lines.sorted(), "\(server)")
                return out
            }
        }

        // Not the format at all: the file and line, and EX_DATAERR.
        let wrong = try await runProgram(binary, ["import", "-c", sqliteConfig, "--format", "postgrey", dump])
        #expect(wrong.status == 65 && wrong.output.contains("\(dump):1: not postgrey input: "), "\(wrong.output)")
    }
}
