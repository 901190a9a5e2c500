import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A closed-loop load generator for milters that behaves as Postfix's milter
/// client does, so that any milter (greylag's, or one built on libmilter) can
/// take it: N connections on threads of their own, each negotiating (protocol
/// 6, every "no reply" and "don't send" flag offered) and honouring what the
/// milter asks for. Per SMTP session it sends connect, HELO, MAIL and RCPT
/// one at a time, waiting for each reply that is due before the next command
/// and waiting for none the milter said it will not send; then it aborts the
/// message and ends the session with `K` (quit, a new session follows on this
/// connection), or with `Q` and a fresh connection (`reconnect`). Only the
/// RCPT replies count as decisions. A chosen share of sessions carries a
/// brand-new triplet.
public struct MilterLoadGenerator: Sendable {
    public struct Options: Sendable {
        public var host = "127.0.0.1"
        public var port = 10029
        public var connections = 16
        public var newShare = 0.3
        public var duration: Double = 10
        public var warmup: Double = 1
        /// A fresh connection (and negotiation) per session instead of `K`.
        public var reconnect = false
        /// Seconds to wait for a reply that is due before giving up on the connection.
        public var replyTimeout: Double = 10
        public init() {}
    }

    /// Protocol flags (SMFIP_*) the generator offers and understands.
    enum Flag {
        static let noConnect: UInt32 = 0x1
        static let noHelo: UInt32 = 0x2
        static let noMail: UInt32 = 0x4
        static let noRcpt: UInt32 = 0x8
        static let noReplyConnect: UInt32 = 0x1000
        static let noReplyHelo: UInt32 = 0x2000
        static let noReplyMail: UInt32 = 0x4000
        static let noReplyRcpt: UInt32 = 0x8000
        static let offered: UInt32 = 0x1F_FFFF
    }

    /// The largest reply accepted from a milter (a negotiation reply may list macros).
    static let maxReply = 1 << 20

    public var options: Options

    public init(options: Options) {
        self.options = options
    }

    /// Runs the load; the report has the same shape as the policy generator's,
    /// counting RCPT replies only.
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

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// One milter connection: a socket, its read buffer and the negotiated flags.
    final class Link {
        let fd: Int32
        var buffer: [UInt8] = []
        var flags: UInt32 = 0

        init(options: Options) throws {
            let fd = try BlockingSocket.connectIPv4(options.host, options.port)
            self.fd = fd
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let seconds = max(0.001, options.replyTimeout)
            var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        func send(_ bytes: [UInt8]) throws {
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { throw Failure(description: "connection closed by the milter (send)") }
                sent += n
            }
        }

        /// The next packet from the milter; `p` (progress) packets are skipped.
        func reply() throws -> (command: Character, payload: [UInt8]) {
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                if buffer.count >= 4 {
                    let length = Int(buffer[0]) << 24 | Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
                    guard length >= 1, length <= MilterLoadGenerator.maxReply else {
                        throw Failure(description: "the milter sent a packet of length \(length)")
                    }
                    if buffer.count >= 4 + length {
                        let command = Character(UnicodeScalar(buffer[4]))
                        let payload = Array(buffer[5..<(4 + length)])
                        buffer.removeFirst(4 + length)
                        if command == "p" { continue }
                        return (command, payload)
                    }
                }
                let n = recv(fd, &chunk, chunk.count, 0)
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    throw Failure(description: "no reply from the milter in time")
                }
                if n <= 0 { throw Failure(description: "connection closed by the milter") }
                buffer += chunk[0..<n]
            }
        }

        /// Option negotiation, as Postfix offers it; keeps the flags the milter asked for.
        func negotiate() throws {
            try send(MilterLoadGenerator.packet("O", be32(6) + be32(0x1FF) + be32(Flag.offered)))
            let answer = try reply()
            guard answer.command == "O", answer.payload.count >= 12 else {
                throw Failure(description: "negotiation failed: the milter answered '\(answer.command)'")
            }
            let p = answer.payload
            let version = UInt32(p[0]) << 24 | UInt32(p[1]) << 16 | UInt32(p[2]) << 8 | UInt32(p[3])
            let wanted = UInt32(p[8]) << 24 | UInt32(p[9]) << 16 | UInt32(p[10]) << 8 | UInt32(p[11])
            guard version >= 2, version <= 6 else { throw Failure(description: "negotiation failed: version \(version)") }
            guard wanted & ~Flag.offered == 0 else {
                throw Failure(description: "negotiation failed: the milter asked for protocol flags 0x\(String(wanted, radix: 16)) not offered")
            }
            guard wanted & Flag.noRcpt == 0 else {
                throw Failure(description: "the milter asks not to be sent RCPT: nothing to measure")
            }
            guard wanted & Flag.noReplyRcpt == 0 else {
                throw Failure(description: "the milter does not answer RCPT: nothing to measure")
            }
            flags = wanted
        }

        /// Sends a command of the session; waits for its reply unless the milter
        /// said it sends none. Nil: no reply was due.
        func command(_ command: Character, _ payload: [UInt8], skip: UInt32,
                              noReply: UInt32) throws -> Character? {
            if flags & skip != 0 { return nil }
            try send(MilterLoadGenerator.packet(command, payload))
            if flags & noReply != 0 { return nil }
            return try reply().command
        }
    }

    static func be32(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)]
    }

    static func connection(index: Int, options: Options, countFrom: ContinuousClock.Instant,
                           end: ContinuousClock.Instant) -> PolicyLoadGenerator.Report {
        var report = PolicyLoadGenerator.Report(answered: 0, seconds: 0, latenciesMicros: [], actions: [:], errors: [],
                                                transcript: [])
        var rng = UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15 | 1
        func random() -> UInt64 {
            rng ^= rng << 13
            rng ^= rng >> 7
            rng ^= rng << 17
            return rng
        }
        var known: [(client: String, sender: String)] = []
        var counter = 0
        // Sessions the milter ended before RCPT, by stage and reply.
        var endedEarly: [String: Int] = [:]
        var link: Link?
        do {
            while ContinuousClock.now < end {
                if link == nil {
                    let opened = try Link(options: options)
                    try opened.negotiate()
                    link = opened
                }
                let l = link!
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
                var early: String?
                var inMessage = false
                if let r = try l.command("C", connectPayload, skip: Flag.noConnect, noReply: Flag.noReplyConnect),
                   r != "c" {
                    early = "connect '\(r)'"
                }
                if early == nil, let r = try l.command("H", Array("mail.bench.example".utf8) + [0], skip: Flag.noHelo,
                                                           noReply: Flag.noReplyHelo), r != "c" {
                    early = "HELO '\(r)'"
                }
                if early == nil {
                    inMessage = true
                    if let r = try l.command("M", Array("<\(message.sender)>".utf8) + [0], skip: Flag.noMail,
                                                 noReply: Flag.noReplyMail), r != "c" {
                        early = "MAIL '\(r)'"
                    }
                }
                if let early {
                    endedEarly[early, default: 0] += 1
                } else {
                    let sentAt = ContinuousClock.now
                    try l.send(packet("R", Array("<user\(index)@example.net>".utf8) + [0]))
                    let reply = try l.reply()
                    let now = ContinuousClock.now
                    if now >= countFrom && now <= end {
                        report.answered += 1
                        let took = now - sentAt
                        report.latenciesMicros.append(UInt32(min(Int64(UInt32.max),
                                                                 took.components.seconds * 1_000_000
                                                                     + took.components.attoseconds / 1_000_000_000_000)))
                        report.actions[String(reply.command), default: 0] += 1
                    }
                }
                // End the session as Postfix does: abort the message, then quit.
                let abort = inMessage ? packet("A") : []
                if options.reconnect {
                    try l.send(abort + packet("Q"))
                    link = nil
                } else {
                    try l.send(abort + packet("K"))
                }
            }
            if let link { try? link.send(packet("Q")) }
        } catch {
            report.errors.append("\(error)")
        }
        for (stage, count) in endedEarly.sorted(by: { $0.key < $1.key }) {
            report.errors.append("\(count) sessions ended before RCPT: the milter answered \(stage)")
        }
        return report
    }
}
