import Foundation
import GreylagTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A unix datagram socket the test binds, standing in for systemd's
/// notify socket or a syslog daemon's `/dev/log`: a path, or `@name` for
/// an abstract socket (which leaves no file behind).
final class DatagramSink: @unchecked Sendable {
    let fd: Int32
    let name: String

    init(_ name: String) throws {
        self.name = name
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket failed: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw TestFailure("name too long: \(name)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let length = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + bytes.count + (abstract ? 0 : 1)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) }
        }
        guard rc == 0 else {
            close(fd)
            throw TestFailure("bind \(name) failed: errno \(errno)")
        }
    }

    deinit {
        close(fd)
        if !name.hasPrefix("@") { unlink(name) }
    }

    /// The next datagram, or nil when none comes within `seconds`.
    func receive(within seconds: Double = 30) async throws -> String? {
        let fd = self.fd
        return try await PolicyTestClient.offPool {
            var deadline = timespec()
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            let end = Double(deadline.tv_sec) + Double(deadline.tv_nsec) / 1e9 + seconds
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let left = end - (Double(now.tv_sec) + Double(now.tv_nsec) / 1e9)
                if left <= 0 { return nil }
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&p, 1, Int32(max(1, left * 1000)))
                if ready == 0 { return nil }
                if ready < 0 { if errno == EINTR { continue } else { throw TestFailure("poll: errno \(errno)") } }
                let n = recv(fd, &buffer, buffer.count, 0)
                if n < 0 { if errno == EINTR { continue } else { throw TestFailure("recv: errno \(errno)") } }
                return String(decoding: buffer[0..<n], as: UTF8.self)
            }
        }
    }

    /// Datagrams until one contains `text` (that one last); fails after `seconds`.
    func receive(until text: String, within seconds: Double = 30) async throws -> [String] {
        var out: [String] = []
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            guard let d = try await receive(within: seconds - Date().timeIntervalSince(start)) else { break }
            out.append(d)
            if d.contains(text) { return out }
        }
        throw TestFailure("no datagram with \(text) within \(seconds) s; got \(out)")
    }
}

/// The `greylag` binary for tests that run it: GREYLAG_BINARY, or the one
/// built next to the test bundle (`swift build` then `swift test`).
enum GreylagBinary {
    static let path: String? = {
        if let v = ProcessInfo.processInfo.environment["GREYLAG_BINARY"], !v.isEmpty { return v }
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        let candidate = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("greylag").path
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }()

    static var available: Bool { path != nil }
}

/// Starts `greylag serve --config CONFIG` with standard output and error
/// going to `log`. The daemon sees the test process's environment without
/// systemd's variables (the test may itself run under systemd), plus `environment`.
func startGreylag(config: String, log: String, environment: [String: String] = [:]) throws -> Process {
    guard let binary = GreylagBinary.path else { throw TestFailure("no greylag binary: set GREYLAG_BINARY or swift build") }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["serve", "--config", config]
    var env = ProcessInfo.processInfo.environment
    for key in ["NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"] {
        env.removeValue(forKey: key)
    }
    process.environment = env.merging(environment) { $1 }
    if !FileManager.default.fileExists(atPath: log) {
        guard FileManager.default.createFile(atPath: log, contents: nil) else { throw TestFailure("cannot create \(log)") }
    }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    process.standardOutput = handle
    process.standardError = handle
    process.standardInput = FileHandle.nullDevice
    try spawn(process)
    return process
}

/// Waits (off the cooperative pool) until `process` has exited, 30 s at most.
func waitForExit(_ process: Process, seconds: Double = 30) async throws -> Int32 {
    let start = Date()
    while process.isRunning {
        if Date().timeIntervalSince(start) > seconds {
            kill(process.processIdentifier, SIGKILL)
            throw TestFailure("greylag did not exit within \(seconds) s")
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    return process.terminationStatus
}

/// The `device:inode` systemd puts in JOURNAL_STREAM, for the file at `path`.
func journalStream(of path: String) throws -> String {
    var st = stat()
    guard stat(path, &st) == 0 else { throw TestFailure("stat \(path): errno \(errno)") }
    return "\(st.st_dev):\(st.st_ino)"
}
