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
        let environment = ProcessInfo.processInfo.environment
        let (writer, writerProblem) = Self.logWriter(config, environment: environment)
        LoggingSystem.bootstrap { label in GreylagLogHandler(label: label, level: level, writer: writer) }
        defer {
            writer.flush()
            LogWriter.standardError.flush()
        }
        let logger = Logger(label: "greylag")
        if let writerProblem { logger.error("\(writerProblem)") }
        let notifier = SystemdNotifier.fromEnvironment(environment, logger: logger)
        let daemon = GreylagDaemon(configuration: config, logger: logger, notifier: notifier)
        let group = ServiceGroup(configuration: .init(
            services: [daemon],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            writer.flush()
            LogWriter.standardError.flush()
            throw error
        }
    }

    /// Where the log goes: `log.destination`; on standard error, the
    /// journal's format (`<N>` priorities, no timestamp) when standard error
    /// is the journal. A syslog socket that cannot be set up leaves the log
    /// on standard error, with the reason.
    static func logWriter(_ config: GreylagConfiguration, environment: [String: String]) -> (LogWriter, String?) {
        switch config.logDestination {
        case .stderr:
            return (LogFormat.stderrIsJournal(environment) ? LogWriter(fd: 2, format: .journal) : .standardError, nil)
        case .syslog:
            do {
                return (try LogWriter(syslogSocket: config.syslogSocket, facility: config.syslogFacility), nil)
            } catch {
                return (.standardError, "cannot log to syslog, logging to standard error: \(error)")
            }
        }
    }
}
