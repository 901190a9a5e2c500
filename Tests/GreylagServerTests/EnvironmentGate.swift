import Foundation
import GreylagBench

#if canImport(Glibc)
import Glibc
#endif

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

/// Closes every descriptor above standard error, for a bash started with
/// posix_spawn (SharedStoreTests): NIO's sockets are not close-on-exec.
let closeInherited = #"for fd in $(ls /proc/$$/fd); do if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then eval "exec $fd>&-"; fi; done;"#

/// Closes the listening TCP sockets a bash inherited, and nothing else:
/// Foundation's Process learns that its child ended from a socket pair the
/// child holds, so closing every descriptor would leave it waiting forever.
/// A program started while other tests serve would otherwise hold their
/// listening sockets (a Postfix test could not bind its policy port while
/// the crash test ran).
let closeInheritedListeners = #"l=" $(awk '$4=="0A"{print $10}' /proc/net/tcp /proc/net/tcp6 2>/dev/null | tr '\n' ' ') "; "#
    + #"for fd in $(ls /proc/$$/fd); do if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then "#
    + #"t=$(readlink /proc/$$/fd/$fd); case "$t" in socket:*) i=${t#socket:[}; i=${i%]}; "#
    + #"case "$l" in *" $i "*) eval "exec $fd>&-";; esac;; esac; fi; done;"#

/// Arguments for /bin/bash that close inherited listening sockets and exec
/// `program` with `arguments`.
func withoutInheritedDescriptors(_ program: String, _ arguments: [String]) -> [String] {
    ["-c", closeInheritedListeners + #" exec "$0" "$@""#, program] + arguments
}

/// Runs a program and returns its exit status and standard output and error.
func runProgram(_ path: String, _ arguments: [String], timeout: Double = 60) async throws -> (status: Int32, output: String) {
    try await PolicyTestClient.offPool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = withoutInheritedDescriptors(path, arguments)
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

/// Starts the real `greylag serve --config CONFIG`, its output going to `log`.
func startDaemon(_ binary: String, config: String, log: String) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = withoutInheritedDescriptors(binary, ["serve", "--config", config])
    FileManager.default.createFile(atPath: log, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
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
