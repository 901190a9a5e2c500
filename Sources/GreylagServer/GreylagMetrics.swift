import CoreMetrics
import GreylagCore
import GreylagStore
import Prometheus
import Synchronization

/// The daemon's metrics, in a Prometheus registry of its own (several
/// daemons in one process, as in the tests, do not mix their counts),
/// served at `/metrics` in the Prometheus text format.
public final class GreylagMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    public let factory: PrometheusMetricsFactory

    private struct DecisionKey: Hashable {
        var via: String
        var action: String
        var reason: String
    }
    private let decisionCounters = Mutex<[DecisionKey: CoreMetrics.Counter]>([:])
    private let decisionSeconds: CoreMetrics.Timer
    private let storeSeconds: CoreMetrics.Timer
    private let expiryRuns: CoreMetrics.Counter
    private let expiredRows: CoreMetrics.Counter
    private let expiryFailures: CoreMetrics.Counter
    private let pending: CoreMetrics.Gauge
    private let passed: CoreMetrics.Gauge
    private let clients: CoreMetrics.Gauge
    private let manualWhitelist: CoreMetrics.Gauge
    private let manualBlacklist: CoreMetrics.Gauge
    private let connections: CoreMetrics.Gauge
    private let zoneCounters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let skippedCounters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let dnsSeconds: CoreMetrics.Timer
    private let blockedShare: CoreMetrics.Gauge
    private let blockedDeferred: CoreMetrics.Gauge
    private let returnDelay: [CoreMetrics.Gauge]
    private let returnCount: CoreMetrics.Gauge

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        // From a fraction of a millisecond (SQLite) to the store timeout.
        let buckets: [Duration] = [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                                   .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                   .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                                   .seconds(2), .seconds(5)]
        factory.defaultDurationHistogramBuckets = buckets
        self.factory = factory
        decisionSeconds = CoreMetrics.Timer(label: "greylag_decision_seconds", factory: factory)
        storeSeconds = CoreMetrics.Timer(label: "greylag_store_seconds", factory: factory)
        expiryRuns = CoreMetrics.Counter(label: "greylag_expiry_runs_total", factory: factory)
        expiredRows = CoreMetrics.Counter(label: "greylag_expired_rows_total", factory: factory)
        expiryFailures = CoreMetrics.Counter(label: "greylag_expiry_failures_total", factory: factory)
        pending = CoreMetrics.Gauge(label: "greylag_records", dimensions: [("state", "pending")], factory: factory)
        passed = CoreMetrics.Gauge(label: "greylag_records", dimensions: [("state", "passed")], factory: factory)
        clients = CoreMetrics.Gauge(label: "greylag_autowhitelisted_clients", factory: factory)
        manualWhitelist = CoreMetrics.Gauge(label: "greylag_manual_entries", dimensions: [("list", "whitelist")], factory: factory)
        manualBlacklist = CoreMetrics.Gauge(label: "greylag_manual_entries", dimensions: [("list", "blacklist")], factory: factory)
        connections = CoreMetrics.Gauge(label: "greylag_connections", factory: factory)
        blockedShare = CoreMetrics.Gauge(label: "greylag_blocked_ratio", factory: factory)
        blockedDeferred = CoreMetrics.Gauge(label: "greylag_blocked_window_new_triplets", factory: factory)
        returnDelay = ["0.5", "0.9", "1"].map {
            CoreMetrics.Gauge(label: "greylag_return_delay_seconds", dimensions: [("quantile", $0)], factory: factory)
        }
        returnCount = CoreMetrics.Gauge(label: "greylag_return_delay_window_passes", factory: factory)
        dnsSeconds = CoreMetrics.Timer(label: "greylag_dns_checks_seconds", factory: factory)
    }

    /// A counter of `label` with one dimension, made on first use.
    private func counter(_ table: borrowing Mutex<[String: CoreMetrics.Counter]>, _ label: String, _ dimension: String,
                         _ value: String) -> CoreMetrics.Counter {
        table.withLock { counters in
            if let c = counters[value] { return c }
            let c = CoreMetrics.Counter(label: label, dimensions: [(dimension, value)], factory: factory)
            counters[value] = c
            return c
        }
    }

    /// The DNS checks of one decision ended: how long they took, and the
    /// checks skipped (a zone name, `spf` or `ptr`).
    public func dnsChecked(_ facts: DNSFacts, nanoseconds: UInt64) {
        dnsSeconds.recordNanoseconds(Int64(clamping: nanoseconds))
        for name in facts.skipped {
            counter(skippedCounters, "greylag_dns_skipped_total", "check", name).increment()
        }
    }

    /// One decision answered through `via` (policy, milter, qmail-spp, ...).
    public func decided(_ verdict: Verdict, via: String) {
        let key = DecisionKey(via: via, action: verdict.action.rawValue, reason: verdict.reason.rawValue)
        let counter = decisionCounters.withLock { counters in
            if let c = counters[key] { return c }
            let c = CoreMetrics.Counter(label: "greylag_decisions_total",
                            dimensions: [("via", key.via), ("action", key.action), ("reason", key.reason)],
                            factory: factory)
            counters[key] = c
            return c
        }
        counter.increment()
        for zone in verdict.zones {
            self.counter(zoneCounters, "greylag_dns_listed_total", "zone", zone).increment()
        }
    }

    /// How long a decision took, store included.
    public func decisionTook(nanoseconds: UInt64) { decisionSeconds.recordNanoseconds(Int64(clamping: nanoseconds)) }

    /// How long the store took to decide (successful or not).
    public func storeTook(nanoseconds: UInt64) { storeSeconds.recordNanoseconds(Int64(clamping: nanoseconds)) }

    /// One run of the expiry loop.
    public func expiryRan(removed: Int, failed: Bool) {
        expiryRuns.increment()
        if failed { expiryFailures.increment() } else { expiredRows.increment(by: removed) }
    }

    /// The store's sizes, refreshed by the expiry loop.
    public func storeSizes(_ counts: StoreCounts, manual: [ManualEntry], now: Int64) {
        pending.record(counts.pending)
        passed.record(counts.passed)
        clients.record(counts.clients)
        let live = manual.filter { $0.expires.map { now < $0 } ?? true }
        manualWhitelist.record(live.filter { $0.list == .whitelist }.count)
        manualBlacklist.record(live.filter { $0.list == .blacklist }.count)
    }

    /// The live cost figures (`LiveCost`), set just before each scrape: the
    /// share of new triplets that never came back (NaN before any hour's
    /// retry window is over) and the return delay's median, p90 and
    /// maximum over the last 24 hours (NaN without any).
    public func liveCost(_ c: LiveCost) {
        blockedShare.record(c.blockedShare ?? .nan)
        blockedDeferred.record(c.deferredNew)
        for (gauge, value) in zip(returnDelay, [c.delayMedian, c.delayP90, c.delayMax]) {
            gauge.record(value.map(Double.init) ?? .nan)
        }
        returnCount.record(c.delayedPasses)
    }

    /// Open MTA connections, set just before each scrape.
    public func connections(_ n: Int) { connections.record(n) }

    /// The registry in the Prometheus text format.
    public func text() -> String { registry.emitToString() }
}
