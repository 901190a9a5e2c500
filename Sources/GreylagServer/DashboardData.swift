import Foundation
import GreylagCore
import GreylagStore
import Logging
import Synchronization

/// Everything the dashboard shows, gathered at one moment. Also served as
/// JSON at `/api/dashboard`.
public struct DashboardData: Sendable, Codable {
    public var now: Int64
    public var host: String
    public var version: String
    /// Seconds east of UTC of the daemon's local time, for day boundaries and labels.
    public var utcOffset: Int
    public var delay: Int64
    public var retryWindow: Int64
    public var dryRun: Bool
    public var degraded: Bool
    /// How many days of history are drawn.
    public var days: Int
    /// The hourly history of the last `days` days, unsaved counts included.
    public var history: [HistoryCount]
    public var counts: StoreCounts?
    public var waitingNetworks: [WaitingGroup]
    public var waitingSenders: [WaitingGroup]
    public var recent: [RecentDecision]
    /// What greylisting blocked and what it cost in the last 24 hours.
    public var cost: LiveCost?
    /// Why the store's part is missing, if it is.
    public var storeError: String?
    /// Why the store could not be opened, while the daemon serves without it.
    public var storeUnavailable: String?

    public init(now: Int64, host: String, version: String = GreylagVersion.string, utcOffset: Int = 0,
                delay: Int64, retryWindow: Int64, dryRun: Bool = false, degraded: Bool = false, days: Int = 30,
                history: [HistoryCount], counts: StoreCounts?, waitingNetworks: [WaitingGroup],
                waitingSenders: [WaitingGroup], recent: [RecentDecision], cost: LiveCost? = nil, storeError: String? = nil,
                storeUnavailable: String? = nil) {
        self.now = now
        self.host = host
        self.version = version
        self.utcOffset = utcOffset
        self.delay = delay
        self.retryWindow = retryWindow
        self.dryRun = dryRun
        self.degraded = degraded
        self.days = days
        self.history = history
        self.counts = counts
        self.waitingNetworks = waitingNetworks
        self.waitingSenders = waitingSenders
        self.recent = recent
        self.cost = cost
        self.storeError = storeError
        self.storeUnavailable = storeUnavailable
    }
}

/// Gathers `DashboardData` from the service and its store. The store's
/// part (history, counts, the groups of waiting triplets, which scan the
/// records) is reused for `cacheSeconds` or ten times as long as it took to
/// read, whichever is longer, so a dashboard left open in many browsers
/// costs the store little even with millions of records; recent decisions
/// and counts not yet saved are always current.
public final class DashboardSource: Sendable {
    public static let days = 30
    /// Rows in each table of waiting networks and senders.
    public static let topLimit = 10

    let service: GreylistService
    let host: String
    let cacheSeconds: Double
    let logger: Logger

    private struct StorePart: Sendable {
        /// Until when it is reused.
        var until: ContinuousClock.Instant
        var history: [HistoryCount]
        var counts: StoreCounts
        var networks: [WaitingGroup]
        var senders: [WaitingGroup]
    }
    private let cache = Mutex<StorePart?>(nil)

    public init(service: GreylistService, host: String, cacheSeconds: Double = 10, logger: Logger) {
        self.service = service
        self.host = host
        self.cacheSeconds = cacheSeconds
        self.logger = logger
    }

    /// The dashboard's data now.
    public func data() async -> DashboardData {
        let now = service.now()
        let policy = service.engine.policy
        let since = (now - Int64(Self.days) * 86_400) / 3600 - 24
        var storeError: String? = nil
        var part = cache.withLock { c in c.flatMap { ContinuousClock.now < $0.until ? $0 : nil } }
        // A store that could not be opened has nothing to read (the page says why).
        let unavailable = service.health.unavailableReason
        if part == nil && unavailable == nil {
            do {
                let store = service.store
                async let history = store.history(since: since)
                async let counts = store.counts(now: now)
                async let networks = store.waiting(by: .network, now: now, limit: Self.topLimit)
                async let senders = store.waiting(by: .sender, now: now, limit: Self.topLimit)
                let started = ContinuousClock.now
                var fresh = StorePart(until: started, history: (try await history).filter(\.isPlausible), counts: try await counts,
                                      networks: try await networks, senders: try await senders)
                // Reused for `cacheSeconds`, or ten times as long as reading
                // took (seconds on a store of millions of records), so an
                // open dashboard costs the store a tenth of its time at most.
                let took = ContinuousClock.now - started
                fresh.until = ContinuousClock.now + max(.milliseconds(Int64(cacheSeconds * 1000)), took * 10)
                cache.withLock { $0 = fresh }
                part = fresh
            } catch {
                storeError = "\(error)"
                logger.warning("dashboard: cannot read the store: \(error)")
            }
        }
        let unsaved = service.history.unsaved().filter { $0.hour >= since }
        let offset = TimeZone.current.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(now)))
        let history = HistoryCount.merged((part?.history ?? []) + unsaved)
        let cost = LiveCost(history: history, delays: service.history.recentDelays(), now: now,
                            retryWindow: policy.retryWindow)
        return DashboardData(now: now, host: host, utcOffset: offset, delay: policy.delay,
                             retryWindow: policy.retryWindow, dryRun: policy.dryRun,
                             degraded: service.health.degraded, days: Self.days,
                             history: history, counts: part?.counts,
                             waitingNetworks: part?.networks ?? [], waitingSenders: part?.senders ?? [],
                             recent: service.history.recent(), cost: cost, storeError: storeError,
                             storeUnavailable: unavailable)
    }

    /// The live cost figures alone, for `/metrics`: the store's history of
    /// the hours they need (or the dashboard's, while it is cached) and the
    /// counts not yet saved.
    public func liveCost() async -> LiveCost {
        let now = service.now()
        let policy = service.engine.policy
        let since = (now - policy.retryWindow - 86_400) / 3600 - 2
        var stored = cache.withLock { c in c.flatMap { ContinuousClock.now < $0.until ? $0.history : nil } }
        if stored == nil && service.health.unavailableReason == nil {
            stored = try? await service.store.history(since: since).filter(\.isPlausible)
        }
        let unsaved = service.history.unsaved().filter { $0.hour >= since }
        return LiveCost(history: HistoryCount.merged((stored ?? []) + unsaved), delays: service.history.recentDelays(),
                        now: now, retryWindow: policy.retryWindow)
    }

    /// Drops the store's part read last, so the next page shows a change
    /// (a release) at once.
    public func forget() {
        cache.withLock { $0 = nil }
    }

    /// Saves the counts not yet in the store; the next page reads the store again.
    public func flush() async throws {
        try await service.history.flush(to: service.store)
        cache.withLock { $0 = nil }
    }
}
