import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A closed-loop load generator for policy servers: N persistent
/// connections, each sending the next request as soon as the previous one
/// is answered, with a chosen share of brand-new triplets.
public struct PolicyLoadGenerator: Sendable {
    public struct Options: Sendable {
        public var host = "127.0.0.1"
        public var port = 10023
        /// Unix socket path; used instead of host/port when set.
        public var unixPath: String? = nil
        public var connections = 16
        /// Share (0...1) of requests that carry a triplet never sent before.
        public var newShare = 0.3
        public var duration: Double = 10
        /// Seconds at the start that are not counted.
        public var warmup: Double = 1
        public var threads = 1
        /// Stop after this many answers in total (0: run for `duration`).
        public var maxRequests = 0
        /// Seed of the workload, so runs can be repeated.
        public var seed: UInt64 = 1
        /// Only IPv4 clients (by default half the new triplets come from
        /// IPv6 clients); for servers that do not greylist IPv6 clients,
        /// such as gross, which lets them pass unexamined.
        public var ipv4Only = false

        public init() {}
    }

    /// What one run measured.
    public struct Report: Sendable {
        public var answered: Int
        public var seconds: Double
        public var latenciesMicros: [UInt32]
        public var actions: [String: Int]
        public var errors: [String]
        /// Every answered request (client, sender, recipient, action), in order per connection.
        public var transcript: [AnsweredRequest]
        /// With the transcript: the request each connection had sent and got
        /// no answer to when it ended (its server killed, say); at most one
        /// per connection. The server may or may not have acted on it.
        public var unanswered: [SentRequest] = []

        public var rate: Double { seconds > 0 ? Double(answered) / seconds : 0 }

        public func percentile(_ p: Double) -> Double {
            guard !latenciesMicros.isEmpty else { return 0 }
            let sorted = latenciesMicros.sorted()
            let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
            return Double(sorted[max(0, index)]) / 1000
        }
    }

    public struct SentRequest: Sendable, Hashable {
        public var client: String
        public var sender: String
        public var recipient: String
    }

    public struct AnsweredRequest: Sendable, Hashable {
        public var client: String
        public var sender: String
        public var recipient: String
        public var action: String
        /// When the answer came, in `DispatchTime` uptime nanoseconds.
        public var answeredAt: UInt64 = 0
    }

    public var options: Options

    public init(options: Options) {
        self.options = options
    }

    public func run(keepTranscript: Bool = false) async throws -> Report {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.threads))
        let start = NIODeadline.now()
        let countFrom = start + .milliseconds(Int64(options.warmup * 1000))
        let end = countFrom + .milliseconds(Int64(options.duration * 1000))
        let budget = Budget(options.maxRequests > 0 ? options.maxRequests : Int.max)
        var futures: [EventLoopFuture<ConnectionResult>] = []
        for index in 0..<options.connections {
            let loop = group.next()
            let promise = loop.makePromise(of: ConnectionResult.self)
            let workload = Workload(seed: options.seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15,
                                    connection: index, newShare: options.newShare, ipv4Only: options.ipv4Only)
            let opts = options
            let bootstrap = ClientBootstrap(group: loop)
                .channelOption(.allowRemoteHalfClosure, value: false)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if opts.unixPath == nil {
                            try channel.syncOptions?.setOption(.tcpOption(.tcp_nodelay), value: 1)
                        }
                        try channel.pipeline.syncOperations.addHandler(
                            LoadHandler(workload: workload, countFrom: countFrom, end: end, budget: budget,
                                        keepTranscript: keepTranscript, promise: promise))
                    }
                }
            let connect = opts.unixPath.map { bootstrap.connect(unixDomainSocketPath: $0) }
                ?? bootstrap.connect(host: opts.host, port: opts.port)
            connect.whenFailure { promise.fail($0) }
            futures.append(promise.futureResult)
        }
        var report = Report(answered: 0, seconds: 0, latenciesMicros: [], actions: [:], errors: [], transcript: [])
        var lastAnswer = countFrom
        for future in futures {
            do {
                let r = try await future.get()
                report.answered += r.latencies.count
                report.latenciesMicros += r.latencies
                report.transcript += r.transcript
                report.unanswered += r.unanswered
                for (k, v) in r.actions { report.actions[k, default: 0] += v }
                if let e = r.error { report.errors.append(e) }
                lastAnswer = max(lastAnswer, r.lastAnswer)
            } catch {
                report.errors.append("\(error)")
            }
        }
        report.seconds = Double((lastAnswer - countFrom).nanoseconds) / 1e9
        try? await group.shutdownGracefully()
        return report
    }
}

/// Generates the requests of one connection.
struct Workload: Sendable {
    private var rng: UInt64
    private let connection: Int
    private let newShare: Double
    private let ipv4Only: Bool
    private var known: [(client: String, sender: String, recipient: String)] = []
    private var counter = 0

    init(seed: UInt64, connection: Int, newShare: Double, ipv4Only: Bool = false) {
        self.rng = seed | 1
        self.connection = connection
        self.newShare = newShare
        self.ipv4Only = ipv4Only
    }

    mutating func random() -> UInt64 {
        rng ^= rng << 13
        rng ^= rng >> 7
        rng ^= rng << 17
        return rng
    }

    /// The next triplet: brand new with probability `newShare`, else one sent before.
    mutating func next() -> (client: String, sender: String, recipient: String) {
        let fresh = known.isEmpty || Double(random() % 10_000) / 10_000 < newShare
        if !fresh { return known[Int(random() % UInt64(known.count))] }
        counter += 1
        let r = random()
        let client = ipv4Only || r & 1 == 0
            ? "198.\(18 + (r >> 8) % 2).\((r >> 16) % 256).\((r >> 24) % 254 + 1)"
            : "2001:db8:\(String((r >> 8) % 65536, radix: 16)):\(String((r >> 24) % 65536, radix: 16))::\(String((r >> 40) % 65535 + 1, radix: 16))"
        let triplet = (client: client,
                       sender: "sender\(connection)x\(counter)@bench\((r >> 32) % 1000).example",
                       recipient: "user\((r >> 48) % 5000)@example.net")
        if known.count < 10_000 { known.append(triplet) } else { known[Int(random() % 10_000)] = triplet }
        return triplet
    }

    /// A request with the attributes Postfix 3.7 sends at RCPT.
    static func request(_ t: (client: String, sender: String, recipient: String), instance: Int) -> String {
        """
        request=smtpd_access_policy
        protocol_state=RCPT
        protocol_name=ESMTP
        client_address=\(t.client)
        client_name=unknown
        client_port=40000
        reverse_client_name=unknown
        server_address=127.0.0.1
        server_port=25
        helo_name=mail.bench.example
        sender=\(t.sender)
        recipient=\(t.recipient)
        recipient_count=0
        queue_id=
        instance=\(String(instance, radix: 16)).5f3e1a2b.1c4d.0
        size=0
        etrn_domain=
        stress=
        sasl_method=
        sasl_username=
        sasl_sender=
        ccert_subject=
        ccert_issuer=
        ccert_fingerprint=
        ccert_pubkey_fingerprint=
        encryption_protocol=
        encryption_cipher=
        encryption_keysize=0
        policy_context=
        compatibility_level=3.6
        mail_version=3.7.11


        """
    }
}

/// Requests left to send, shared by all connections.
final class Budget: Sendable {
    private let left: Atomic<Int>
    init(_ count: Int) { left = Atomic(count) }
    /// Takes one request from the budget; false when it is spent.
    func take() -> Bool { left.subtract(1, ordering: .relaxed).newValue >= 0 }
}

struct ConnectionResult: Sendable {
    var latencies: [UInt32] = []
    var actions: [String: Int] = [:]
    var transcript: [PolicyLoadGenerator.AnsweredRequest] = []
    var unanswered: [PolicyLoadGenerator.SentRequest] = []
    var lastAnswer = NIODeadline.uptimeNanoseconds(0)
    var error: String?
}

final class LoadHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var workload: Workload
    private let countFrom: NIODeadline
    private let end: NIODeadline
    private let budget: Budget
    private let keepTranscript: Bool
    private let promise: EventLoopPromise<ConnectionResult>
    private var result = ConnectionResult()
    private var pending = ByteBuffer()
    private var sentAt = NIODeadline.now()
    private var current: (client: String, sender: String, recipient: String) = ("", "", "")
    private var instance = 0
    /// A request is sent and its answer not read yet.
    private var awaiting = false
    private var done = false

    init(workload: Workload, countFrom: NIODeadline, end: NIODeadline, budget: Budget,
         keepTranscript: Bool, promise: EventLoopPromise<ConnectionResult>) {
        self.workload = workload
        self.countFrom = countFrom
        self.end = end
        self.budget = budget
        self.keepTranscript = keepTranscript
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        sendNext(context: context)
    }

    private func sendNext(context: ChannelHandlerContext) {
        if NIODeadline.now() >= end || !budget.take() {
            finish(context: context, error: nil)
            return
        }
        current = workload.next()
        instance += 1
        sentAt = .now()
        awaiting = true
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: Workload.request(current, instance: instance))),
                              promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        pending.writeBuffer(&buffer)
        let view = pending.readableBytesView
        // A reply is "action=...\n\n"; the load is closed-loop, so one at a time.
        guard let end = view.firstRange(of: [UInt8(ascii: "\n"), UInt8(ascii: "\n")]) else { return }
        let now = NIODeadline.now()
        let line = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
        pending.moveReaderIndex(to: end.upperBound)
        pending.discardReadBytes()
        awaiting = false
        var action = line.hasPrefix("action=") ? String(line.dropFirst(7)) : line
        if now >= countFrom {
            result.latencies.append(UInt32(min(Int64(UInt32.max), (now - sentAt).nanoseconds / 1000)))
            result.lastAnswer = now
            let word = action.prefix { $0 != " " }
            result.actions[String(word), default: 0] += 1
        }
        if keepTranscript {
            action = action.replacingOccurrences(of: "\t", with: " ")
            result.transcript.append(.init(client: current.client, sender: current.sender,
                                           recipient: current.recipient, action: action,
                                           answeredAt: now.uptimeNanoseconds))
        }
        sendNext(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context: context, error: done ? nil : "connection closed by server")
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(context: context, error: "\(error)")
    }

    private func finish(context: ChannelHandlerContext, error: String?) {
        guard !done else { return }
        done = true
        result.error = error
        if awaiting && keepTranscript {
            result.unanswered.append(.init(client: current.client, sender: current.sender, recipient: current.recipient))
        }
        promise.succeed(result)
        context.close(promise: nil)
    }
}
