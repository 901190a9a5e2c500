import ArgumentParser
import Foundation
import GreylagBench
import GreylagCore
import GreylagServer
import GreylagStore

#if canImport(Glibc)
import Glibc
#endif

/// Kill -9 under load, again and again: every state an MTA was told must be
/// in the store afterwards exactly as the engine made it, the counts may lag
/// by no more than the flush interval, and the file must pass SQLite's
/// integrity check. Runs `greylag serve` (this same binary) in a directory
/// of its own, with `store.flush_interval` at 1 s.
///
/// The store stays from one kill to the next, and the check is per triplet
/// over all rounds so far. With a 1 s delay and no client auto-whitelist
/// every decision the engine makes (Engine.decide) adds exactly one to a
/// triplet's counts: a new triplet is stored blocked once; a retry before
/// the delay adds a block; the first retry after it sets passed to 1; each
/// later one adds a pass. Nothing expires within the run. A first sighting
/// and a first pass are states, written before the answer; the other
/// answers only move counts, which wait in memory for the flush. So with D
/// deferrals and P passes answered for a triplet, D' and P' of them answered
/// at least `lagBound` before the kill of their round, and U requests sent
/// whose answer never came (the server may have committed them or not):
///
///     stored at all, with block expiry = first sighting + 1 s, if D + P > 0
///     passed >= 1 if P > 0                 every state told is kept
///     passed = 0 if P + U = 0              no state nobody asked for
///     blocked >= D', passed >= P'          counts lag at most lagBound
///     blocked + passed <= D + P + U        nothing is stored that was not asked
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
            flush_interval = "\(Self.flushSeconds)s"
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

        var seen: [Triplet: Asked] = [:]
        var reported: [Triplet: Shortfall] = [:]
        var totalAnswered = 0, totalDefers = 0, totalPasses = 0, totalLost = 0, totalUnasked = 0
        var integrityFailures = 0
        if StoreTestSwitch.answerBeforeCommit {
            print("crash-test: GREYLAG_TEST_ANSWER_BEFORE_COMMIT=1 (test only): the daemon answers before it commits, "
                  + "answers are expected to be lost")
        }
        if StoreTestSwitch.noTouchFlush {
            print("crash-test: GREYLAG_TEST_NO_TOUCH_FLUSH=1 (test only): the daemon never flushes the counts of "
                  + "retries, counts are expected to be lost")
        }
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
            let killAfter = random(300...4000)
            try await Task.sleep(for: .milliseconds(killAfter))
            let killedAt = DispatchTime.now().uptimeNanoseconds
            kill(daemon.processIdentifier, SIGKILL)
            daemon.waitUntilExit()
            let report = try await load.value

            var defers = 0, passes = 0
            let durableBefore = killedAt &- Self.lagBoundNanoseconds
            for answer in report.transcript {
                let query = GreylistQuery(clientAddress: answer.client, sender: answer.sender, recipient: answer.recipient)
                guard let triplet = engine.triplet(for: query) else { continue }
                let durable = answer.answeredAt < durableBefore ? 1 : 0
                if answer.action.hasPrefix("DEFER") {
                    defers += 1
                    seen[triplet, default: Asked()].defers += 1
                    seen[triplet, default: Asked()].durableDefers += durable
                } else {
                    passes += 1
                    seen[triplet, default: Asked()].passes += 1
                    seen[triplet, default: Asked()].durablePasses += durable
                }
            }
            for request in report.unanswered {
                let query = GreylistQuery(clientAddress: request.client, sender: request.sender, recipient: request.recipient)
                guard let triplet = engine.triplet(for: query) else { continue }
                seen[triplet, default: Asked()].unanswered += 1
            }

            // The file as the killed daemon left it; opening it recovers the WAL.
            let store = try SQLiteStore(path: dir + "/greylag.db")
            let integrity = try await store.integrityCheck()
            var stored: [Triplet: GreylistRecord] = [:]
            var after: Triplet? = nil
            while true {
                let page = try await store.exportRecords(after: after, limit: 5_000)
                for r in page { stored[r.triplet] = r }
                guard let last = page.last else { break }
                after = last.triplet
            }
            try await store.close()

            // Every triplet asked so far, against its stored record; each
            // shortfall is counted once, in the round it is first seen.
            var lost = 0, unasked = 0
            var notes: [String] = []
            for (triplet, asked) in seen {
                let record = stored[triplet]
                let shortfall = asked.check(record)
                let before = reported[triplet] ?? Shortfall()
                guard shortfall.lost > before.lost || shortfall.unasked > before.unasked else { continue }
                lost += max(0, shortfall.lost - before.lost)
                unasked += max(0, shortfall.unasked - before.unasked)
                reported[triplet] = shortfall
                notes.append((shortfall.lost > before.lost ? "lost: " : "unasked: ") + "\(triplet): answered \(asked.defers) deferral(s) and \(asked.passes) pass(es), "
                             + "\(asked.unanswered) unanswered; stored "
                             + (record.map { "blocked \($0.blockedCount), passed \($0.passedCount)" } ?? "nothing"))
            }
            if integrity != "ok" { integrityFailures += 1 }
            totalAnswered += report.transcript.count
            totalDefers += defers
            totalPasses += passes
            totalLost += lost
            totalUnasked += unasked
            print("round \(round): killed after \(killAfter) ms; \(report.transcript.count) answered "
                  + "(\(defers) deferrals, \(passes) passes), \(report.unanswered.count) unanswered; "
                  + "\(lost) lost, \(unasked) unasked; integrity \(integrity)")
            for n in notes.sorted().prefix(5) { print("  \(n)") }
            fflush(nil)
        }
        print("crash-test: \(rounds) kills, \(totalAnswered) answered (\(totalDefers) deferrals, \(totalPasses) passes) "
              + "on \(seen.count) triplets, \(totalLost) lost, \(totalUnasked) unasked, "
              + "\(integrityFailures) integrity failure(s)")
        guard totalLost == 0 && totalUnasked == 0 && integrityFailures == 0 && totalAnswered > 0 else {
            print("crash-test: FAILED; the store and logs are in \(dir)")
            throw ExitCode(1)
        }
        if directory == nil { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// The store's flush interval in the test, and how long after an answer
    /// its counts must be on disk: the interval, and half a second for the
    /// flush's own transaction on a busy machine.
    static let flushSeconds = 1
    static let lagBoundNanoseconds: UInt64 = UInt64(flushSeconds) * 1_000_000_000 + 500_000_000

    /// What the clients asked about one triplet over all rounds.
    struct Asked {
        var defers = 0, passes = 0, unanswered = 0
        /// Answers given at least `lagBoundNanoseconds` before their round's kill.
        var durableDefers = 0, durablePasses = 0

        /// States and counts missing from the stored record, and stored
        /// decisions nobody asked for (see the type's comment).
        func check(_ record: GreylistRecord?) -> Shortfall {
            let blocked = Int(clamping: record?.blockedCount ?? 0)
            let passed = Int(clamping: record?.passedCount ?? 0)
            var lost = max(0, durableDefers - blocked) + max(0, durablePasses - passed)
            if defers + passes > 0 {
                if let r = record {
                    if r.blockExpires != r.firstSeen + 1 { lost += 1 }
                } else {
                    lost += 1
                }
            }
            if passes > 0 && passed == 0 { lost += 1 }
            var unasked = max(0, blocked + passed - (defers + passes + unanswered))
            if passes + unanswered == 0 && passed > 0 { unasked += 1 }
            return Shortfall(lost: lost, unasked: unasked)
        }
    }

    struct Shortfall {
        var lost = 0, unasked = 0
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
