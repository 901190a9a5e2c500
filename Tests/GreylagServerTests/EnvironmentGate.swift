import Foundation

/// Settings for the tests that need real peers, passed by `scripts/test.sh`
/// after it has started them. Without `GREYLAG_E2E=1` those tests are
/// skipped; with it, a missing setting is a failure, not a skip.
enum E2E {
    static let environment = ProcessInfo.processInfo.environment
    static var enabled: Bool { environment["GREYLAG_E2E"] == "1" }

    static func value(_ name: String) throws -> String {
        guard let v = environment[name], !v.isEmpty else {
            throw TestFailure("\(name) is not set; run the suite through scripts/test.sh")
        }
        return v
    }
}

/// Runs a program and returns its exit status and standard output and error.
func runProgram(_ path: String, _ arguments: [String], timeout: Double = 60) async throws -> (status: Int32, output: String) {
    try await PolicyTestClient.offPool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
