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

extension DecisionCounts {
    /// The counts of `self` minus those of `earlier`.
    public func since(_ earlier: DecisionCounts) -> DecisionCounts {
        DecisionCounts(byAction: byAction.merging(earlier.byAction.mapValues { -$0 }, uniquingKeysWith: +),
                       byReason: byReason.merging(earlier.byReason.mapValues { -$0 }, uniquingKeysWith: +),
                       dryRunPasses: dryRunPasses - earlier.dryRunPasses)
    }

    /// The periodic stats line: `key=value` pairs (logfmt) with every
    /// action and every reason, zeros included, in a fixed order, so that a
    /// log analyser sees the same columns in every line.
    public func statsLine(seconds: Int, storeFailures: Int) -> String {
        var fields = ["stats:", "interval=\(seconds)s"]
        for action in ["pass", "defer", "reject"] { fields.append("\(action)=\(byAction[action] ?? 0)") }
        fields.append("dry_run_would_defer=\(dryRunPasses)")
        for reason in DecisionReason.allCases { fields.append("\(reason.rawValue)=\(byReason[reason.rawValue] ?? 0)") }
        fields.append("store_failures=\(storeFailures)")
        return fields.joined(separator: " ")
    }
}
