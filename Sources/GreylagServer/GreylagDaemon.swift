import Foundation
import GreylagCore
import GreylagDNS
import GreylagSPF
import GreylagMariaDB
import GreylagPostgres
import GreylagStore
import Logging
import NIOCore
import NIOPosix
import Milter
import PolicyProtocol
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The greylag daemon as a service: opens the store, binds the listeners,
/// expires old records in the background, and on graceful shutdown stops
/// accepting, lets every connection finish its request and closes the store.
public final class GreylagDaemon: Service {
    public let configuration: GreylagConfiguration
    private let logger: Logger
    private let givenGroup: (any EventLoopGroup)?
    private let onListening: @Sendable ([String]) -> Void
    private let openStore: @Sendable (GreylagConfiguration, any EventLoop) async throws -> any GreylistStore
    private let clock: @Sendable () -> Int64
    private let notifier: SystemdNotifier?
    /// The resolver of the DNS checks, when given (tests); see `GreylistService.resolver`.
    private let dnsResolver: (any DNSResolving)?
    /// The SPF check of SPF keying, when given.
    private let spfCheck: SPFCheck?
    private let resolverBox = Mutex<DNSClient?>(nil)

    /// The DNS client of the running daemon (made on its event loops when it
    /// starts, shut down when it stops); nil before `run`.
    public var resolver: DNSClient? { resolverBox.withLock { $0 } }

    /// - Parameters:
    ///   - openStore: opens the store; the configuration's backend by default.
    ///   - clock: Unix seconds; the wall clock by default.
    ///   - onListening: called with the bound listener addresses once the
    ///     daemon accepts connections.
    ///   - notifier: told when the daemon is ready, reloads and stops (systemd's `NOTIFY_SOCKET`).
    public init(configuration: GreylagConfiguration, logger: Logger,
                group: (any EventLoopGroup)? = nil,
                openStore: @escaping @Sendable (GreylagConfiguration, any EventLoop) async throws -> any GreylistStore
                    = GreylagDaemon.openConfiguredStore,
                clock: @escaping @Sendable () -> Int64 = unixNow,
                notifier: SystemdNotifier? = nil,
                resolver: (any DNSResolving)? = nil, spf: SPFCheck? = nil,
                onListening: @escaping @Sendable ([String]) -> Void = { _ in }) {
        self.dnsResolver = resolver
        self.spfCheck = spf
        self.configuration = configuration
        self.logger = logger
        self.givenGroup = group
        self.openStore = openStore
        self.clock = clock
        self.notifier = notifier
        self.onListening = onListening
    }

    /// The default store: the SQLite file of the configuration, its writer
    /// running on `loop`.
    /// The store the configuration names: SQLite (its writer on `loop`) or PostgreSQL.
    @Sendable public static func openConfiguredStore(_ config: GreylagConfiguration, loop: any EventLoop) async throws
        -> any GreylistStore {
        try await openStore(config, loop: loop)
    }

    /// The store the configuration names; the SQLite writer runs on `loop`,
    /// or on a queue of its own without one (the admin commands).
    public static func openStore(_ config: GreylagConfiguration, loop: (any EventLoop)?) async throws -> any GreylistStore {
        switch config.backend {
        case .sqlite:
            guard let loop else {
                return try SQLiteStore(path: config.storePath, synchronous: config.synchronous,
                                       flushInterval: .seconds(config.flushInterval))
            }
            return try openSQLite(config, loop: loop)
        case .postgresql(let settings):
            var s = settings
            s.queryTimeout = config.storeTimeout
            return try await PostgresStore(settings: s)
        case .mysql(let settings):
            var s = settings
            s.queryTimeout = config.storeTimeout
            return try await MariaDBBackend.open(s)
        }
    }

    /// With `synchronous = "normal"` a commit does not wait for the disk,
    /// so the writer runs on `loop` and commits the decisions that loop read
    /// in one turn without a hand-off (decisions from the other loops join
    /// the next group). Always the same loop: a loop of another group (the
    /// HTTP server's) may already be shut down when the writer is called.
    /// With `full` every commit waits for an fsync, which must not hold up
    /// the connections of a loop: the writer gets a thread of its own.
    @Sendable public static func openSQLite(_ config: GreylagConfiguration, loop: any EventLoop) throws -> any GreylistStore {
        switch config.synchronous {
        case .normal:
            return try SQLiteStore(path: config.storePath, synchronous: .normal,
                                   flushInterval: .seconds(config.flushInterval), writerExecutor: { loop.execute($0) })
        case .full:
            return try SQLiteStore(path: config.storePath, synchronous: .full, flushInterval: .seconds(config.flushInterval))
        }
    }

    /// Opens the store with `open` and reads its manual entries once, so a
    /// store whose tables cannot be read is refused here, not found broken
    /// by every decision; closes it again when the read fails.
    static func openChecked(_ open: () async throws -> any GreylistStore) async throws -> any GreylistStore {
        let store = try await open()
        do {
            _ = try await store.manualEntries()
        } catch {
            try? await store.close()
            throw ManualEntriesUnreadable(underlying: error)
        }
        return store
    }

    /// Seconds the daemon waits for its store at start before it serves
    /// with the failure mode (`store.timeout` when that is longer).
    static let storeStartWait: Double = 10

    /// The result of `task` if it ends within `seconds`, else nil (and the task goes on).
    static func result<T: Sendable>(of task: Task<T, any Error>, within seconds: Double) async -> Result<T, any Error>? {
        let first = FirstAnswer<Result<T, any Error>?>()
        return await withCheckedContinuation { continuation in
            first.wait(continuation)
            let timer = Task {
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                first.answer(nil)
            }
            Task {
                let r = await task.result
                timer.cancel()
                first.answer(r)
            }
        }
    }

    /// Resumes a continuation with the first answer given, ignores the rest.
    final class FirstAnswer<T: Sendable>: Sendable {
        private let waiter = Mutex<CheckedContinuation<T, Never>?>(nil)
        func wait(_ c: CheckedContinuation<T, Never>) { waiter.withLock { $0 = c } }
        func answer(_ value: T) {
            waiter.withLock { c in
                c?.resume(returning: value)
                c = nil
            }
        }
    }

    struct ManualEntriesUnreadable: Error, CustomStringConvertible {
        var underlying: any Error
        var description: String { "cannot read the manual list entries: \(underlying)" }
    }

    /// The critical line when the store cannot be opened at start: why,
    /// what greylag does meanwhile and what the operator can do.
    static func cannotOpenMessage(_ config: GreylagConfiguration, reason: String) -> String {
        let mode = config.failureMode == .pass ? "passes (store.failure_mode = \"pass\")"
            : "is deferred (store.failure_mode = \"defer\")"
        var line = "cannot open store \(config.backendDescription): \(reason). "
            + "greylag serves anyway: every message that needs the store \(mode) until it opens; "
            + "retrying after 1 s, 2 s, 4 s ..., then every \(DurationText.format(config.reopenInterval)), "
            + "and on reload (SIGHUP, greylag reload). "
        switch config.backend {
        case .sqlite:
            let p = config.storePath
            line += "If \(p) is damaged or not greylag's, move it aside with its -wal and -shm files "
                + "(mv \(p) \(p).broken; mv \(p)-wal \(p).broken-wal; mv \(p)-shm \(p).broken-shm) "
                + "and greylag creates a fresh store at the next attempt; "
                + "if it cannot be written, fix its owner and mode or those of its directory"
        case .postgresql, .mysql:
            line += "Check that the database server runs and accepts the connection settings of [store]"
        }
        return line
    }

    public func run() async throws {
        // One event loop per core (`server.threads`) reads requests and
        // writes answers; the store's single writer commits what all of
        // them submitted in groups (see `openSQLite`).
        let ownGroup = givenGroup == nil
            ? MultiThreadedEventLoopGroup(numberOfThreads: configuration.effectiveThreads) : nil
        defer { ownGroup?.shutdownGracefully { _ in } }
        let group = givenGroup ?? ownGroup!
        try await serve(on: group)
    }

    private func serve(on group: any EventLoopGroup) async throws {
        let config = configuration
        // A store that cannot be opened (a damaged or foreign file, a
        // database server that is down) must not stop mail: the daemon
        // serves with a stand-in whose every call fails, so decisions get
        // the failure mode, and tries again until the real store opens.
        let storeLoop = group.next()
        let openStore = self.openStore
        let open: @Sendable () async throws -> any GreylistStore = { try await Self.openChecked { try await openStore(config, storeLoop) } }
        // A store that takes longer than `startWait` to open (a database
        // server that does not answer) goes on opening in the background:
        // the listeners must not wait for it longer than that. A database
        // server's first connection and schema check take a few seconds on
        // a busy host, which must not start the daemon in failure mode.
        let opening = Task { try await open() }
        let startWait = max(config.storeTimeout, Self.storeStartWait)
        let store: any GreylistStore
        var openFailure: String? = nil
        var stillOpening: Task<any GreylistStore, any Error>? = nil
        switch await Self.result(of: opening, within: startWait) {
        case .success(let s)?:
            store = s
        case .failure(let error)?:
            openFailure = "\(error)"
            store = SwappableStore(UnavailableStore(reason: "\(error)"))
        case nil:
            let why = "still opening after \(DurationText.format(Int64(startWait.rounded(.up))))"
            openFailure = why
            stillOpening = opening
            store = SwappableStore(UnavailableStore(reason: why))
        }
        if StoreTestSwitch.answerBeforeCommit {
            logger.critical("""
                GREYLAG_TEST_ANSWER_BEFORE_COMMIT=1: TEST ONLY, the SQLite store answers before it commits; \
                a crash loses decisions the MTAs were told. Never set this in production.
                """)
        }
        if StoreTestSwitch.noTouchFlush {
            logger.critical("GREYLAG_TEST_NO_TOUCH_FLUSH=1: TEST ONLY, the SQLite store never writes the counts of retries until it is closed. Never set this in production.")
        }
        // One DNS client for every check that asks DNS, its metrics in the daemon's registry.
        let metrics = GreylagMetrics()
        let resolver = DNSClient(settings: config.resolverSettings, group: group, logger: logger,
                                 metricsFactory: metrics.factory)
        resolverBox.withLock { $0 = resolver }
        defer { resolver.shutdown() }
        let service = GreylistService(policy: config.policy, lists: config.lists, replies: Self.replies(config),
                                      milterReplies: Self.milterReplies(config), store: store, failureMode: config.failureMode,
                                      logger: logger, clock: clock, metrics: metrics, dns: config.dns, checks: config.dnsChecks,
                                      resolver: dnsResolver ?? resolver,
                                      spf: spfCheck ?? SPFCheckResult.check(SPFEvaluator(resolver: dnsResolver ?? resolver)))
        let reopener: StoreReopener?
        if let openFailure, let swappable = store as? SwappableStore {
            service.health.cannotOpen(openFailure)
            logger.critical("\(Self.cannotOpenMessage(config, reason: openFailure))")
            reopener = StoreReopener(store: swappable, open: open, service: service, logger: logger,
                                     pending: stillOpening, notifier: notifier)
        } else {
            reopener = nil
            do {
                try await service.refreshManualEntries()
            } catch {
                logger.error("cannot read manual list entries from the store, serving without them until the next reload: \(error)")
            }
        }
        let tracker = ConnectionTracker()
        let (softLimit, _) = DescriptorBudget.raiseLimit()
        let (caps, capWarning) = DescriptorBudget.fit(
            .init(policy: config.policyListeners.isEmpty && config.policyHelperListeners.isEmpty
                      && config.greylistdListeners.isEmpty
                      ? 0 : config.policyMaxConnections,
                  milter: config.milterListeners.isEmpty ? 0 : config.milterMaxConnections,
                  http: config.httpListener == nil ? 0 : config.httpMaxConnections),
            limit: softLimit, inUse: DescriptorBudget.inUse(),
            reserve: DescriptorBudget.reserve(threads: config.effectiveThreads))
        if let capWarning { logger.warning("\(capWarning)") }
        let limits = Limits(policy: ConnectionLimit(kind: "policy", max: max(1, caps.policy), logger: logger,
                                                    metrics: service.metrics),
                            milter: ConnectionLimit(kind: "milter", max: max(1, caps.milter), logger: logger,
                                                    metrics: service.metrics))
        let mailboxes = EventLoopMailboxes(group: group)
        // `run` shuts the loops down after this returns; a store call that
        // ends later must not schedule its answer on them.
        defer { mailboxes.close() }
        var servers: [any Channel] = []
        var milters: [any Channel] = []
        var greylistds: [any Channel] = []
        do {
            for address in config.policyListeners {
                servers.append(try await bindPolicy(address, group: group, service: service, tracker: tracker,
                                                    limits: limits, mailboxes: mailboxes))
            }
            for address in config.policyHelperListeners {
                do {
                    servers.append(try await bindPolicy(address, helpers: true, group: group, service: service,
                                                        tracker: tracker, limits: limits, mailboxes: mailboxes,
                                                        optional: config.helperListenIsDefault))
                } catch where config.helperListenIsDefault {
                    // The default socket is a convenience: a daemon that may
                    // not make /run/greylag serves everything else.
                    let line = "not serving the qmail helpers' default socket \(address): \(error) "
                        + "(policy.helper_listen names their socket; [] for none)"
                    logger.notice("\(line)")
                }
            }
            for address in config.milterListeners {
                milters.append(try await bindMilter(address, group: group, service: service, tracker: tracker,
                                                    limits: limits, mailboxes: mailboxes))
            }
            if !config.greylistdListeners.isEmpty {
                let timeout = TimeAmount.milliseconds(Int64(config.storeTimeout * 1000))
                let responder = GreylistdResponder(service: service, decisionTimeout: timeout, logger: logger)
                for address in config.greylistdListeners {
                    greylistds.append(try await bindGreylistd(address, responder: responder, group: group,
                                                              tracker: tracker, limits: limits))
                }
            }
        } catch {
            for server in servers + milters + greylistds { try? await server.close() }
            try? await store.close()
            throw error
        }
        let httpToken = LiveValue(config.httpToken)
        let reloader = ConfigReloader(configuration: config, service: service, httpToken: httpToken,
                                      notifier: notifier,
                                      reopenStore: { trigger in await reopener?.attempt(trigger: trigger) },
                                      logger: logger)
        let admin = AdminService(store: store, service: service, policy: config.policy, clock: clock,
                                 reload: { await reloader.reload(trigger: "admin command") }, logger: logger)
        var adminServer: (any Channel)? = nil
        if let path = config.adminSocketPath {
            do {
                adminServer = try await bindAdmin(path: path, group: group, admin: admin, metrics: service.metrics)
            } catch {
                for server in servers { try? await server.close() }
                try? await store.close()
                throw error
            }
        }
        let dashboard = DashboardSource(service: service, host: Self.hostName(),
                                        cacheSeconds: config.dashboardCacheSeconds, logger: logger)
        var httpTask: Task<Void, any Error>? = nil
        var httpGroup: ServiceGroup? = nil
        var httpBound: String? = nil
        if let address = config.httpListener {
            let (stream, continuation) = AsyncStream.makeStream(of: String.self)
            if case .unix(let path) = address {
                do {
                    try SocketPath.makeParent(of: path, logger: logger)
                    try Self.removeStaleSocket(path)
                } catch {
                    logger.critical("cannot serve HTTP on \(address): \(error)")
                    for server in servers + milters + greylistds { try? await server.close() }
                    try? await adminServer?.close()
                    try? await store.close()
                    throw error
                }
            }
            Self.warnIfOpen(address, token: config.httpToken, logger: logger)
            let settings = HTTPServer.Settings(address: address, token: httpToken,
                                               maxConnections: max(1, caps.http),
                                               idleTimeout: config.httpIdleTimeout,
                                               requestTimeout: config.httpRequestTimeout,
                                               socketMode: config.httpSocketMode)
            let app = HTTPServer.application(settings, service: service, admin: admin, dashboard: dashboard,
                                             tracker: tracker, logger: logger, onListening: { continuation.yield($0) })
            // Its own service group, so that shutdown can be graceful: a
            // cancelled Hummingbird server logs an error for every open connection.
            let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
            httpGroup = group
            let task = Task {
                defer { continuation.finish() }
                try await group.run()
            }
            for await a in stream {
                httpBound = a
                break
            }
            guard httpBound != nil else {
                let error: any Error
                do {
                    try await task.value
                    error = GreylagDaemonError.httpDidNotStart
                } catch let e {
                    error = e
                }
                logger.critical("cannot serve HTTP on \(address): \(error)")
                for server in servers + milters + greylistds { try? await server.close() }
                try? await adminServer?.close()
                try? await store.close()
                throw error
            }
            httpTask = task
        }
        let bound = servers.compactMap { $0.localAddress.map(Self.describe) }
        let boundMilters = milters.compactMap { $0.localAddress.map(Self.describe) }
        let shown = bound.enumerated().map { $0 < config.policyListeners.count ? $1 : $1 + " (qmail helpers)" }
        let banner = "greylag \(GreylagVersion.string) serving policy on \(shown.joined(separator: ", ")); "
            + "milter on \(boundMilters.isEmpty ? "none" : boundMilters.joined(separator: ", ")); "
            + (greylistds.isEmpty ? "" : "greylistd socket on \(greylistds.compactMap { $0.localAddress.map(Self.describe) }.joined(separator: ", ")); ")
            + "store \(config.backendDescription)"
            + (config.backend == .sqlite ? " (synchronous \(config.synchronous.rawValue))" : "")
            + "; \(config.effectiveThreads) thread\(config.effectiveThreads == 1 ? "" : "s"); delay \(DurationText.format(config.policy.delay))"
            + (config.policy.dryRun ? "; DRY RUN" : "")
            + "; DNS \(Self.describeResolver(config))"
            + "; admin socket \(config.adminSocketPath ?? "off"); http \(httpBound.map { "on \($0)" } ?? "off"); lists: "
            + ConfigReloader.describe(config.lists)
            + ", \(service.manualEntries.count) manual"
            + (openFailure == nil ? "" : "; STORE NOT OPEN, every decision that needs it gets the failure mode (\(config.failureMode.rawValue))")
        logger.notice("\(banner)")
        // Every listener accepts now (NIO listens when bind returns) and the
        // store is open, or the daemon has chosen to serve without it.
        notifier?.ready(status: Self.readyStatus(policy: shown, milter: boundMilters,
                                                 greylistd: greylistds.compactMap { $0.localAddress.map(Self.describe) },
                                                 http: httpBound, storeFailure: openFailure,
                                                 failureMode: config.failureMode))
        onListening(bound + boundMilters + (httpBound.map { ["http:" + $0] } ?? [])
                    + greylistds.compactMap { $0.localAddress.map { "greylistd:" + Self.describe($0) } })

        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                await Self.expiryLoop(store: store, config: config, clock: self.clock, logger: self.logger,
                                      metrics: service.metrics)
            }
            tasks.addTask {
                await Self.historyLoop(dashboard: dashboard, config: config, clock: self.clock, logger: self.logger)
            }
            if config.statsInterval > 0 {
                tasks.addTask { await Self.statsLoop(service: service, interval: config.statsInterval, logger: self.logger) }
            }
            tasks.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    await reloader.reload(trigger: "SIGHUP")
                }
            }
            if let reopener {
                tasks.addTask {
                    // Soon at first (a database server restarting is back in
                    // seconds), then every `store.reopen_interval`.
                    var wait: Int64 = 1
                    while !Task.isCancelled {
                        if await !reopener.isOpening {
                            try? await Task.sleep(for: .seconds(min(wait, config.reopenInterval)))
                            if Task.isCancelled { break }
                            wait = wait.saturatingMultiply(2)
                        }
                        if await reopener.attempt(trigger: "retry every \(DurationText.format(config.reopenInterval))") { break }
                    }
                }
            }
            if config.watchInterval > 0 {
                tasks.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(config.watchInterval))
                        if Task.isCancelled { break }
                        await reloader.checkFiles()
                    }
                }
            }
            if let notifier, let interval = notifier.watchdogInterval {
                tasks.addTask { await Self.watchdogLoop(notifier: notifier, interval: interval, group: group) }
            }
            try? await gracefulShutdown()
            notifier?.stopping(status: "shutting down: finishing \(tracker.count) connection(s)")
            logger.notice("shutting down: closing listeners, finishing \(tracker.count) connection(s)")
            // Only the sockets this daemon bound: a default helper socket it
            // left to another greylag is that one's.
            let boundPaths = (servers + milters + greylistds).compactMap { $0.localAddress?.pathname.map(Self.publishedPath) }
            for server in servers + milters + greylistds { try? await server.close() }
            try? await adminServer?.close()
            await httpGroup?.triggerGracefulShutdown()
            _ = try? await httpTask?.value
            for path in boundPaths { unlink(path) }
            if case .unix(let path)? = config.httpListener { unlink(path) }
            if let path = config.adminSocketPath { unlink(path) }
            await tracker.drainAll(timeout: .seconds(10))
            tasks.cancelAll()
        }
        do {
            try await dashboard.flush()
        } catch {
            logger.warning("dashboard history of the last minute not saved: \(error)")
        }
        try await store.close()
        if let sqlite = ((store as? SwappableStore)?.current ?? store) as? SQLiteStore {
            logger.notice("greylag stopped; store committed \(sqlite.writeCount) writes in \(sqlite.commitCount) transactions")
        } else {
            logger.notice("greylag stopped")
        }
    }

    /// The DNS servers and deadline, for the banner and check-config.
    public static func describeResolver(_ config: GreylagConfiguration) -> String {
        let s = config.resolverSettings
        let servers = s.servers.isEmpty ? "no servers (DNS checks skipped)" : s.servers.map(\.description).joined(separator: ", ")
        return "\(servers) from \(config.resolverServersSource), timeout \(ConfigReloader.seconds(s.timeout)), "
            + "\(s.attempts) round(s), cache \(s.cacheEntries) entries"
    }

    /// The `STATUS=` systemd shows once the daemon is ready.
    static func readyStatus(policy: [String], milter: [String], greylistd: [String] = [], http: String?,
                            storeFailure: String?, failureMode: GreylagConfiguration.FailureMode) -> String {
        var parts: [String] = []
        if !policy.isEmpty { parts.append("policy on " + policy.joined(separator: ", ")) }
        if !milter.isEmpty { parts.append("milter on " + milter.joined(separator: ", ")) }
        if !greylistd.isEmpty { parts.append("greylistd socket on " + greylistd.joined(separator: ", ")) }
        if let http { parts.append("http on \(http)") }
        var status = "serving " + (parts.isEmpty ? "no listener" : parts.joined(separator: "; "))
        if let storeFailure {
            status += "; STORE NOT OPEN (\(storeFailure)), every decision that needs it gets the failure mode "
                + "(\(failureMode.rawValue)) until it opens"
        }
        return status
    }

    /// Sends `WATCHDOG=1` every half `interval` while every event loop
    /// runs a task within that time: a loop stuck in a call stops the
    /// keep-alives, and systemd restarts the daemon.
    static func watchdogLoop(notifier: SystemdNotifier, interval: Duration, group: any EventLoopGroup) async {
        let loops = Array(group.makeIterator())
        while !Task.isCancelled {
            var alive = true
            for loop in loops {
                do {
                    try await loop.submit {}.get()
                } catch {
                    alive = false  // the group is shutting down
                }
            }
            if alive { notifier.watchdog() }
            try? await Task.sleep(for: interval / 2)
        }
    }

    /// Binds a policy listener; `helpers`: one of `policy.helper_listen`,
    /// which honours the qmail helpers' `greylag_*` attributes.
    private func bindPolicy(_ address: ListenAddress, helpers: Bool = false, group: any EventLoopGroup,
                            service: GreylistService, tracker: ConnectionTracker, limits: Limits,
                            mailboxes: EventLoopMailboxes, optional: Bool = false) async throws -> any Channel {
        let logger = self.logger
        let session = PolicySession(config: service.replies, helperAttributes: helpers)
        let helperLog = HelperAttributeLog(listener: address.description, logger: logger)
        let timeout = TimeAmount.milliseconds(Int64(configuration.storeTimeout * 1000))
        let idle = TimeAmount.seconds(configuration.idleTimeout)
        return try await bind(address, what: helpers ? "qmail helpers" : "policy",
                              mode: helpers ? configuration.helperSocketMode : configuration.socketMode,
                              socketGroup: helpers ? configuration.helperSocketGroup : nil, group: group,
                              tracker: tracker, limit: limits.policy, optional: optional) { channel in
            try channel.pipeline.syncOperations.addHandlers([
                IdleStateHandler(readTimeout: idle),
                PolicyServerHandler(session: session, service: service, decisionTimeout: timeout,
                                    mailbox: mailboxes.mailbox(for: channel.eventLoop), logger: logger,
                                    helperLog: helperLog),
            ])
        }
    }

    private func bindMilter(_ address: ListenAddress, group: any EventLoopGroup, service: GreylistService,
                            tracker: ConnectionTracker, limits: Limits,
                            mailboxes: EventLoopMailboxes) async throws -> any Channel {
        let logger = self.logger
        let timeout = TimeAmount.milliseconds(Int64(configuration.storeTimeout * 1000))
        let idle = TimeAmount.seconds(configuration.idleTimeout)
        return try await bind(address, what: "milter", mode: configuration.milterSocketMode, group: group,
                              tracker: tracker, limit: limits.milter) { channel in
            try channel.pipeline.syncOperations.addHandlers([
                IdleStateHandler(readTimeout: idle),
                MilterServerHandler(session: MilterSession(config: service.milterReplies), service: service,
                                    decisionTimeout: timeout, mailbox: mailboxes.mailbox(for: channel.eventLoop),
                                    logger: logger),
            ])
        }
    }

    /// Binds a greylistd-compatible listener (one request per connection).
    private func bindGreylistd(_ address: ListenAddress, responder: GreylistdResponder, group: any EventLoopGroup,
                               tracker: ConnectionTracker, limits: Limits) async throws -> any Channel {
        let logger = self.logger
        return try await bind(address, what: "greylistd", mode: configuration.greylistdSocketMode, group: group,
                              tracker: tracker, limit: limits.policy) { channel in
            try channel.pipeline.syncOperations.addHandlers([
                IdleStateHandler(readTimeout: .seconds(GreylistdServerHandler.requestTimeout)),
                GreylistdServerHandler(responder: responder, logger: logger),
            ])
        }
    }

    /// The connection caps of the policy and milter listeners.
    struct Limits: Sendable {
        var policy: ConnectionLimit
        var milter: ConnectionLimit
    }

    /// Binds one listener; `handlers` sets up each accepted connection.
    /// `socketGroup`: the group a unix socket is given; `optional`: a
    /// failure is the caller's to report (no critical line).
    private func bind(_ address: ListenAddress, what: String, mode: Int, socketGroup: String? = nil,
                      group: any EventLoopGroup, tracker: ConnectionTracker, limit: ConnectionLimit,
                      optional: Bool = false,
                      handlers: @escaping @Sendable (any Channel) throws -> Void) async throws -> any Channel {
        let logger = self.logger
        let isTCP: Bool
        if case .tcp = address { isTCP = true } else { isTCP = false }
        let pause = AcceptPause(what: "\(what) listener \(address)", logger: logger)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        AcceptBackoffHandler(shouldForwardIOErrorCaught: false, backoffProvider: pause.backoff))
                }
            }
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard limit.admit(channel) else {
                        channel.close(promise: nil)
                        return
                    }
                    // IPPROTO_TCP's TCP_NODELAY, an optimisation: never a reason
                    // to drop the connection. (At SOL_SOCKET level the same
                    // number is SO_DEBUG, which only root may set: a daemon
                    // not run as root closed every TCP connection.)
                    if isTCP { try? channel.syncOptions?.setOption(.tcpOption(.tcp_nodelay), value: 1) }
                    tracker.add(channel)
                    do {
                        try handlers(channel)
                    } catch {
                        let peer = channel.remoteAddress.map(Self.describe) ?? "?"
                        logger.error("\(what) connection from \(peer) closed: cannot set it up: \(error)")
                        throw error
                    }
                }
            }
        do {
            switch address {
            case .tcp(let host, let port):
                return try await bootstrap.bind(host: host, port: port).get()
            case .unix(let path):
                try SocketPath.makeParent(of: path, logger: logger)
                try Self.removeStaleSocket(path)
                return try await Self.bindUnix(path, mode: mode, socketGroup: socketGroup, logger: logger) {
                    try await bootstrap.bind(unixDomainSocketPath: $0).get()
                }
            }
        } catch {
            if !optional { logger.critical("cannot listen for \(what) on \(address): \(error)") }
            throw error
        }
    }

    /// Says at start (and on reload) that an HTTP listener other hosts can
    /// reach has no token: its API is then closed, and only `/metrics` answers.
    static func warnIfOpen(_ address: ListenAddress, token: String?, logger: Logger) {
        guard token?.isEmpty ?? true, !HTTPAccess.isLocal(address) else { return }
        let line = "http listener \(address) is reachable from other hosts and http.token is not set: "
            + "/metrics answers anyone, the dashboard and the API are closed until a token is set"
        logger.warning("\(line)")
    }

    /// Listens for admin commands on a unix socket (see `AdminConnectionHandler`).
    private func bindAdmin(path: String, group: any EventLoopGroup, admin: AdminService,
                           metrics: GreylagMetrics) async throws -> any Channel {
        let logger = self.logger
        let mode = configuration.adminSocketMode
        do {
            try SocketPath.makeParent(of: path, logger: logger)
            try Self.removeStaleSocket(path)
            let pause = AcceptPause(what: "admin socket \(path)", logger: logger)
            let limit = ConnectionLimit(kind: "admin", max: DescriptorBudget.adminConnections, logger: logger,
                                        metrics: metrics, keyed: false)
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            AcceptBackoffHandler(shouldForwardIOErrorCaught: false, backoffProvider: pause.backoff))
                    }
                }
                .serverChannelOption(.backlog, value: 16)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        guard limit.admit(channel) else {
                            channel.close(promise: nil)
                            return
                        }
                        try channel.pipeline.syncOperations.addHandlers([
                            IdleStateHandler(readTimeout: .seconds(AdminConnectionHandler.requestTimeout)),
                            AdminConnectionHandler(admin: admin, logger: logger),
                        ])
                    }
                }
            return try await Self.bindUnix(path, mode: mode, logger: logger) {
                try await bootstrap.bind(unixDomainSocketPath: $0).get()
            }
        } catch {
            logger.critical("cannot listen for admin commands on \(path): \(error)")
            throw error
        }
    }

    /// The milter wording of a configuration, with this host's name filled in.
    static func milterReplies(_ config: GreylagConfiguration) -> MilterReplyConfig {
        var replies = config.milterReplies
        if replies.hostname.isEmpty || replies.hostname == "localhost" { replies.hostname = hostName() }
        return replies
    }

    /// The reply wording of a configuration, with this host's name filled in.
    static func replies(_ config: GreylagConfiguration) -> PolicyReplyConfig {
        var replies = config.replies
        if replies.hostname.isEmpty || replies.hostname == "localhost" { replies.hostname = hostName() }
        return replies
    }

    /// Deletes a socket file left by an earlier run; refuses to delete
    /// anything else, or a socket another process still listens on.
    /// Binds a unix socket that appears at `path` with its mode and group
    /// already set: it is bound under a temporary name in the same directory,
    /// given both, then renamed into place. A client that finds the socket
    /// (a qmail helper, a test waiting for it) never meets the umask's mode
    /// or root's group. A path too long for a temporary name beside it is
    /// bound in place, as before.
    /// The path a socket bound by `bindUnix` was renamed to: what its
    /// channel's local address still names under the temporary name.
    static func publishedPath(_ bound: String) -> String {
        guard let slash = bound.lastIndex(of: "/") else {
            return bound.hasPrefix(".~") ? String(bound.dropFirst(2)) : bound
        }
        let name = bound[bound.index(after: slash)...]
        return name.hasPrefix(".~") ? String(bound[...slash]) + name.dropFirst(2) : bound
    }

    static func bindUnix(_ path: String, mode: Int, socketGroup: String? = nil, logger: Logger,
                         _ bind: (String) async throws -> any Channel) async throws -> any Channel {
        let slash = path.lastIndex(of: "/")
        let temporary = slash.map { String(path[...$0]) + ".~" + String(path[path.index(after: $0)...]) } ?? ".~" + path
        let staged = temporary.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        let at = staged ? temporary : path
        if staged { unlink(temporary) }  // left by a crash between bind and rename
        let channel = try await bind(at)
        if chmod(at, mode_t(mode)) != 0 {
            logger.warning("cannot set mode \(String(mode, radix: 8)) on \(path)")
        }
        if let socketGroup { SocketPath.setGroup(at, socketGroup, logger: logger) }
        if staged && rename(at, path) != 0 {
            let error = ListenError(message: "cannot move \(at) to \(path): \(String(cString: strerror(errno)))")
            unlink(at)
            try? await channel.close()
            throw error
        }
        return channel
    }

    static func removeStaleSocket(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw ListenError(message: "\(path) exists and is not a socket")
        }
        if isListening(path) {
            throw ListenError(message: "another process is listening on \(path)")
        }
        unlink(path)
    }

    /// Whether a connection to the unix socket at `path` is accepted.
    static func isListening(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    struct ListenError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    static func describe(_ address: SocketAddress) -> String {
        switch address {
        case .unixDomainSocket: return "unix:\(address.pathname.map(publishedPath) ?? "?")"
        case .v6: return "[\(address.ipAddress ?? "?")]:\(address.port ?? 0)"
        default: return "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
        }
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Removes expired records every `expiryInterval`, in batches of
    /// `expiryBatch` so decisions queue behind at most one small delete.
    /// Every `interval` seconds, one line with the decisions since the last.
    /// Adds the hourly decision counts to the store's history every
    /// `historyFlushInterval` seconds and removes history older than
    /// `historyKeep`. Counts the store refuses are kept for the next try.
    static func historyLoop(dashboard: DashboardSource, config: GreylagConfiguration,
                            clock: @escaping @Sendable () -> Int64, logger: Logger) async {
        var failing = false
        var lastPrune: Int64 = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(config.historyFlushInterval))
            if Task.isCancelled { break }
            do {
                try await dashboard.flush()
                let hour = clock() / 3600
                if hour != lastPrune {
                    _ = try await dashboard.service.store.pruneHistory(before: hour - config.historyKeep / 3600)
                    lastPrune = hour
                }
                if failing { logger.notice("dashboard history saved again") }
                failing = false
            } catch {
                if !failing { logger.warning("dashboard history not saved, kept for the next try: \(error)") }
                failing = true
            }
        }
    }

    static func statsLoop(service: GreylistService, interval: Int64, logger: Logger) async {
        var last = service.counters.snapshot()
        var lastFailures = service.health.failures
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(interval))
            if Task.isCancelled { break }
            let now = service.counters.snapshot()
            let failures = service.health.failures
            logger.notice("\(now.since(last).statsLine(seconds: Int(interval), storeFailures: failures - lastFailures))")
            last = now
            lastFailures = failures
        }
    }

    static func expiryLoop(store: any GreylistStore, config: GreylagConfiguration,
                           clock: @Sendable () -> Int64, logger: Logger, metrics: GreylagMetrics? = nil) async {
        // Counting the records scans the store (about 5 s of CPU at 10 million
        // records on SQLite), so it runs every `sizesInterval`, the first
        // time a minute after start, not on every expiry run.
        var nextSizes = ContinuousClock.now + .seconds(min(config.sizesInterval, 60))
        while !Task.isCancelled {
            // Nothing to expire, and nothing to log each time, while the
            // store could not be opened (logged once, shown as degraded).
            if let swappable = store as? SwappableStore, swappable.unavailableReason != nil {
                try? await Task.sleep(for: .seconds(config.expiryInterval))
                continue
            }
            var removed = 0
            do {
                while !Task.isCancelled {
                    let n = try await store.expire(now: clock(), limit: config.expiryBatch)
                    removed += n
                    if n < config.expiryBatch { break }
                    await Task.yield()
                }
                if removed > 0 { logger.info("expired \(removed) record(s)") }
                metrics?.expiryRan(removed: removed, failed: false)
                // The sizes for /metrics, now and then rather than per scrape.
                if let metrics, config.sizesInterval > 0, ContinuousClock.now >= nextSizes {
                    nextSizes = ContinuousClock.now + .seconds(config.sizesInterval)
                    let now = clock()
                    metrics.storeSizes(try await store.counts(now: now), manual: try await store.manualEntries(), now: now)
                }
            } catch {
                logger.error("expiry failed: \(error)")
                metrics?.expiryRan(removed: removed, failed: true)
            }
            try? await Task.sleep(for: .seconds(config.expiryInterval))
        }
    }
}

enum GreylagDaemonError: Error, CustomStringConvertible {
    case httpDidNotStart
    var description: String { "the HTTP server stopped before it listened" }
}

/// Tries to open the store the daemon could not open at start, every
/// `store.reopen_interval` and on reload, and swaps it in for the stand-in
/// once it opens. One attempt at a time; an attempt asked for while one
/// runs is skipped.
actor StoreReopener {
    private let store: SwappableStore
    private let open: @Sendable () async throws -> any GreylistStore
    private let service: GreylistService
    private let logger: Logger
    private var running = false
    /// Asks that came while an attempt ran, resumed when it ends.
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var lastReason: String?
    /// An open that was still running when the daemon started serving.
    private var pending: Task<any GreylistStore, any Error>?
    /// Told (`STATUS=`) when the store opens.
    private let notifier: SystemdNotifier?

    init(store: SwappableStore, open: @escaping @Sendable () async throws -> any GreylistStore,
         service: GreylistService, logger: Logger, pending: Task<any GreylistStore, any Error>? = nil,
         notifier: SystemdNotifier? = nil) {
        self.store = store
        self.open = open
        self.service = service
        self.logger = logger
        self.lastReason = store.unavailableReason
        self.pending = pending
        self.notifier = notifier
    }

    /// True while the open begun at start has not ended: the next attempt waits for it.
    var isOpening: Bool { pending != nil }

    /// What `open` gives; shutting down cancels it (a server backend waits
    /// up to 30 s for its server).
    private static func outcome(of open: Task<any GreylistStore, any Error>) async
        -> Result<any GreylistStore, any Error> {
        await withTaskCancellationHandler { await open.result } onCancel: { open.cancel() }
    }

    /// One attempt; true when the real store is in place (now or before).
    /// An attempt asked for while one runs waits for it and, if the store
    /// is still not open, makes one more: the one running (or the open
    /// begun at start) may have begun before the postmaster fixed the cause
    /// and asked again.
    @discardableResult
    func attempt(trigger: String) async -> Bool {
        guard store.unavailableReason != nil else { return true }
        if running {
            await withCheckedContinuation { waiters.append($0) }
            guard store.unavailableReason != nil else { return true }
            guard !running else { return false }  // another waiter makes the next one
        }
        running = true
        defer {
            running = false
            let waiting = waiters
            waiters = []
            waiting.forEach { $0.resume() }
        }
        let fromStart = pending
        pending = nil
        var result = await Self.outcome(of: fromStart ?? Task { [open] in try await open() })
        if case .failure = result, fromStart != nil, !Task.isCancelled {
            // The open begun at start began before this was asked for.
            result = await Self.outcome(of: Task { [open] in try await open() })
        }
        let opened: any GreylistStore
        switch result {
        case .success(let s):
            opened = s
        case .failure(let error):
            if Task.isCancelled { return false }
            let reason = "\(error)"
            if reason != lastReason {
                logger.error("store still cannot be opened (\(trigger)): \(reason)")
                lastReason = reason
                service.health.cannotOpen(reason)
                _ = store.swap(to: UnavailableStore(reason: reason))
            } else {
                logger.debug("store still cannot be opened (\(trigger)): \(reason)")
            }
            return false
        }
        guard let standIn = store.swap(to: opened) else {
            // The daemon is shutting down.
            try? await opened.close()
            return false
        }
        try? await standIn.close()
        logger.notice("store opened (\(trigger)); greylisting again")
        notifier?.status("serving; store opened (\(trigger)), greylisting again")
        service.health.opened()
        do {
            try await service.refreshManualEntries()
        } catch {
            logger.error("cannot read manual list entries from the store, serving without them until the next reload: \(error)")
        }
        return true
    }
}
