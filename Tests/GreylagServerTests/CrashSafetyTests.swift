import Foundation
import GreylagBench
import GreylagCore
import GreylagStore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Kill -9 under load: every triplet whose query was answered must still be
/// in the store after a restart, and the file must pass SQLite's integrity
/// check. Runs the real `greylag` binary (GREYLAG_BINARY, set by
/// `scripts/test.sh`).
@Suite(.serialized, .enabled(if: E2E.enabled)) struct CrashSafetyTests {
    @Test func answeredDecisionsSurviveKillMinus9() async throws {
        let binary = try E2E.value("GREYLAG_BINARY")
        let dir = TemporaryDirectory()
        let port = try freePort()
        let config = dir.path + "/greylag.toml"
        try """
            [policy]
            listen = ["127.0.0.1:\(port)"]
            [milter]
            listen = []
            [http]
            listen = "none"
            [store]
            path = "\(dir.path)/greylag.db"
            [log]
            level = "warning"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        var answered: [PolicyLoadGenerator.AnsweredRequest] = []
        for round in 0..<3 {
            let daemon = try startDaemon(binary, config: config, log: dir.path + "/daemon-\(round).log")
            try await waitForPort(port)
            var options = PolicyLoadGenerator.Options()
            options.port = port
            options.connections = 8
            options.newShare = 0.9
            options.warmup = 0
            options.duration = 5
            options.seed = UInt64(round + 1) * 7919
            let load = Task { try await PolicyLoadGenerator(options: options).run(keepTranscript: true) }
            try await Task.sleep(for: .milliseconds(Int64.random(in: 300...1200)))
            kill(daemon.processIdentifier, SIGKILL)
            daemon.waitUntilExit()
            let report = try await load.value
            #expect(!report.transcript.isEmpty, "round \(round): nothing was answered before the kill")
            answered += report.transcript
        }
        // A restart recovers the WAL; then check every answer against the file.
        let daemon = try startDaemon(binary, config: config, log: dir.path + "/daemon-final.log")
        try await waitForPort(port)
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
        #expect(daemon.terminationStatus == 0)

        let store = try SQLiteStore(path: dir.path + "/greylag.db")
        #expect(try await store.integrityCheck() == "ok")
        let engine = Engine()
        var missing: [String] = []
        for answer in answered {
            let query = GreylistQuery(clientAddress: answer.client, sender: answer.sender, recipient: answer.recipient)
            let triplet = try #require(engine.triplet(for: query))
            let record = try await store.record(for: triplet)
            if record == nil || (answer.action.hasPrefix("DEFER") && record!.blockedCount < 1) {
                missing.append("\(triplet) (\(answer.action))")
            }
        }
        #expect(missing.isEmpty, "\(missing.count) of \(answered.count) answered triplets lost: \(missing.prefix(5))")
        #expect(answered.count > 100)
        try await store.close()
    }
}
