import Foundation
import GreylagBench
import GreylagCore
import GreylagServer
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A milter that speaks as a libmilter one does by default: it asks for no
/// "no reply" flags, answers `c` to connect, HELO and MAIL and `t` to RCPT,
/// and notes every command it gets and whether the MTA sent a command before
/// the reply due to the previous one.
final class ScriptedMilter: @unchecked Sendable {
    let fd: Int32
    let port: Int
    /// The command letters received, in order, per connection.
    let connections = Mutex<[[Character]]>([])
    var commands: [Character] { connections.withLock { $0.flatMap { $0 } } }
    /// Commands that arrived while a reply to an earlier one was still due.
    let pipelined = Mutex<Int>(0)

    init() throws {
        let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, len) } }
        guard bound == 0, listen(sock, 16) == 0 else {
            close(sock)
            throw POSIXError(.EADDRINUSE)
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sock, $0, &len) }
        }
        fd = sock
        port = Int(UInt16(bigEndian: addr.sin_port))
        let listener = sock
        let milter = self
        let acceptor = Thread {
            while true {
                let conn = accept(listener, nil, nil)
                if conn < 0 { return }
                let index = milter.connections.withLock { $0.append([]); return $0.count - 1 }
                Thread.detachNewThread { milter.serve(conn, index: index) }
            }
        }
        acceptor.start()
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    func serve(_ conn: Int32, index: Int) {
        defer { close(conn) }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        func reply(_ command: Character, _ payload: [UInt8] = []) {
            let packet = milterPacket(command, payload)
            _ = packet.withUnsafeBytes { send(conn, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        while true {
            guard buffer.count >= 4 else {
                let n = recv(conn, &chunk, chunk.count, 0)
                if n <= 0 { return }
                buffer += chunk[0..<n]
                continue
            }
            let length = Int(buffer[0]) << 24 | Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
            guard length >= 1, length < 65536 else { return }
            guard buffer.count >= 4 + length else {
                let n = recv(conn, &chunk, chunk.count, 0)
                if n <= 0 { return }
                buffer += chunk[0..<n]
                continue
            }
            let command = Character(UnicodeScalar(buffer[4]))
            buffer.removeFirst(4 + length)
            connections.withLock { $0[index].append(command) }
            let due = "OCHMR".contains(command)
            if due {
                // Anything already here was sent before this reply: pipelined.
                usleep(1000)
                var peek = [UInt8](repeating: 0, count: 1)
                if !buffer.isEmpty || recv(conn, &peek, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0 {
                    pipelined.withLock { $0 += 1 }
                }
            }
            switch command {
            case "O": reply("O", [0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0])
            case "C", "H", "M": reply("c")
            case "R": reply("t")
            case "Q": return
            default: break
            }
        }
    }
}

@Suite struct BenchMilterTests {
    static func options(port: Int) -> MilterLoadGenerator.Options {
        var options = MilterLoadGenerator.Options()
        options.port = port
        options.connections = 2
        options.newShare = 0.5
        options.duration = 1
        options.warmup = 0
        options.replyTimeout = 5
        return options
    }

    @Test func waitsForEachDueReplyUsesKAndCountsOnlyRcptAnswers() async throws {
        let milter = try ScriptedMilter()
        defer { milter.stop() }
        let options = Self.options(port: milter.port)
        let opts = options
        let report = try await PolicyTestClient.offPool { try MilterLoadGenerator(options: opts).run() }
        #expect(report.errors.isEmpty, "\(report.errors)")
        let commands = milter.commands
        let rcpts = commands.filter { $0 == "R" }.count
        #expect(report.answered >= 10)
        // Every RCPT answer and nothing else: the `c` to connect, HELO and MAIL are not decisions.
        #expect(report.actions == ["t": report.answered])
        #expect(report.answered <= rcpts && rcpts <= report.answered + options.connections)
        #expect(report.latenciesMicros.count == report.answered)
        #expect(milter.pipelined.withLock { $0 } == 0)
        // One negotiation per connection; sessions are C H M R A K, the last one may be cut by the end.
        #expect(commands.filter { $0 == "O" }.count == options.connections)
        #expect(commands.filter { $0 == "K" }.count >= rcpts - options.connections)
        for connection in milter.connections.withLock({ $0 }) {
            let text = String(connection)
            #expect(text.hasPrefix("OCHMRAKCHMRAK"))
            #expect(text.dropFirst().replacingOccurrences(of: "CHMRAK", with: "").count <= 5, "\(text.suffix(20))")
        }
    }

    @Test func reconnectOpensAFreshConnectionPerSession() async throws {
        let milter = try ScriptedMilter()
        defer { milter.stop() }
        var options = Self.options(port: milter.port)
        options.reconnect = true
        options.duration = 0.5
        let opts = options
        let report = try await PolicyTestClient.offPool { try MilterLoadGenerator(options: opts).run() }
        #expect(report.errors.isEmpty, "\(report.errors)")
        let commands = milter.commands
        #expect(report.answered >= 5)
        #expect(!commands.contains("K"))
        // A negotiation and a quit per session.
        #expect(commands.filter { $0 == "O" }.count >= report.answered)
        #expect(commands.filter { $0 == "Q" }.count >= report.answered - options.connections)
        #expect(milter.pipelined.withLock { $0 } == 0)
    }

    @Test func completesSessionsAgainstGreylagsMilter() async throws {
        try await withDaemon(configure: { c in
            c.milterListeners = [.tcp(host: "127.0.0.1", port: 0)]
        }) { addresses, _ in
            let address = addresses[1]
            let port = try #require(Int(address[address.index(after: address.lastIndex(of: ":")!)...]))
            var options = Self.options(port: port)
            options.newShare = 1
            let opts = options
        let report = try await PolicyTestClient.offPool { try MilterLoadGenerator(options: opts).run() }
            #expect(report.errors.isEmpty, "\(report.errors)")
            #expect(report.answered >= 10)
            // greylag asks not to answer connect, HELO and MAIL; every RCPT of a new triplet is deferred.
            #expect(report.actions == ["y": report.answered])
        }
    }

    @Test func aMilterThatDoesNotAnswerIsAnErrorNotAHang() async throws {
        // A listener that accepts and never answers the negotiation.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        listen(fd, 4)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        var options = Self.options(port: Int(UInt16(bigEndian: addr.sin_port)))
        options.connections = 1
        options.replyTimeout = 0.3
        let opts = options
        let report = try await PolicyTestClient.offPool { try MilterLoadGenerator(options: opts).run() }
        #expect(report.answered == 0)
        #expect(report.errors == ["no reply from the milter in time"])
    }
}
