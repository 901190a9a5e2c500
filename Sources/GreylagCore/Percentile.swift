/// Percentiles of measured values, as the replay and the live figures report them.
public enum Percentile {
    /// The nearest-rank percentile of sorted values: the smallest value
    /// with at least `p` (0 to 1) of them at or below it; nil without values.
    public static func nearestRank(_ sorted: [Int64], _ p: Double) -> Int64? {
        guard !sorted.isEmpty else { return nil }
        let rank = Int((max(0, min(1, p)) * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}
