import Foundation
import Testing

/// Kill -9 under load: `greylag crash-test` (the same command
/// `scripts/crash-test.sh` runs) kills the real daemon 20 times at random
/// moments and checks after each kill, per triplet over all rounds, that
/// the stored blocked and passed counts hold every deferral and pass the
/// clients were answered (and no more than they asked), and that the file
/// passes SQLite's integrity check. Runs the binary `scripts/test.sh` built
/// (GREYLAG_BINARY).
@Suite(.serialized, .enabled(if: E2E.enabled)) struct CrashSafetyTests {
    @Test func answeredDecisionsSurviveTwentyKills() async throws {
        let binary = try E2E.value("GREYLAG_BINARY")
        let dir = TemporaryDirectory()
        let run = try await runProgram(binary, ["crash-test", "--rounds", "20", "--directory", dir.path + "/crash"],
                                       timeout: 600)
        #expect(run.status == 0, "\(run.output)")
        let rounds = run.output.split(separator: "\n").filter { $0.hasPrefix("round ") }
        #expect(rounds.count == 20, "\(run.output)")
        // Every round answered something before its kill, and lost nothing.
        for line in rounds {
            #expect(line.contains("; 0 lost, 0 unasked; integrity ok"), "\(line)")
            #expect(!line.contains("; 0 answered"), "\(line)")
        }
        let summary = try #require(run.output.split(separator: "\n").last { $0.hasPrefix("crash-test: 20 kills") })
        #expect(summary.hasSuffix(", 0 lost, 0 unasked, 0 integrity failure(s)"), "\(run.output)")
        // Both kinds of answers were checked.
        #expect(!summary.contains("(0 deferrals") && !summary.contains(", 0 passes)"), "\(summary)")
    }

    /// Runs `greylag crash-test` with a test-only switch that breaks a
    /// guarantee on purpose; checks that the daemon said so in its log and
    /// that the run failed, and returns its output and its "lost" lines.
    func brokenRun(switch name: String, rounds: Int) async throws -> (output: String, lostLines: [Substring]) {
        let binary = try E2E.value("GREYLAG_BINARY")
        let dir = TemporaryDirectory()
        let run = try await runProgram(binary, ["crash-test", "--rounds", "\(rounds)", "--directory", dir.path + "/crash"],
                                       timeout: 300, environment: [name: "1"])
        #expect(run.status == 1, "\(run.output)")
        let log = try String(contentsOfFile: dir.path + "/crash/daemon-1.log", encoding: .utf8)
        #expect(log.contains("\(name)=1: TEST ONLY"), "\(log)")
        #expect(run.output.contains("crash-test: FAILED"), "\(run.output)")
        let lostLines = run.output.split(separator: "\n").filter { $0.hasPrefix("  lost: ") }
        #expect(!lostLines.isEmpty, "\(run.output)")
        return (run.output, lostLines)
    }

    /// The counts of retries wait in memory; the check of the bound must see
    /// them lost when the flush never runs (states are still kept).
    @Test func countsThatAreNeverFlushedAreReportedLost() async throws {
        let (output, lostLines) = try await brokenRun(switch: "GREYLAG_TEST_NO_TOUCH_FLUSH", rounds: 4)
        // A record is there for every triplet: only counts went missing.
        #expect(!lostLines.contains { $0.hasSuffix("stored nothing") }, "\(output)")
    }

    /// The check can fail: with the test-only switch the daemon answers each
    /// group before committing it (and holds the commit), so the kills lose
    /// answered decisions, and the same command must say so and exit 1.
    @Test func answersSentBeforeTheCommitAreReportedLost() async throws {
        let (output, lostLines) = try await brokenRun(switch: "GREYLAG_TEST_ANSWER_BEFORE_COMMIT", rounds: 3)
        let summary = try #require(output.split(separator: "\n").last { $0.hasPrefix("crash-test: 3 kills") },
                                   "\(output)")
        let beforeLost = try #require(summary.range(of: " lost, ").map { summary[..<$0.lowerBound] }, "\(summary)")
        let lost = try #require(Int(beforeLost.split(separator: " ").last ?? ""), "\(summary)")
        #expect(lost > 0, "\(output)")
        // A lost retry is seen too, not only a triplet missing altogether:
        // the stored record has fewer blocks or passes than were answered.
        // (Half the requests are retries; a dozen losses all of new triplets
        // would be a one-in-thousands draw.)
        #expect(lostLines.contains { !$0.hasSuffix("stored nothing") }, "\(output)")
        // Answered too early, not invented: what was stored was asked for,
        // and the file is sound.
        #expect(summary.hasSuffix(", 0 unasked, 0 integrity failure(s)"), "\(summary)")
    }
}
