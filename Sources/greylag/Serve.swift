import ArgumentParser
import Foundation
import GreylagServer
import Logging
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon (the default command).")

    @OptionGroup var options: ConfigOptions

    @Option(help: "Override the log level (trace, debug, info, notice, warning, error, critical).")
    var logLevel: String?

    func run() async throws {
        var config = try options.load(errorHeading: "greylag: configuration refused:")
        if let logLevel {
            guard let level = Logger.Level(rawValue: logLevel.lowercased()) else {
                throw ValidationError("unknown log level \(logLevel)")
            }
            config.logLevel = level
        }
        let level = config.logLevel
        LoggingSystem.bootstrap { label in GreylagLogHandler(label: label, level: level) }
        defer { LogWriter.standardError.flush() }
        let logger = Logger(label: "greylag")
        let daemon = GreylagDaemon(configuration: config, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [daemon],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            LogWriter.standardError.flush()
            throw error
        }
    }
}
