import ArgumentParser
import Foundation
import GreylagServer

/// `greylag reference`: the configuration reference written from the
/// registry of keys, for the docs, the man page and the packaged conffile.
/// Hidden from `--help`: it serves the build, not the postmaster.
struct Reference: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reference",
        abstract: "Print the configuration reference: Markdown, the greylag.toml(5) man page or a commented greylag.toml.",
        shouldDisplay: false)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case markdown, man, conffile
    }

    @Option(help: "markdown, man or conffile.")
    var format: Format = .markdown

    @Option(help: "With --format markdown: print only this section's key table (greylist, policy, lists, ...).")
    var section: String?

    @Option(name: .customLong("set"), help: "With --format conffile: TABLE.KEY=TOMLVALUE, an active line instead of the commented default (repeatable).")
    var settings: [String] = []

    func validate() throws {
        if section != nil && format != .markdown { throw ValidationError("--section goes with --format markdown") }
        if !settings.isEmpty && format != .conffile { throw ValidationError("--set goes with --format conffile") }
    }

    func run() throws {
        do {
            switch format {
            case .markdown: print(try ConfigurationReference.markdown(section: section), terminator: "")
            case .man: print(ConfigurationReference.manPage(), terminator: "")
            case .conffile:
                print(ConfigurationReference.conffile(set: try ConfigurationReference.settings(settings)), terminator: "")
            }
        } catch let error as ReferenceError {
            FileHandle.standardError.write(Data("greylag reference: \(error)\n".utf8))
            throw ExitCode(64)
        }
    }
}
