import Foundation
import GreylagBench
import NIOPosix
import GreylagCore
import GreylagDNS
import GreylagServer
import GreylagStore
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory removed afterwards.
final class TemporaryDirectory: Sendable {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "greylag-test-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let seconds: Atomic<Int64>
    init(_ start: Int64 = 1_795_292_186) { seconds = Atomic(start) }
    func advance(_ by: Int64) { seconds.add(by, ordering: .relaxed) }
    var now: Int64 { seconds.load(ordering: .relaxed) }
}

/// Log lines kept in memory, to assert what the daemon logged.
/// A count that tasks and threads share.
final class SharedCounter: Sendable {
    private let value = Atomic(0)
    func add() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
    func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }
}

struct CapturingHandler: LogHandler {
    let log: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        log.append("\(event.level) \(event.message)")
    }
}

/// Runs a daemon on an ephemeral loopback port for the duration of `body`,
/// then shuts it down gracefully.
func withDaemon<T: Sendable>(
    configure: (inout GreylagConfiguration) -> Void = { _ in },
    store: (@Sendable (GreylagConfiguration) throws -> any GreylistStore)? = nil,
    clock: ManualClock? = ManualClock(),
    log: CapturedLog = CapturedLog(),
    resolver: (any DNSResolving)? = nil,
    spf: SPFCheck? = nil,
    _ body: @Sendable (_ addresses: [String], _ shutdown: @Sendable () async -> Void) async throws -> T
) async throws -> T {
    let dir = TemporaryDirectory()
    var config = GreylagConfiguration()
    config.storePath = dir.path + "/greylag.db"
    config.policyListeners = [.tcp(host: "127.0.0.1", port: 0)]
    config.milterListeners = []
    config.httpListener = nil
    configure(&config)
    // A configuration read from TOML carries the qmail helpers' default
    // socket, a path of the host's: in-process daemons leave it alone.
    if config.helperListenIsDefault { config.policyHelperListeners = [] }
    let logger = Logger(label: "test") { _ in CapturingHandler(log: log) }
    let (stream, continuation) = AsyncStream.makeStream(of: [String].self)
    let now: @Sendable () -> Int64
    if let clock { now = { clock.now } } else { now = unixNow }
    let daemon = GreylagDaemon(configuration: config, logger: logger,
                               openStore: { config, loop in
                                   if let store { return try store(config) }
                                   return try await GreylagDaemon.openConfiguredStore(config, loop: loop)
                               },
                               clock: now, resolver: resolver, spf: spf, onListening: { continuation.yield($0) })
    let group = ServiceGroup(configuration: .init(services: [daemon], logger: logger))
    let running = Task {
        defer { continuation.finish() }  // a daemon that fails to start must not leave us waiting
        try await group.run()
    }
    var iterator = stream.makeAsyncIterator()
    guard let addresses = await iterator.next() else {
        try await running.value  // rethrows why it did not start
        throw TestFailure("daemon did not start")
    }
    let result: T
    do {
        result = try await body(addresses, { await group.triggerGracefulShutdown() })
    } catch {
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        throw error
    }
    await group.triggerGracefulShutdown()
    try await running.value
    _ = dir
    return result
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A blocking socket client for policy tests. Its calls run on threads of
/// their own, never on the cooperative pool the daemon also uses (nor on
/// Dispatch's global queue, which feeds that pool on Linux and grows only
/// slowly when its threads block).
final class PolicyTestClient: @unchecked Sendable {
    let fd: Int32

    init(_ address: String) async throws {
        fd = try await Self.offPool {
            if address.hasPrefix("unix:") {
                return try Self.connectUnix(String(address.dropFirst(5)))
            }
            let colon = address.lastIndex(of: ":")!
            let host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            let port = Int(address[address.index(after: colon)...])!
            return host.contains(":") ? try Self.connectTCP6(host, port) : try Self.connectTCP(host, port)
        }
    }

    deinit { close(fd) }

    static let blockingThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 64)
        pool.start()
        return pool
    }()

    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await blockingThreads.runIfActive(work)
    }

    static func connectTCP(_ host: String, _ port: Int) throws -> Int32 {
        let fd = try BlockingSocket.connectIPv4(host, port)
        setTimeout(fd)
        return fd
    }

    static func connectTCP6(_ host: String, _ port: Int) throws -> Int32 {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in6()
        addr.sin6_family = sa_family_t(AF_INET6)
        addr.sin6_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET6, host, &addr.sin6_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
        guard rc == 0 else { close(fd); throw TestFailure("connect [\(host)]:\(port) failed: errno \(errno)") }
        setTimeout(fd)
        return fd
    }

    static func connectUnix(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { close(fd); throw TestFailure("connect \(path) failed: errno \(errno)") }
        setTimeout(fd)
        return fd
    }

    static func setTimeout(_ fd: Int32) {
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ text: String) async throws {
        try await send(bytes: Array(text.utf8))
    }

    /// Reads one reply (through the blank line); nil when the server closed first.
    func reply() async throws -> String? {
        let fd = self.fd
        return try await Self.offPool {
            var data: [UInt8] = []
            var byte: UInt8 = 0
            while true {
                let n = recv(fd, &byte, 1, 0)
                if n == 0 { return nil }
                guard n > 0 else { throw TestFailure("recv failed: errno \(errno)") }
                data.append(byte)
                if data.count >= 2 && data[data.count - 2] == 10 && byte == 10 {
                    return String(decoding: data.dropLast(2), as: UTF8.self)
                }
            }
        }
    }

    /// Sends raw bytes.
    func send(bytes: [UInt8]) async throws {
        let fd = self.fd
        try await Self.offPool {
            var sent = 0
            while sent < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { throw TestFailure("send failed: errno \(errno)") }
                sent += n
            }
        }
    }

    /// Reads one milter packet: its command letter and data; nil at EOF.
    func packet() async throws -> (Character, [UInt8])? {
        let fd = self.fd
        return try await Self.offPool {
            func read(_ count: Int) throws -> [UInt8]? {
                var out = [UInt8](repeating: 0, count: count)
                var got = 0
                while got < count {
                    let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
                    if n == 0 { return nil }
                    guard n > 0 else { throw TestFailure("recv failed: errno \(errno)") }
                    got += n
                }
                return out
            }
            guard let head = try read(4) else { return nil }
            let length = Int(head[0]) << 24 | Int(head[1]) << 16 | Int(head[2]) << 8 | Int(head[3])
            guard let body = try read(length) else { return nil }
            return (Character(UnicodeScalar(body[0])), Array(body.dropFirst()))
        }
    }

    /// Sends a request and returns the reply.
    func ask(_ attributes: [(String, String)]) async throws -> String? {
        try await send(attributes.map { "\($0.0)=\($0.1)\n" }.joined() + "\n")
        return try await reply()
    }

    /// True when the server closed the connection (EOF).
    func isClosedByServer() async throws -> Bool {
        try await reply() == nil
    }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }
}

/// A Postfix-like RCPT request.
func rcptRequest(client: String = "192.0.2.7", sender: String = "alice@example.org",
                 recipient: String = "bob@example.net", instance: String = "1a2b.3c4d.0") -> [(String, String)] {
    [("request", "smtpd_access_policy"), ("protocol_state", "RCPT"), ("protocol_name", "ESMTP"),
     ("client_address", client), ("client_name", "unknown"), ("helo_name", "mail.example.org"),
     ("sender", sender), ("recipient", recipient), ("instance", instance), ("queue_id", "")]
}

/// The errors the loader finds in `text`, as it prints them (`file:line: key: ...`);
/// empty when it loads. Any other error is returned as text too, so a test
/// expecting none fails with it.
func configurationErrors(_ text: String, file: String = "/etc/greylag/greylag.toml") -> [String] {
    do {
        _ = try ConfigurationLoader.parse(text, file: file)
        return []
    } catch let e as ConfigurationErrors {
        return e.errors.map(\.description)
    } catch {
        return ["unexpected \(error)"]
    }
}
