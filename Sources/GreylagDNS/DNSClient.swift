import CoreMetrics
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The daemon's DNS client: asks the configured servers over UDP (TCP when
/// an answer is truncated), never blocking an event loop, within a deadline
/// per lookup, with a cache in front.
///
/// - Every query goes out from a new UDP socket bound to a port the kernel
///   picks at random (Linux randomises ephemeral ports), connected to the
///   server, with an ID from `SystemRandomNumberGenerator`; an answer counts
///   only if it comes from that server and carries the ID, the question
///   (name, type, class IN) and the response bit. A blind spoofer has to
///   guess about 32 bits per query.
/// - A lookup has `settings.timeout` in all. The servers are asked in turn,
///   `attempts` rounds, each try getting an equal share of the deadline; a
///   SERVFAIL or REFUSED moves to the next try at once, and a late answer to
///   an earlier try is still taken. When the deadline passes, the lookup
///   ends with `.failure(.timeout)`.
/// - CNAME chains in an answer are followed (at most `maxCNAMEs` links,
///   loops refused); a chain that leaves the answer is asked for again.
/// - Lookups of the same name and type while one is in flight wait for it
///   instead of asking again; at most `settings.maxInFlight` different
///   lookups go out at once, more fail at once (`timeout`, counted as
///   `overload`).
/// - The cache keeps answers for their TTL (at most `maxTTL`), NXDOMAIN and
///   NODATA for the SOA's negative TTL (RFC 2308, at most
///   `maxNegativeTTL`), and failures for `failureTTL`, so that a dead
///   resolver costs one deadline per name, not one per query.
public final class DNSClient: DNSResolving, Sendable {
    public let settings: DNSSettings
    private let group: any EventLoopGroup
    private let logger: Logger
    private let metrics: DNSMetrics
    private let state: Mutex<State>
    /// Links of a CNAME chain followed at most.
    public static let maxCNAMEs = DNSAnswerChain.maxLinks

    private struct State {
        var cache: DNSCache
        var inFlight: [DNSCache.Key: Task<DNSLookupResult, Never>] = [:]
        var closed = false
    }

    public init(settings: DNSSettings, group: any EventLoopGroup, logger: Logger,
                metricsFactory: (any MetricsFactory)? = nil) {
        self.settings = settings
        self.group = group
        self.logger = logger
        self.metrics = DNSMetrics(factory: metricsFactory ?? NOOPMetricsHandler.instance)
        self.state = Mutex(State(cache: DNSCache(capacity: settings.cacheEntries)))
    }

    /// Stops the client: lookups from now on fail with `noResolver`, and
    /// those in flight end now (with `timeout`) instead of at their deadline.
    public func shutdown() {
        let tasks = state.withLock { s -> [Task<DNSLookupResult, Never>] in
            s.closed = true
            return Array(s.inFlight.values)
        }
        for t in tasks { t.cancel() }
    }

    /// Entries in the cache now (for tests and the log).
    public var cachedEntries: Int { state.withLock { $0.cache.count } }

    static func now() -> UInt64 { UInt64(max(0, NIODeadline.now().uptimeNanoseconds)) }

    public func lookup(_ name: String, _ type: DNSRecordType) async -> DNSLookupResult {
        guard let canonical = try? DNSWire.canonical(name) else {
            metrics.lookup(type, .failure(.badName))
            return .failure(.badName)
        }
        let key = DNSCache.Key(name: canonical, type: type)
        enum Step {
            case answered(DNSLookupResult)
            case wait(Task<DNSLookupResult, Never>)
            case overload
            case closed
        }
        let now = Self.now()
        let step = state.withLock { s -> Step in
            if s.closed { return .closed }
            if let hit = s.cache.get(key, now: now) { return .answered(hit) }
            if let t = s.inFlight[key] { return .wait(t) }
            if s.inFlight.count >= settings.maxInFlight { return .overload }
            let t = Task { await self.resolveAndKeep(key) }
            s.inFlight[key] = t
            return .wait(t)
        }
        switch step {
        case .closed:
            metrics.lookup(type, .failure(.noResolver))
            return .failure(.noResolver)
        case .answered(let r):
            metrics.cacheHit(type)
            metrics.lookup(type, r)
            return r
        case .wait(let t):
            let r = await t.value
            metrics.lookup(type, r)
            return r
        case .overload:
            metrics.overload(type)
            logger.debug("DNS: more than \(settings.maxInFlight) lookups in flight; \(canonical) \(type) not asked")
            return .failure(.timeout)
        }
    }

    /// Resolves `key`, puts the outcome in the cache and leaves the in-flight table.
    private func resolveAndKeep(_ key: DNSCache.Key) async -> DNSLookupResult {
        let started = NIODeadline.now()
        let (result, ttl) = await resolve(key, deadline: started + .nanoseconds(Int64(settings.timeout * 1e9)))
        metrics.took(NIODeadline.now() - started)
        if case .failure(let f) = result {
            logger.debug("DNS: \(key.name) \(key.type): \(f.rawValue)")
        }
        let now = Self.now()
        state.withLock { s in
            s.inFlight[key] = nil
            s.cache.put(key, result, ttl: ttl, now: now)
        }
        return result
    }

    /// The outcome and how many nanoseconds it may be cached.
    func resolve(_ key: DNSCache.Key, deadline: NIODeadline) async -> (DNSLookupResult, UInt64) {
        var chain = DNSAnswerChain(name: key.name, type: key.type, settings: settings)
        while true {
            let reading: DNSAnswerChain.Reading
            switch await exchange(name: chain.name, type: key.type, deadline: deadline) {
            case .failure(let f): reading = .result(.failure(f), seconds: 0)
            case .message(let m): reading = chain.read(m)
            }
            switch reading {
            case .ask:
                continue
            case .result(let r, let seconds):
                if case .failure(.malformed) = r {
                    logger.debug("DNS: \(key.name) \(key.type): a CNAME chain longer than \(Self.maxCNAMEs) or in a loop")
                }
                if case .failure = r { return (r, UInt64(settings.failureTTL * 1e9)) }
                return (r, UInt64(seconds) * 1_000_000_000)
            }
        }
    }

    // MARK: One question to the servers

    enum Exchanged {
        case message(DNSWire.Message)
        case failure(DNSFailure)
    }

    enum Event: Sendable {
        /// A matching answer to try `k`.
        case answer(Int, DNSWire.Message)
        /// A matching answer with TC set: ask try `k`'s server over TCP.
        case truncated(Int)
        /// Try `k` could not be sent, or its TCP exchange failed.
        case failed(Int)
        /// Try `k`'s share of the deadline is over.
        case tick(Int)
        case deadline
    }

    /// Channels and timers of one exchange, closed when it ends (also those
    /// that open after it ended).
    private final class Resources: Sendable {
        private let open = Mutex<(channels: [any Channel], timers: [Scheduled<Void>], closed: Bool)>(([], [], false))

        func add(_ c: any Channel) {
            let closed = open.withLock { o in
                if !o.closed { o.channels.append(c) }
                return o.closed
            }
            if closed { c.close(promise: nil) }
        }

        func add(_ t: Scheduled<Void>) {
            let closed = open.withLock { o in
                if !o.closed { o.timers.append(t) }
                return o.closed
            }
            if closed { t.cancel() }
        }

        func closeAll() {
            let (channels, timers) = open.withLock { o in
                o.closed = true
                defer { o.channels = []; o.timers = [] }
                return (o.channels, o.timers)
            }
            for t in timers { t.cancel() }
            for c in channels { c.close(promise: nil) }
        }
    }

    /// Asks the servers in turn for `name` and `type` until one gives a
    /// definite answer (NOERROR or NXDOMAIN) or the deadline passes.
    func exchange(name: String, type: DNSRecordType, deadline: NIODeadline) async -> Exchanged {
        let servers = settings.servers
        guard !servers.isEmpty else { return .failure(.noResolver) }
        let loop = group.next()
        let tries = servers.count * max(1, settings.attempts)
        let start = NIODeadline.now()
        let total = deadline - start
        guard total > .zero else { return .failure(.timeout) }
        let slice = TimeAmount.nanoseconds(max(1, total.nanoseconds / Int64(tries)))
        let (events, continuation) = AsyncStream.makeStream(of: Event.self)
        let resources = Resources()
        defer {
            resources.closeAll()
            continuation.finish()
        }
        resources.add(loop.scheduleTask(deadline: deadline) { continuation.yield(.deadline) })

        var started = 0
        var ended = Set<Int>()
        var lastFailure: DNSFailure? = nil
        var tcpAsked = Set<Int>()

        func startTry() {
            let k = started
            started += 1
            let server = servers[k % servers.count]
            resources.add(loop.scheduleTask(deadline: min(deadline, start + slice * Int64(k + 1))) {
                continuation.yield(.tick(k))
            })
            sendUDP(k, to: server, name: name, type: type, loop: loop, resources: resources, events: continuation)
        }
        startTry()
        for await event in events {
            switch event {
            case .answer(let k, let m):
                switch m.rcode {
                case .noError, .nxDomain:
                    return .message(m)
                case .servFail:
                    lastFailure = .serverFailure
                default:
                    lastFailure = .refused
                }
                ended.insert(k)
                if started < tries { startTry() } else if ended.count >= started { return .failure(lastFailure ?? .refused) }
            case .truncated(let k):
                guard tcpAsked.insert(k).inserted else { continue }
                let server = servers[k % servers.count]
                sendTCP(k, to: server, name: name, type: type, deadline: deadline, loop: loop,
                        resources: resources, events: continuation)
            case .failed(let k):
                ended.insert(k)
                if started < tries { startTry() } else if ended.count >= started { return .failure(lastFailure ?? .timeout) }
            case .tick(let k):
                if k == started - 1 && started < tries { startTry() }
            case .deadline:
                return .failure(lastFailure ?? .timeout)
            }
        }
        // Cancelled (the client shuts down).
        return .failure(.timeout)
    }

    /// Whether `m` answers the query `id` for `name` and `type`.
    static func matches(_ m: DNSWire.Message, id: UInt16, name: String, type: DNSRecordType) -> Bool {
        guard m.id == id, m.isResponse, m.opcode == 0, let q = m.question else { return false }
        return q.name == name && q.type == type.rawValue && q.class == 1
    }

    /// A query for `name` and `type` with a fresh random ID, and the
    /// server's socket address; nil when either cannot be made.
    static func newQuery(name: String, type: DNSRecordType, to server: DNSServerAddress)
        -> (id: UInt16, query: [UInt8], address: SocketAddress)? {
        var random = SystemRandomNumberGenerator()
        let id = UInt16.random(in: 0...UInt16.max, using: &random)
        guard let query = try? DNSWire.query(id: id, name: name, type: type.rawValue),
              let address = try? server.socketAddress() else { return nil }
        return (id, query, address)
    }

    private func sendUDP(_ k: Int, to server: DNSServerAddress, name: String, type: DNSRecordType,
                         loop: any EventLoop, resources: Resources, events: AsyncStream<Event>.Continuation) {
        guard let (id, query, address) = Self.newQuery(name: name, type: type, to: server) else {
            events.yield(.failed(k))
            return
        }
        let bootstrap = DatagramBootstrap(group: loop)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4096))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        UDPAnswerHandler(server: address, id: id, name: name, type: type, try: k, events: events))
                }
            }
        // Connected: the kernel picks a random ephemeral port and drops
        // datagrams from any other address; ICMP unreachable ends the try.
        bootstrap.connect(to: address).whenComplete { result in
            switch result {
            case .success(let channel):
                resources.add(channel)
                var buffer = channel.allocator.buffer(capacity: query.count)
                buffer.writeBytes(query)
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer)).whenFailure { _ in
                    events.yield(.failed(k))
                }
            case .failure:
                events.yield(.failed(k))
            }
        }
    }

    private func sendTCP(_ k: Int, to server: DNSServerAddress, name: String, type: DNSRecordType, deadline: NIODeadline,
                         loop: any EventLoop, resources: Resources, events: AsyncStream<Event>.Continuation) {
        guard let (id, query, address) = Self.newQuery(name: name, type: type, to: server) else {
            events.yield(.failed(k))
            return
        }
        let remaining = deadline - NIODeadline.now()
        guard remaining > .zero else { return }
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(remaining)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(TCPFrameDecoder(), maximumBufferSize: 70_000))
                    try channel.pipeline.syncOperations.addHandler(
                        TCPAnswerHandler(id: id, name: name, type: type, try: k, events: events))
                }
            }
        bootstrap.connect(to: address).whenComplete { result in
            switch result {
            case .success(let channel):
                resources.add(channel)
                var buffer = channel.allocator.buffer(capacity: query.count + 2)
                buffer.writeInteger(UInt16(query.count))
                buffer.writeBytes(query)
                channel.writeAndFlush(buffer).whenFailure { _ in events.yield(.failed(k)) }
            case .failure:
                events.yield(.failed(k))
            }
        }
    }
}
