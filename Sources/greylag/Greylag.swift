import ArgumentParser
import Foundation
import GreylagCore
import GreylagServer
import GreylagStore
import QmailGate

/// The entry point: the qmail helpers, which run once per recipient or
/// connection, and the OpenSMTPD filter are dispatched before anything else starts.
@main
enum Main {
    static func main() async {
        if let status = QmailEntry.run(CommandLine.arguments) { exit(status) }
        if let status = SmtpdFilterEntry.run(CommandLine.arguments) { exit(status) }
        // Before anything opens a database. GREYLAG_SQLITE_PAGE_CACHE=plain keeps
        // SQLite's own, for comparisons (scripts/bench-scale.sh).
        if ProcessInfo.processInfo.environment["GREYLAG_SQLITE_PAGE_CACHE"] != "plain" { SQLitePageCache.install() }
        await Greylag.main()
    }
}

struct Greylag: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "greylag",
        abstract: "A greylisting daemon for Postfix and other MTAs.",
        version: GreylagVersion.string,
        subcommands: [Serve.self, CheckConfig.self, WhitelistCommand.self, BlacklistCommand.self, ListRecords.self,
                      DeleteRecords.self, ReleaseRecords.self, Stats.self, Reload.self, ImportCommand.self, ExportCommand.self, MigrateCommand.self, Bench.self, BenchLists.self, BenchResponder.self, BenchStore.self, BenchFill.self, BenchMilter.self, ReplayCommand.self, CrashTest.self, Reference.self],
        defaultSubcommand: Serve.self)
}

/// Options shared by the commands that read the configuration.
struct ConfigOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "TOML configuration file (defaults apply without one).")
    var config: String?

    /// The configuration in force; on errors prints each (file:line: key:
    /// message) to standard error and exits with EX_CONFIG (78).
    func load(errorHeading: String? = nil) throws -> GreylagConfiguration {
        do {
            return try ConfigurationLoader.load(path: config)
        } catch let error as ConfigurationErrors {
            let heading = errorHeading.map { "\($0)\n" } ?? ""
            FileHandle.standardError.write(Data("\(heading)\(error)\n".utf8))
            throw ExitCode(78)
        }
    }
}
