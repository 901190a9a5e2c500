import Foundation
import Testing

/// Kill -9 under load: `greylag crash-test` (the same command
/// `scripts/crash-test.sh` runs) kills the real daemon 20 times at random
/// moments and checks after each kill that every answered deferral and pass
/// is in the store and that the file passes SQLite's integrity check. Runs
/// the binary `scripts/test.sh` built (GREYLAG_BINARY).
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
            #expect(line.contains("; 0 lost; integrity ok"), "\(line)")
            #expect(!line.contains("; 0 answered"), "\(line)")
        }
        #expect(run.output.contains(", 0 lost, 0 integrity failure(s)"), "\(run.output)")
        // Both kinds of answers were checked.
        let summary = try #require(run.output.split(separator: "\n").last { $0.hasPrefix("crash-test: 20 kills") })
        #expect(!summary.contains("(0 deferrals") && !summary.contains(", 0 passes)"), "\(summary)")
    }
}
