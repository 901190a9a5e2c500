import ArgumentParser
import Foundation
import GreylagBench
import GreylagCore
import GreylagServer
import GreylagStore

#if canImport(Glibc)
import Glibc
#endif

/// Kill -9 under load, again and again: every answered deferral and pass
/// must be in the store afterwards, and the file must pass SQLite's
/// integrity check. Runs `greylag serve` (this same binary) in a directory
/// of its own.
struct CrashTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash-test",
        abstract: "Kill the daemon with SIGKILL under load, repeatedly, and check that nothing answered was lost.")

    @Option(help: "How many times to kill the daemon.")
    var rounds = 20
    @Option(help: "Persistent load-generator connections.")
    var connections = 8
    @Option(help: "Share of requests with a brand-new triplet, 0 to 1; the rest retry earlier ones and pass once the 1 s delay is over.")
    var newShare = 0.5
    @Option(help: "Working directory (store, configuration, logs); a new temporary one by default, removed after a clean run.")
    var directory: String?
    @Option(help: "Seed of the random kill moments and workloads.")
    var seed: UInt64 = 1

    func validate() throws {
        guard rounds > 0 else { throw ValidationError("--rounds must be at least 1") }
        guard connections > 0 else { throw ValidationError("--connections must be at least 1") }
        guard (0...1).contains(newShare) else { throw ValidationError("--new-share must be between 0 and 1") }
    }

    func run() async throws {
        let dir = directory ?? NSTemporaryDirectory() + "greylag-crash-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let port = try BlockingSocket.freeLoopbackPort()
        let configPath = dir + "/greylag.toml"
        // A 1 s delay so that retries pass during the run; no client
        // auto-whitelist, so that every pass is written to its triplet.
        try """
            [greylist]
            delay = "1s"
            client_autowhitelist = 0
            [policy]
            listen = ["127.0.0.1:\(port)"]
            [milter]
            listen = []
            [http]
            listen = "none"
            [admin]
            socket = "none"
            [store]
            path = "\(dir)/greylag.db"
            [log]
            level = "warning"
            """.write(toFile: configPath, atomically: true, encoding: .utf8)
        let config = try ConfigurationLoader.load(path: configPath)
        let engine = Engine(policy: config.policy)
        let binary = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")

        var state = seed | 1
        func random(_ range: ClosedRange<Int>) -> Int {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return range.lowerBound + Int(state % UInt64(range.count))
        }

        var totalAnswered = 0, totalDefers = 0, totalPasses = 0, totalLost = 0
        var integrityFailures = 0
        for round in 1...rounds {
            let daemon = try Self.start(binary, config: configPath, log: dir + "/daemon-\(round).log")
            try await Self.waitForPort(port, daemon: daemon)
            var options = PolicyLoadGenerator.Options()
            options.port = port
            options.connections = connections
            options.newShare = newShare
            options.warmup = 0
            options.duration = 10
            options.seed = seed &* 7919 &+ UInt64(round)
            let load = Task { try await PolicyLoadGenerator(options: options).run(keepTranscript: true) }
            let killAfter = random(300...2500)
            try await Task.sleep(for: .milliseconds(killAfter))
            kill(daemon.processIdentifier, SIGKILL)
            daemon.waitUntilExit()
            let report = try await load.value

            // The file as the killed daemon left it; opening it recovers the WAL.
            let store = try SQLiteStore(path: dir + "/greylag.db")
            let integrity = try await store.integrityCheck()
            var defers = 0, passes = 0, lost: [String] = []
            for answer in report.transcript {
                let query = GreylistQuery(clientAddress: answer.client, sender: answer.sender, recipient: answer.recipient)
                guard let triplet = engine.triplet(for: query) else { continue }
                let record = try await store.record(for: triplet)
                let isDefer = answer.action.hasPrefix("DEFER")
                if isDefer { defers += 1 } else { passes += 1 }
                if record == nil || (isDefer && record!.blockedCount < 1) || (!isDefer && record!.passedCount < 1) {
                    lost.append("\(triplet) answered \(answer.action.prefix { $0 != " " })")
                }
            }
            try await store.close()
            if integrity != "ok" { integrityFailures += 1 }
            totalAnswered += report.transcript.count
            totalDefers += defers
            totalPasses += passes
            totalLost += lost.count
            print("round \(round): killed after \(killAfter) ms; \(report.transcript.count) answered "
                  + "(\(defers) deferrals, \(passes) passes); \(lost.count) lost; integrity \(integrity)")
            for l in lost.prefix(5) { print("  lost: \(l)") }
            fflush(nil)
        }
        print("crash-test: \(rounds) kills, \(totalAnswered) answered (\(totalDefers) deferrals, \(totalPasses) passes), "
              + "\(totalLost) lost, \(integrityFailures) integrity failure(s)")
        guard totalLost == 0 && integrityFailures == 0 && totalAnswered > 0 else {
            print("crash-test: FAILED; the store and logs are in \(dir)")
            throw ExitCode(1)
        }
        if directory == nil { try? FileManager.default.removeItem(atPath: dir) }
    }

    static func start(_ binary: String, config: String, log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--config", config]
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    static func waitForPort(_ port: Int, daemon: Process) async throws {
        for _ in 0..<400 {
            if let fd = try? BlockingSocket.connectIPv4("127.0.0.1", port) {
                close(fd)
                return
            }
            guard daemon.isRunning else { throw ValidationError("the daemon exited at start; see its log") }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw ValidationError("the daemon did not listen on port \(port) within 10 s")
    }
}
