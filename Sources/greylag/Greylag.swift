import ArgumentParser
import GreylagCore
import GreylagServer

@main
struct Greylag: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "greylag",
        abstract: "A greylisting daemon for Postfix and other MTAs.",
        version: GreylagVersion.string,
        subcommands: [Serve.self, CheckConfig.self, Bench.self, BenchResponder.self],
        defaultSubcommand: Serve.self)
}

/// Options shared by the commands that read the configuration.
struct ConfigOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "TOML configuration file (defaults apply without one).")
    var config: String?
}
