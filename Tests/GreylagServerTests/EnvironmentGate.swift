import Foundation
import GreylagBench
import GreylagTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Settings for the tests that need real peers, passed by `scripts/test.sh`
/// after it has started them. Without `GREYLAG_E2E=1` those tests are
/// skipped; with it, a missing setting is a failure, not a skip. The
/// database servers' settings go through `TestServer` and `TestGate`
/// (GreylagTestSupport), which the conformance suite shares.
enum E2E {
    static let environment = ProcessInfo.processInfo.environment
    static var enabled: Bool { TestGate.e2e }

    static func value(_ name: String) throws -> String {
        guard let v = environment[name], !v.isEmpty else {
            throw TestFailure("\(name) is not set; run the suite through scripts/test.sh")
        }
        return v
    }
}

/// Runs a program and returns its exit status and standard output and
/// error; `environment` is added to the test process's own.
func runProgram(_ path: String, _ arguments: [String], timeout: Double = 60,
                environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
    try await PolicyTestClient.offPool {
        try runMerged(path, arguments,
                      environment: environment.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(environment) { $1 })
    }
}

/// Starts the real `greylag serve --config CONFIG`, its output going to `log`.
func startDaemon(_ binary: String, config: String, log: String) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["serve", "--config", config]
    guard FileManager.default.createFile(atPath: log, contents: nil) else {
        throw TestFailure("cannot create the daemon's log \(log)")
    }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    process.standardOutput = handle
    process.standardError = handle
    try spawn(process)
    return process
}

func waitForPort(_ port: Int) async throws {
    for _ in 0..<200 {
        if let client = try? await PolicyTestClient("127.0.0.1:\(port)") {
            _ = client
            return
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw TestFailure("daemon did not listen on \(port)")
}

func freePort() throws -> Int {
    try BlockingSocket.freeLoopbackPort()
}

/// Polls a maildir for a message holding `marker` (20 s at most).
func waitForMessage(in maildir: String, containing marker: String) async throws -> String? {
    for _ in 0..<100 {
        for sub in ["new", "cur"] {
            let dir = maildir + "/" + sub
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
                if let text = try? String(contentsOfFile: dir + "/" + name, encoding: .utf8), text.contains(marker) {
                    return text
                }
            }
        }
        try await Task.sleep(for: .milliseconds(200))
    }
    return nil
}
