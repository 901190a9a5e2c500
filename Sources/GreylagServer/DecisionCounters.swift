import GreylagCore
import Synchronization

/// Decisions counted since the daemon started, by reason and by action,
/// for `greylag stats` (and later the metrics endpoint).
public final class DecisionCounters: Sendable {
    private struct Counts {
        var byReason = [Int](repeating: 0, count: DecisionReason.allCases.count)
        var byAction = [Int](repeating: 0, count: 3)
        var dryRunPasses = 0
    }
    private let counts = Mutex(Counts())
    private static let reasons = DecisionReason.allCases
    private static let actions: [Verdict.Action] = [.pass, .defer, .reject]

    public init() {}

    /// Counts one decision.
    public func count(_ v: Verdict) {
        let r = Self.reasons.firstIndex(of: v.reason) ?? 0
        let a = Self.actions.firstIndex(of: v.action) ?? 0
        counts.withLock { c in
            c.byReason[r] += 1
            c.byAction[a] += 1
            if v.wouldDefer { c.dryRunPasses += 1 }
        }
    }

    /// The counts now.
    public func snapshot() -> DecisionCounts {
        let c = counts.withLock { $0 }
        var reasons: [String: Int] = [:]
        for (i, r) in Self.reasons.enumerated() { reasons[r.rawValue] = c.byReason[i] }
        var actions: [String: Int] = [:]
        for (i, a) in Self.actions.enumerated() { actions[a.rawValue] = c.byAction[i] }
        return DecisionCounts(byAction: actions, byReason: reasons, dryRunPasses: c.dryRunPasses)
    }
}

/// A snapshot of `DecisionCounters`.
public struct DecisionCounts: Sendable, Hashable, Codable {
    public var byAction: [String: Int]
    public var byReason: [String: Int]
    public var dryRunPasses: Int
}
