import ArgumentParser
import Foundation
import Synchronization
import GreylagBench
import GreylagServer

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a policy server with persistent connections and print decisions/s and latency.")

    @Option(help: "Policy server as HOST:PORT or unix:/path.")
    var target = "127.0.0.1:10023"
    @Option(help: "Persistent connections.")
    var connections = 16
    @Option(help: "Share of requests with a brand-new triplet, 0 to 1.")
    var newShare = 0.3
    @Option(help: "Seconds to measure (after the warm-up).")
    var duration = 10.0
    @Option(help: "Seconds of warm-up not counted.")
    var warmup = 1.0
    @Option(help: "Stop after this many answers (0: run for --duration).")
    var requests = 0
    @Option(help: "Client event-loop threads.")
    var threads = 1
    @Option(help: "Label printed with the figures.")
    var label = "greylag"
    @Option(help: "Write every answered request (client, sender, recipient, action) to this file, tab-separated.")
    var transcript: String?
    @Option(help: "Hostile peers beside the load: connections that send nothing (TCP targets only).")
    var idle = 0
    @Option(help: "Hostile peers beside the load: connections that send a request one byte every 100 ms (TCP targets only).")
    var trickle = 0
    @Option(help: "Also print the CPU time this server process (Linux: /proc/PID/stat) and the load generator spent per answer.")
    var serverPid: Int32?
    @Flag(help: "Only IPv4 clients (by default half the new triplets come from IPv6 clients).")
    var ipv4Only = false

    func validate() throws {
        guard connections > 0 else { throw ValidationError("--connections must be at least 1") }
        if let pid = serverPid, CPUTime.process(pid) == nil {
            throw ValidationError("--server-pid \(pid): no such process, or /proc/\(pid)/stat cannot be read")
        }
        guard (0...1).contains(newShare) else { throw ValidationError("--new-share must be between 0 and 1") }
    }

    func run() async throws {
        var options = PolicyLoadGenerator.Options()
        switch ListenAddress(target) {
        case .tcp(let host, let port)?:
            options.host = host
            options.port = port
        case .unix(let path)?:
            options.unixPath = path
        case nil:
            throw ValidationError("--target must be HOST:PORT, [IPV6]:PORT or unix:/path")
        }
        options.connections = connections
        options.newShare = newShare
        options.duration = duration
        options.warmup = warmup
        options.maxRequests = requests
        options.threads = threads
        options.ipv4Only = ipv4Only
        let hostile = try HostilePeers(host: options.host, port: options.port, idle: idle, trickle: trickle)
        defer { hostile.stop() }
        let sampler = CPUSampler(serverPid: serverPid, warmup: warmup)
        let report = try await PolicyLoadGenerator(options: options).run(keepTranscript: transcript != nil)
        let cpuLine = sampler.line(answered: report.answered)
        let stillOpen = hostile.stillOpen()
        let actions = report.actions.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        print(String(format: "%@: %d connections, %.0f%% new: %.0f decisions/s, p50 %.3f ms, p99 %.3f ms, "
                     + "max %.3f ms (%d answers in %.2f s; %@)",
                     label, connections, newShare * 100, report.rate, report.percentile(0.5),
                     report.percentile(0.99), report.percentile(1.0), report.answered, report.seconds, actions))
        for error in Set(report.errors) { print("  error: \(error)") }
        if let cpuLine { print(cpuLine) }
        if idle + trickle > 0 {
            print("  beside \(idle) idle and \(trickle) byte-at-a-time connections; \(stillOpen) of them still open at the end")
        }
        if let transcript {
            var text = ""
            for a in report.transcript { text += "\(a.client)\t\(a.sender)\t\(a.recipient)\t\(a.action)\n" }
            try text.write(toFile: transcript, atomically: true, encoding: .utf8)
        }
    }
}

/// Connections that hold server resources without asking anything: some
/// send nothing, some send a request one byte every 100 ms from a thread of
/// their own. Blocking sockets, outside the load generator's event loop.
final class HostilePeers: @unchecked Sendable {
    private var idleFDs: [Int32] = []
    private var trickleFDs: [Int32] = []
    private let running = Atomic<Bool>(true)
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    init(host: String, port: Int, idle: Int, trickle: Int) throws {
        for i in 0..<(idle + trickle) {
            let fd: Int32
            do {
                fd = try BlockingSocket.connectIPv4(host, port)
            } catch {
                throw ValidationError("hostile connection \(i + 1): \(error) (--idle and --trickle need an IPv4 target)")
            }
            if i < idle { idleFDs.append(fd) } else { trickleFDs.append(fd) }
        }
        guard !trickleFDs.isEmpty else { return }
        let fds = trickleFDs
        let request = Array(("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\n"
                             + "sender=slow@example.org\nrecipient=victim@example.net\n\n").utf8)
        let thread = Thread { [self] in
            var position = 0
            while self.running.load(ordering: .relaxed) {
                var byte = request[position % request.count]
                for fd in fds { _ = send(fd, &byte, 1, Int32(MSG_NOSIGNAL)) }
                position += 1
                usleep(100_000)
            }
            self.done.signal()
        }
        self.thread = thread
        thread.start()
    }

    /// How many hostile connections the server has not closed.
    func stillOpen() -> Int {
        var open = 0
        var byte: UInt8 = 0
        for fd in idleFDs + trickleFDs {
            let n = recv(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK))
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { open += 1 }
        }
        return open
    }

    func stop() {
        if thread != nil {
            running.store(false, ordering: .relaxed)
            done.wait()
        }
        for fd in idleFDs + trickleFDs { close(fd) }
    }
}

struct BenchMilter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-milter",
        abstract: "Load a milter as Postfix does (connect, HELO, MAIL, RCPT one at a time, abort, quit) and print RCPT decisions/s and latency.")

    @Option(help: "Milter as HOST:PORT (IPv4).")
    var target = "127.0.0.1:10029"
    @Option(help: "Connections, each on a thread of its own.")
    var connections = 16
    @Option(help: "Share of messages with a brand-new triplet, 0 to 1.")
    var newShare = 0.3
    @Option(help: "Seconds to measure (after the warm-up).")
    var duration = 10.0
    @Option(help: "Seconds of warm-up not counted.")
    var warmup = 1.0
    @Option(help: "Label printed with the figures.")
    var label = "milter"
    @Flag(help: "A fresh connection per session (quit, connect, negotiate) instead of K on the same connection.")
    var reconnect = false
    @Option(help: "Also print the CPU time this milter process (Linux: /proc/PID/stat) and the load generator spent per RCPT answer.")
    var serverPid: Int32?

    func validate() throws {
        guard (1...10_000).contains(connections) else { throw ValidationError("--connections must be 1 to 10000") }
        if let pid = serverPid, CPUTime.process(pid) == nil {
            throw ValidationError("--server-pid \(pid): no such process, or /proc/\(pid)/stat cannot be read")
        }
        guard (0...1).contains(newShare) else { throw ValidationError("--new-share must be between 0 and 1") }
        guard duration > 0, duration <= 86_400 else { throw ValidationError("--duration must be over 0 and at most 86400 seconds") }
        guard warmup >= 0, warmup <= 3_600 else { throw ValidationError("--warmup must be 0 to 3600 seconds") }
    }

    func run() async throws {
        guard case .tcp(let host, let port)? = ListenAddress(target) else {
            throw ValidationError("--target must be HOST:PORT")
        }
        var options = MilterLoadGenerator.Options()
        options.host = host
        options.port = port
        options.connections = connections
        options.newShare = newShare
        options.duration = duration
        options.warmup = warmup
        options.reconnect = reconnect
        let sampler = CPUSampler(serverPid: serverPid, warmup: warmup)
        let report = try MilterLoadGenerator(options: options).run()
        let cpuLine = sampler.line(answered: report.answered)
        let actions = report.actions.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        print("\(label): \(connections) connections, \(Int(newShare * 100))% new: \(Int(report.rate)) decisions/s, "
              + String(format: "p50 %.3f ms, p99 %.3f ms, max %.3f ms", report.percentile(0.5), report.percentile(0.99),
                       report.percentile(1.0))
              + " (\(report.answered) answers in \(String(format: "%.2f", report.seconds)) s; replies \(actions))")
        for error in Set(report.errors) { print("  error: \(error)") }
        if let cpuLine { print(cpuLine) }
    }
}

/// The CPU time a server process (from `/proc`) and this load generator
/// spend in the counted window of a run: sampled when the warm-up ends (on
/// a timer started at creation) and when `line` is called at the end.
final class CPUSampler: Sendable {
    private let pid: Int32?
    private let atStart = Mutex<(server: Double?, own: Double)?>(nil)

    init(serverPid: Int32?, warmup: Double) {
        pid = serverPid
        guard let pid = serverPid else { return }
        DispatchQueue.global().asyncAfter(deadline: .now() + max(0, warmup)) { [self] in
            let sample = (server: CPUTime.process(pid), own: CPUTime.own())
            atStart.withLock { $0 = sample }
        }
    }

    /// "  cpu per answer: server S us, load generator G us" over `answered`
    /// answers, or nil without a server pid, without answers, or when the
    /// run ended before the warm-up did. S is "?" if the server's
    /// `/proc/PID/stat` could not be read at either end.
    func line(answered: Int) -> String? {
        let end = (server: pid.flatMap(CPUTime.process), own: CPUTime.own())
        guard pid != nil, answered > 0, let start = atStart.withLock({ $0 }) else { return nil }
        let perAnswer = { (seconds: Double) in seconds / Double(answered) * 1e6 }
        var server = "?"
        if let a = start.server, let b = end.server { server = String(format: "%.1f", perAnswer(b - a)) }
        return String(format: "  cpu per answer: server %@ us, load generator %.1f us", server, perAnswer(end.own - start.own))
    }
}

/// CPU time (user and system) of processes, in seconds.
enum CPUTime {
    /// Of process `pid`, all its threads, from `/proc/PID/stat`.
    static func process(_ pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After the command name in parentheses: state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Of this process.
    static func own() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
