import ArgumentParser
import Foundation
import GreylagCore
import GreylagImport
import GreylagServer
import GreylagStore

extension ImportFormat: ExpressibleByArgument {}

/// `greylag import`: the state of the systems greylag replaces, into the
/// configured store.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import greylisting state from postgrey, milter-greylist, greylistd, the qmail MySQL tables or a greylag export.",
        discussion: """
            FORMAT and where its input comes from:
              relaytofrom      the relaytofrom table of relaydelay and the qmail envelope-scanner setups:
                               mysqldump greylisting relaytofrom > relaytofrom.sql, or
                               mysql --batch -e 'SELECT * FROM relaytofrom' greylisting > relaytofrom.tsv
              qmail-spp        the qmail-spp greylisting plugin's greylisting_data and greylisting_lists
                               tables, the same ways (mysqldump --hex-blob keeps binary addresses readable)
              postgrey         db_dump /var/lib/postgrey/postgrey.db (and postgrey_clients.db), with or without -p
              milter-greylist  its dump file, e.g. /var/milter-greylist/greylist.db
              greylag          the output of `greylag export`, from any backend
              greylistd        /var/lib/greylistd/states, with --triplets /var/lib/greylistd/triplets: the states
                               file holds only hashes of the data; the triplets file has the words behind them

            Records are merged into the store: a triplet already there keeps the earliest first sighting, the \
            latest last sighting and the higher counts, so running an import twice changes nothing. Rows that \
            already expired are left out; rows that cannot be read are reported with their line and skipped. \
            Sources without expiries (postgrey, milter-greylist) take them from the configuration's policy \
            timings. A running daemon is told to reload, so imported list entries apply at once.
            """)

    @OptionGroup var options: ConfigOptions
    @Option(name: .shortAndLong, help: "The input format: \(ImportFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: ImportFormat
    @Option(help: "The zone of the MySQL server's DATETIME values, e.g. Europe/Berlin (default UTC).")
    var timeZone: String?
    @Option(help: "greylistd only: its triplets file (/var/lib/greylistd/triplets), the words behind the states file's hashes.")
    var triplets: String?
    @Flag(help: "Read and report only; write nothing.") var dryRun = false
    @Argument(help: "Input files; - reads standard input.") var files: [String]

    func run() async throws {
        let config = try options.load()
        var importOptions = ImportOptions(now: unixNow(), keying: config.policy.keying,
                                          normalizeSender: config.policy.normalizeSender, delay: config.policy.delay,
                                          retryWindow: config.policy.retryWindow, passTTL: config.policy.passTTL)
        if let timeZone {
            guard let zone = TimeZone(identifier: timeZone) else { throw ValidationError("unknown time zone \"\(timeZone)\"") }
            importOptions.timeZone = zone
        }
        if triplets != nil && format != .greylistd { throw ValidationError("--triplets goes with --format greylistd") }
        var tripletBytes: [UInt8]? = nil
        if let triplets {
            guard let data = FileManager.default.contents(atPath: triplets) else {
                FileHandle.standardError.write(Data("greylag: cannot read \(triplets)\n".utf8))
                throw ExitCode(66)  // EX_NOINPUT
            }
            tripletBytes = Array(data)
        }
        var results: [(String, ImportResult, Double)] = []
        for file in files {
            let started = Date()
            let bytes: [UInt8]
            if file == "-" {
                bytes = Array(FileHandle.standardInput.readDataToEndOfFile())
            } else {
                guard let data = FileManager.default.contents(atPath: file) else {
                    FileHandle.standardError.write(Data("greylag: cannot read \(file)\n".utf8))
                    throw ExitCode(66)  // EX_NOINPUT
                }
                bytes = Array(data)
            }
            do {
                let result: ImportResult
                if format == .greylistd {
                    result = try Importer.parseGreylistd(states: bytes, triplets: tripletBytes, tripletsName: triplets,
                                                         options: importOptions)
                } else {
                    result = try Importer.parse(bytes: bytes, format: format, options: importOptions)
                }
                for problem in result.skipped {
                    FileHandle.standardError.write(Data("\(problem.file ?? file):\(problem.line): skipped: \(problem.reason)\n".utf8))
                }
                if result.unmapped > 0 {
                    FileHandle.standardError.write(Data(("\(file): \(result.unmapped) entries are known only by their hash "
                        + (triplets == nil ? "(no --triplets file given)" : "(not in \(triplets!))")
                        + " and cannot become greylag triplets: those senders are greylisted once more\n").utf8))
                }
                results.append((file, result, Date().timeIntervalSince(started)))
            } catch {
                FileHandle.standardError.write(Data("\(file):\(error.line): not \(format.rawValue) input: \(error.message)\n".utf8))
                throw ExitCode(65)  // EX_DATAERR
            }
        }
        if dryRun {
            for (file, r, seconds) in results { print(Self.summary(file, r, seconds: seconds, verb: "read")) }
            return
        }
        let store = try await GreylagDaemon.openStore(config, loop: nil)
        do {
            for (file, r, parseSeconds) in results {
                let started = Date()
                try await store.importState(records: r.records, clients: r.clients)
                for entry in r.manualEntries { _ = try await store.addManualEntry(entry) }
                print(Self.summary(file, r, seconds: parseSeconds + Date().timeIntervalSince(started), verb: "imported")
                      + " into \(config.backendDescription)")
            }
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
        if results.contains(where: { !$0.1.manualEntries.isEmpty }), let socket = config.adminSocketPath,
           let reply = try? await AdminClient.request(AdminRequest(command: .reload), socket: socket) {
            print(reply.ok ? "the running greylag reloaded: imported list entries are in force"
                           : "the running greylag did not reload: \(reply.error ?? "")")
        }
    }

    static func summary(_ file: String, _ r: ImportResult, seconds: Double, verb: String) -> String {
        let passed = r.records.filter(\.hasPassed).count
        let white = r.manualEntries.filter { $0.list == .whitelist }.count
        return "\(file): \(verb) \(r.records.count) triplets (\(passed) passed, \(r.records.count - passed) pending), "
            + "\(r.clients.count) client networks, \(white) whitelist and \(r.manualEntries.count - white) blacklist entries; "
            + "\(r.skipped.count) rows skipped, \(r.expired) expired, in \(String(format: "%.2f", seconds)) s"
    }
}

/// `greylag export`: the whole store as greylag JSON Lines, to move between
/// backends (`greylag import --format greylag`) or keep as a backup.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the store's triplets, client networks and manual entries as greylag JSON Lines.",
        discussion: """
            Expired rows are included; an import leaves them out. To move from SQLite to PostgreSQL:
              greylag export -c sqlite.toml -o state.jsonl
              greylag import -c postgresql.toml --format greylag state.jsonl
            """)

    @OptionGroup var options: ConfigOptions
    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?

    static let page = 2_000

    func run() async throws {
        let config = try options.load()
        let sink: FileHandle
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: nil, attributes: [.posixPermissions: 0o600]),
                  let handle = FileHandle(forWritingAtPath: output) else {
                FileHandle.standardError.write(Data("greylag: cannot write \(output)\n".utf8))
                throw ExitCode(73)  // EX_CANTCREAT
            }
            sink = handle
        } else {
            sink = FileHandle.standardOutput
        }
        let store = try await GreylagDaemon.openStore(config, loop: nil)
        var counts = (records: 0, clients: 0, manual: 0)
        do {
            func write(_ lines: [String]) {
                guard !lines.isEmpty else { return }
                sink.write(Data((lines.joined(separator: "\n") + "\n").utf8))
            }
            write([GreylagExport.header(exportedAt: unixNow(), keying: config.policy.keying)])
            try await store.exportAll(page: Self.page, records: { page in
                write(page.map(GreylagExport.line))
                counts.records += page.count
            }, clients: { page in
                write(page.map(GreylagExport.line))
                counts.clients += page.count
            })
            let manual = try await store.manualEntries()
            write(manual.map(GreylagExport.line))
            counts.manual = manual.count
            try await store.close()
        } catch {
            try? await store.close()
            throw error
        }
        if output != nil { try sink.close() }
        FileHandle.standardError.write(Data(("exported \(counts.records) triplets, \(counts.clients) client networks "
                                             + "and \(counts.manual) manual entries from \(config.backendDescription)\n").utf8))
    }
}
