import GreylagCore
import GreylagStore

/// The two numbers of `greylag replay`, for live traffic: what greylisting
/// blocked and what it cost the mail that passed (docs/replay.md, "The
/// same numbers, live").
///
/// Blocked: of the new triplets deferred in the last `window` seconds whose
/// retry window is over, the share that never came back. It needs no
/// record of the triplets themselves: `DecisionHistory` counts each
/// deferred new triplet in its hour of first sighting (`new`) and each
/// first pass after the delay in that same hour (`returned`), so once an
/// hour's retry window is over its `new − returned` never came back; the
/// store's expiry job deletes the records without counting anything.
///
/// Delay: over the first passes after a delay in the last `window`
/// seconds (in memory, the most recent `DecisionHistory.delayCapacity`;
/// empty after a restart), the median, the 90th percentile and the longest.
public struct LiveCost: Sendable, Hashable, Codable {
    /// The length of both windows, in seconds.
    public var window: Int64
    /// The hours (Unix hours) whose new triplets are counted as blocked or not.
    public var blockedFromHour: Int64
    public var blockedToHour: Int64
    public var deferredNew: Int64
    public var neverCameBack: Int64
    /// `neverCameBack / deferredNew`; nil before any hour is complete.
    public var blockedShare: Double?
    /// First passes after a delay within the last `window` seconds.
    public var delayedPasses: Int
    public var delayMedian: Int64?
    public var delayP90: Int64?
    public var delayMax: Int64?

    public init(history: [HistoryCount], delays: [(time: Int64, delay: Int64)], now: Int64, retryWindow: Int64,
                window: Int64 = 86_400) {
        self.window = window
        // The last hour all of whose triplets are past their retry window.
        blockedToHour = (now - retryWindow) / 3600 - 1
        blockedFromHour = blockedToHour - max(1, window / 3600) + 1
        var new: [Int64: Int64] = [:]
        var back: [Int64: Int64] = [:]
        for h in history where h.hour >= blockedFromHour && h.hour <= blockedToHour {
            if h.name == DecisionHistory.newTriplets { new[h.hour, default: 0] += h.count }
            if h.name == DecisionHistory.returned { back[h.hour, default: 0] += h.count }
        }
        deferredNew = new.values.reduce(0, +)
        neverCameBack = new.reduce(Int64(0)) { $0 + max(0, $1.value - min($1.value, back[$1.key] ?? 0)) }
        blockedShare = deferredNew > 0 ? Double(neverCameBack) / Double(deferredNew) : nil
        let recent = delays.filter { $0.time > now - window && $0.time <= now }.map(\.delay).sorted()
        delayedPasses = recent.count
        delayMedian = Percentile.nearestRank(recent, 0.5)
        delayP90 = Percentile.nearestRank(recent, 0.9)
        delayMax = recent.last
    }
}
