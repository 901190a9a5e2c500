import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A closed-loop load generator for milters, speaking as Postfix 3.7 does
/// (protocol 6, every "no reply" flag offered): N connections on threads of
/// their own, each negotiating once and then sending, per message, connect,
/// MAIL and RCPT in one write, waiting for the RCPT reply, and aborting the
/// message. A chosen share of messages carries a brand-new triplet.
public struct MilterLoadGenerator: Sendable {
    public struct Options: Sendable {
        public var host = "127.0.0.1"
        public var port = 10029
        public var connections = 16
        public var newShare = 0.3
        public var duration: Double = 10
        public var warmup: Double = 1
        public init() {}
    }

    public var options: Options

    public init(options: Options) {
        self.options = options
    }

    /// Runs the load; the report has the same shape as the policy generator's.
    public func run() throws -> PolicyLoadGenerator.Report {
        let results = Mutex<[PolicyLoadGenerator.Report]>([])
        let start = ContinuousClock.now
        let countFrom = start + .milliseconds(Int64(options.warmup * 1000))
        let end = countFrom + .milliseconds(Int64(options.duration * 1000))
        var threads: [Thread] = []
        let finished = DispatchGroup()
        for index in 0..<options.connections {
            finished.enter()
            let opts = options
            let thread = Thread {
                let r = Self.connection(index: index, options: opts, countFrom: countFrom, end: end)
                results.withLock { $0.append(r) }
                finished.leave()
            }
            threads.append(thread)
            thread.start()
        }
        finished.wait()
        var report = PolicyLoadGenerator.Report(answered: 0, seconds: 0, latenciesMicros: [], actions: [:], errors: [],
                                                transcript: [])
        for r in results.withLock({ $0 }) {
            report.answered += r.answered
            report.latenciesMicros += r.latenciesMicros
            report.actions.merge(r.actions, uniquingKeysWith: +)
            report.errors += r.errors
        }
        let measured = min(ContinuousClock.now, end) - countFrom
        report.seconds = Double(measured.components.seconds) + Double(measured.components.attoseconds) / 1e18
        return report
    }

    static func packet(_ command: Character, _ payload: [UInt8] = []) -> [UInt8] {
        let length = UInt32(payload.count + 1)
        return [UInt8(length >> 24), UInt8((length >> 16) & 255), UInt8((length >> 8) & 255), UInt8(length & 255),
                command.asciiValue!] + payload
    }

    static func connection(index: Int, options: Options, countFrom: ContinuousClock.Instant,
                           end: ContinuousClock.Instant) -> PolicyLoadGenerator.Report {
        var report = PolicyLoadGenerator.Report(answered: 0, seconds: 0, latenciesMicros: [], actions: [:], errors: [],
                                                transcript: [])
        let fd: Int32
        do {
            fd = try BlockingSocket.connectIPv4(options.host, options.port)
        } catch {
            report.errors.append("\(error)")
            return report
        }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        func send(_ bytes: [UInt8]) -> Bool {
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return false }
                sent += n
            }
            return true
        }
        var buffer: [UInt8] = []
        func readPacket() -> (Character, [UInt8])? {
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                if buffer.count >= 5 {
                    let length = Int(buffer[0]) << 24 | Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
                    if buffer.count >= 4 + length, length >= 1 {
                        let command = Character(UnicodeScalar(buffer[4]))
                        let payload = Array(buffer[5..<(4 + length)])
                        buffer.removeFirst(4 + length)
                        return (command, payload)
                    }
                }
                let n = recv(fd, &chunk, chunk.count, 0)
                if n <= 0 { return nil }
                buffer += chunk[0..<n]
            }
        }
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }
        guard send(packet("O", be32(6) + be32(0x1FF) + be32(0x1F_FFFF))), let negotiated = readPacket(),
              negotiated.0 == "O" else {
            report.errors.append("negotiation failed")
            return report
        }
        var rng = UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15 | 1
        func random() -> UInt64 {
            rng ^= rng << 13
            rng ^= rng >> 7
            rng ^= rng << 17
            return rng
        }
        var known: [(client: String, sender: String)] = []
        var counter = 0
        while ContinuousClock.now < end {
            let fresh = known.isEmpty || Double(random() % 10_000) / 10_000 < options.newShare
            let message: (client: String, sender: String)
            if fresh {
                counter += 1
                let r = random()
                message = ("198.\(18 + (r >> 8) % 2).\((r >> 16) % 256).\((r >> 24) % 254 + 1)",
                           "sender\(index)x\(counter)@bench\((r >> 32) % 1000).example")
                if known.count < 10_000 { known.append(message) } else { known[Int(random() % 10_000)] = message }
            } else {
                message = known[Int(random() % UInt64(known.count))]
            }
            let connectPayload = Array("[\(message.client)]".utf8) + [0, UInt8(ascii: "4")] + [0, 25]
                + Array(message.client.utf8) + [0]
            let batch = packet("C", connectPayload) + packet("M", Array("<\(message.sender)>".utf8) + [0])
                + packet("R", Array("<user\(index)@example.net>".utf8) + [0])
            let sentAt = ContinuousClock.now
            guard send(batch), let reply = readPacket() else {
                report.errors.append("connection closed by the milter")
                return report
            }
            let now = ContinuousClock.now
            if now >= countFrom && now <= end {
                report.answered += 1
                let took = now - sentAt
                report.latenciesMicros.append(UInt32(min(Int64(UInt32.max),
                                                         took.components.seconds * 1_000_000 + took.components.attoseconds / 1_000_000_000_000)))
                report.actions[String(reply.0), default: 0] += 1
            }
            guard send(packet("A")) else {
                report.errors.append("connection closed by the milter")
                return report
            }
        }
        _ = send(packet("Q"))
        return report
    }
}
