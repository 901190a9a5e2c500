import ArgumentParser
import Foundation
import GreylagCore
import GreylagReplay
import GreylagServer

/// `greylag replay`: a mail trace fed through the engine on a manual clock,
/// per configuration: how much spam-like mail stays blocked and what the
/// delays cost legitimate mail (docs/replay.md).
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a mail trace through the engine: spam blocked and delay to legitimate mail, per configuration.",
        subcommands: [ReplayRun.self, ReplayGenerate.self],
        defaultSubcommand: ReplayRun.self)
}

struct ReplayRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Replay a trace (JSON Lines, docs/replay.md) and print a row per configuration.")

    @Argument(help: "The trace file, or - for standard input.")
    var trace: String

    @Option(name: .customLong("config"), help: "A greylag.toml to replay (repeatable).")
    var configs: [String] = []

    @Option(name: .customLong("profile"),
            help: "A built-in configuration (repeatable): \(ReplayProfiles.names.joined(separator: ", ")), defaults. Without --config or --profile: \(ReplayProfiles.comparison.joined(separator: ", ")).")
    var profiles: [String] = []

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        for p in profiles where p != "defaults" && ReplayProfiles.profile(p) == nil {
            throw ValidationError("--profile \(p): unknown; known: \(ReplayProfiles.names.joined(separator: ", ")), defaults")
        }
    }

    func run() async throws {
        var chosen: [ReplayProfile] = []
        let names = profiles.isEmpty && configs.isEmpty ? ReplayProfiles.comparison : profiles
        for name in names {
            if name == "defaults" {
                chosen.append(try Self.profile(config: nil, name: "defaults"))
            } else if let p = ReplayProfiles.profile(name) {
                chosen.append(p)
            }
        }
        for path in configs { chosen.append(try Self.profile(config: path, name: path)) }
        let messages: [TraceMessage]
        do {
            messages = try Trace.read(path: trace)
        } catch {
            let what = error is TraceError ? "\(error)" : "cannot be read: \(error.localizedDescription)"
            FileHandle.standardError.write(Data("greylag replay: \(trace == "-" ? "standard input" : trace): \(what)\n".utf8))
            throw ExitCode(65)
        }
        let reports = chosen.map { Replayer.run(messages, profile: $0) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(reports), as: UTF8.self))
        } else {
            print(ReplayReport.table(reports), terminator: "")
        }
    }

    /// A configuration file's engine (greylag's defaults, built-in lists
    /// included, without a file).
    static func profile(config path: String?, name: String) throws -> ReplayProfile {
        let config: GreylagConfiguration
        do {
            config = try ConfigurationLoader.load(path: path)
        } catch let error as ConfigurationErrors {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(78)
        }
        // The trace holds each client's listings by zone; the file gives their weights.
        let weights = Dictionary(config.dnsChecks.lists.map { ($0.zone, $0.weight) }, uniquingKeysWith: { a, b in a &+ b })
        return ReplayProfile(name: name, engine: Engine(policy: config.policy, lists: config.lists, dns: config.dns),
                             zoneWeights: weights)
    }
}

struct ReplayGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write the synthetic trace of docs/replay.md: the same seed gives the same trace.")

    @Option(help: "The seed of the pseudo-random sequence.")
    var seed: UInt64 = 1

    @Option(help: "How many messages (1 to 1000000).")
    var messages = 10_000

    @Option(help: "Write the trace here instead of standard output.")
    var out: String?

    func validate() throws {
        guard TraceGenerator.messageRange.contains(messages) else {
            throw ValidationError("--messages must be between 1 and \(TraceGenerator.messageRange.upperBound)")
        }
    }

    func run() throws {
        let handle: FileHandle
        if let out {
            guard FileManager.default.createFile(atPath: out, contents: nil), let h = FileHandle(forWritingAtPath: out) else {
                throw ValidationError("--out \(out): cannot be written")
            }
            handle = h
        } else {
            handle = .standardOutput
        }
        var buffer = Data()
        try TraceGenerator.generate(seed: seed, messages: messages) { m in
            buffer.append(contentsOf: Trace.line(m).utf8)
            buffer.append(UInt8(ascii: "\n"))
            if buffer.count >= 1 << 20 {
                try handle.write(contentsOf: buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        try handle.write(contentsOf: buffer)
        if out != nil { try handle.close() }
    }
}
