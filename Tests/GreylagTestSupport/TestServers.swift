import Foundation
import GreylagMariaDB

/// The one rule for tests that need a database server, shared by every
/// suite that has cases for PostgreSQL or MariaDB:
///
/// - without `GREYLAG_E2E=1` (a plain `swift test`), a server whose setting
///   is missing, or MariaDB in a build without the trait, is left out, and
///   the suite says so in a skipped test;
/// - with it (scripts/test.sh, which starts the servers), nothing is left
///   out: every case runs, and one that cannot fails with the reason. A
///   suite never passes by running less than it claims.
public enum TestGate {
    /// scripts/test.sh sets `GREYLAG_E2E=1` after it has started the peers.
    public static var e2e: Bool { ProcessInfo.processInfo.environment["GREYLAG_E2E"] == "1" }

    /// The cases a parameterised test runs: all of them under `GREYLAG_E2E=1`
    /// (those with a problem then fail, see `check`), else those without one.
    public static func cases<T>(_ all: [T], problem: (T) -> String?) -> [T] {
        e2e ? all : all.filter { problem($0) == nil }
    }

    /// What a plain run leaves out and why, for the skip note of a gate
    /// test; nil when nothing is left out.
    public static func skipped<T: CustomStringConvertible>(_ all: [T], problem: (T) -> String?) -> String? {
        let left = cases(all, problem: problem).map(\.description)
        let missing = all.filter { !left.contains($0.description) }.compactMap { c in problem(c).map { "\(c): \($0)" } }
        return missing.isEmpty ? nil : "not run against " + missing.joined(separator: "; ")
    }

    /// Thrown by a case that cannot run.
    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String
    }

    /// Throws `Unavailable` with the reason when `problem` is not nil.
    public static func check(_ what: String, problem: String?) throws {
        if let problem { throw Unavailable(description: "\(what) cannot run: \(problem)") }
    }
}

/// A database server the tests use: PostgreSQL from `GREYLAG_TEST_POSTGRES`,
/// MariaDB from `GREYLAG_TEST_MARIADB` (`host:port:user:password`, set by
/// scripts/test.sh) and only in builds with the MariaDB trait.
public enum TestServer: String, CaseIterable, Sendable, CustomStringConvertible {
    case postgresql, mariadb

    public struct Settings: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String
    }

    public var description: String { rawValue }

    /// The environment variable with this server's settings.
    public var variable: String {
        switch self {
        case .postgresql: return "GREYLAG_TEST_POSTGRES"
        case .mariadb: return "GREYLAG_TEST_MARIADB"
        }
    }

    /// Why tests of this server cannot run here, or nil when they can.
    /// `needsSetting: false` for tests that start a server of their own and
    /// only need the client built in.
    public func problem(needsSetting: Bool = true) -> String? {
        if self == .mariadb && !MariaDBBackend.isAvailable {
            return "the MariaDB cases need a build with the MariaDB trait (swift test --traits MariaDB)"
        }
        guard needsSetting else { return nil }
        guard let spec = ProcessInfo.processInfo.environment[variable], !spec.isEmpty else {
            return "\(variable) is not set (host:port:user:password; scripts/test.sh sets it)"
        }
        return Self.parse(spec) == nil ? "\(variable) is not host:port:user:password with a port 1-65535" : nil
    }

    /// The settings from the environment; nil when missing or malformed
    /// (`problem` says which), or for MariaDB without the trait.
    public var settings: Settings? {
        guard problem() == nil, let spec = ProcessInfo.processInfo.environment[variable] else { return nil }
        return Self.parse(spec)
    }

    /// The settings, or `TestGate.Unavailable` with the reason.
    public func requireSettings() throws -> Settings {
        try TestGate.check("\(self)", problem: problem())
        guard let s = settings else { throw TestGate.Unavailable(description: "\(self): no settings") }
        return s
    }

    /// `host:port:user:password`; the password may contain colons.
    public static func parse(_ spec: String) -> Settings? {
        let p = spec.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        guard p.count == 4, !p[0].isEmpty, let port = Int(p[1]), (1...65_535).contains(port) else { return nil }
        return Settings(host: p[0], port: port, user: p[2], password: p[3])
    }
}

/// Starts `process`, one at a time across every test target of the run
/// (they share one process): Foundation's `Process.run()` crashed in full
/// runs (a bad read in its memmove) while several tests started programs
/// at the same moment, once with one of them outside this lock.
public func spawn(_ process: Process) throws {
    spawnLock.lock()
    defer { spawnLock.unlock() }
    try process.run()
}

private let spawnLock = NSLock()

/// Runs a program to its end with standard input closed and returns its
/// exit status, standard output and standard error apart. `environment`
/// nil: the test process's own; otherwise exactly that.
public func runCapturing(_ path: String, _ arguments: [String], environment: [String: String]? = nil) throws
    -> (status: Int32, stdout: String, stderr: String) {
    let r = try ChildProgram.run(path, arguments, environment: environment, mergeErrors: false)
    return (r.status, r.stdout, r.stderr)
}

/// Runs a program to its end with standard input closed and returns its exit
/// status and its standard output and error together, as they came.
/// `environment` nil: the test process's own; otherwise exactly that.
public func runMerged(_ path: String, _ arguments: [String], environment: [String: String]? = nil) throws
    -> (status: Int32, output: String) {
    let r = try ChildProgram.run(path, arguments, environment: environment, mergeErrors: true)
    return (r.status, r.stdout)
}

/// Short-lived programs started with posix_spawn directly, not Foundation's
/// `Process`: `Process.run()` crashed the whole test run now and then (a
/// bad read in a memcpy under it, twice in one day's full runs, under the
/// spawn lock too). As `Process` does, the child gets /dev/null as input, a
/// process group of its own and none of the test process's descriptors but
/// the pipes.
enum ChildProgram {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func run(_ path: String, _ arguments: [String], environment: [String: String]?, mergeErrors: Bool) throws
        -> (status: Int32, stdout: String, stderr: String) {
        guard let addClosefrom else { throw Failure(description: "no posix_spawn_file_actions_addclosefrom_np (glibc 2.34)") }
        var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
        guard pipe(&out) == 0 else { throw Failure(description: "pipe: errno \(errno)") }
        defer { for fd in out where fd >= 0 { close(fd) } }
        if !mergeErrors {
            guard pipe(&err) == 0 else { throw Failure(description: "pipe: errno \(errno)") }
        }
        defer { for fd in err where fd >= 0 { close(fd) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_adddup2(&actions, mergeErrors ? out[1] : err[1], 2)
        // Every other descriptor of the test process stays out of the child.
        _ = addClosefrom(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0)=\($1)") } + [nil] }
        defer { for e in envp ?? [] { free(e) } }

        var pid: pid_t = 0
        let rc = spawnLock.withLock {
            envp.map { posix_spawn(&pid, path, &actions, &attributes, argv, $0) }
                ?? posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        }
        guard rc == 0 else { throw Failure(description: "cannot start \(path): \(String(cString: strerror(rc)))") }
        close(out[1]); out[1] = -1
        if !mergeErrors { close(err[1]); err[1] = -1 }

        // Standard error on a thread of its own, so a program that fills one
        // pipe while we read the other cannot stall.
        let errors = mergeErrors ? nil : PipeReader(err[0])
        let output = readAll(out[0])
        let errorBytes = errors?.wait() ?? []
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return (code, String(decoding: output, as: UTF8.self), String(decoding: errorBytes, as: UTF8.self))
    }

    /// glibc's posix_spawn_file_actions_addclosefrom_np (2.34 and later), which
    /// Swift's Glibc module does not declare.
    private typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let addClosefrom: AddClosefrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: AddClosefrom.self) }

    static func readAll(_ fd: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { bytes += buffer[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            return bytes
        }
    }

    /// Reads a descriptor to its end on a thread of its own.
    private final class PipeReader: @unchecked Sendable {
        private var bytes: [UInt8] = []
        private let done = DispatchSemaphore(value: 0)

        init(_ fd: Int32) {
            Thread.detachNewThread { [self] in
                bytes = ChildProgram.readAll(fd)
                done.signal()
            }
        }

        func wait() -> [UInt8] {
            done.wait()
            return bytes
        }
    }
}
