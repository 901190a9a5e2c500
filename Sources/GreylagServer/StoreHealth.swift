import Foundation
import Logging
import CoreMetrics
import Synchronization

/// Whether the store answers. The first failure (an error or a decision
/// not ready in time) marks the store degraded with one error line; while it
/// stays degraded, further failures are counted, not logged one by one; the
/// first decision the store makes again marks it recovered with one line
/// saying how long and how many decisions the failure mode answered.
/// A failure of a decision that started before the last recovery belongs
/// to the episode that ended (a query that hung while the database was
/// frozen and failed after it woke up): it is counted, but does not mark the
/// store degraded again. A store that could not be opened at all (the
/// daemon serves with a stand-in until it opens, see `cannotOpen`) is
/// degraded from the start. Exported as the gauges `greylag_store_degraded`
/// (1 while degraded) and `greylag_store_open` (0 while the store could not
/// be opened) and the counter `greylag_store_failures_total`.
public final class StoreHealth: Sendable {
    private struct Episode {
        var since: Date
        var failures: Int
    }

    /// Read on every decision; the lock is taken only on transitions.
    private let isDegraded = Atomic<Bool>(false)
    private let episode = Mutex<Episode?>(nil)
    private let totalFailures = Atomic<Int>(0)
    /// When the store last recovered (`DispatchTime` nanoseconds).
    private let recoveredAt = Atomic<UInt64>(0)
    private let logger: Logger
    private let failureModeText: String
    private let degradedGauge: CoreMetrics.Gauge
    private let failureCounter: CoreMetrics.Counter
    private let openGauge: CoreMetrics.Gauge
    /// Why the store could not be opened, while it cannot.
    private let openFailure = Mutex<String?>(nil)

    public init(logger: Logger, failureMode: GreylagConfiguration.FailureMode,
                factory: any MetricsFactory = MetricsSystem.factory) {
        degradedGauge = CoreMetrics.Gauge(label: "greylag_store_degraded", factory: factory)
        failureCounter = CoreMetrics.Counter(label: "greylag_store_failures_total", factory: factory)
        openGauge = CoreMetrics.Gauge(label: "greylag_store_open", factory: factory)
        self.logger = logger
        self.failureModeText = failureMode == .pass ? "passing" : "deferring"
        degradedGauge.record(0)
        openGauge.record(1)
    }

    /// Why the store could not be opened, while the daemon serves without it.
    public var unavailableReason: String? { openFailure.withLock { $0 } }

    /// The store could not be opened (the daemon logs why): degraded from
    /// now on until `opened()`, every decision that needs the store answered
    /// by the failure mode and counted as a failure. Called again with a new
    /// reason when a later attempt fails otherwise.
    public func cannotOpen(_ reason: String) {
        openFailure.withLock { $0 = reason }
        episode.withLock { e in
            if e == nil { e = Episode(since: Date(), failures: 0) }
            isDegraded.store(true, ordering: .relaxed)
        }
        openGauge.record(0)
        degradedGauge.record(1)
    }

    /// The store opened after `cannotOpen`: logs the recovery as `succeeded()` does.
    public func opened() {
        openFailure.withLock { $0 = nil }
        openGauge.record(1)
        succeeded()
    }

    /// True while the store fails.
    public var degraded: Bool { isDegraded.load(ordering: .relaxed) }

    /// Failed decisions since start.
    public var failures: Int { totalFailures.load(ordering: .relaxed) }

    /// Since when the store fails, if it does.
    public var degradedSince: Date? { episode.withLock { $0?.since } }

    /// The clock of `failed(startedAt:)`.
    public static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// A decision that started at `startedAt` (see `now()`) could not use the store.
    public func failed(_ why: String, client: String? = nil, startedAt: UInt64 = StoreHealth.now()) {
        totalFailures.add(1, ordering: .relaxed)
        failureCounter.increment()
        let first = episode.withLock { e -> Bool in
            if e == nil && startedAt < recoveredAt.load(ordering: .relaxed) { return false }
            if e == nil {
                e = Episode(since: Date(), failures: 1)
                isDegraded.store(true, ordering: .relaxed)
                return true
            }
            e!.failures += 1
            return false
        }
        var metadata: Logger.Metadata = [:]
        if let client { metadata["greylag.client"] = "\(client)" }
        if first {
            degradedGauge.record(1)
            logger.error("store degraded: \(why); \(failureModeText) every decision that needs the store until it answers again",
                         metadata: metadata)
        } else {
            logger.debug("store failed, \(failureModeText): \(why)", metadata: metadata)
        }
    }

    /// A decision used the store.
    public func succeeded() {
        guard isDegraded.load(ordering: .relaxed) else { return }
        guard let ended = episode.withLock({ e -> Episode? in
            defer { e = nil }
            isDegraded.store(false, ordering: .relaxed)
            recoveredAt.store(Self.now(), ordering: .relaxed)
            return e
        }) else { return }
        degradedGauge.record(0)
        let seconds = Int(Date().timeIntervalSince(ended.since).rounded())
        logger.notice("store recovered after \(seconds) s; \(ended.failures) decision(s) were answered by the failure mode (\(failureModeText))")
    }
}
