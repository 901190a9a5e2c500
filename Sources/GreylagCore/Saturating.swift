/// Time arithmetic that cannot trap: timestamps and durations may come from
/// a foreign or corrupt store, an import or a hostile request, so sums and
/// differences saturate at the ends of `Int64` instead of overflowing.
extension Int64 {
    /// `self + other`, clamped to `Int64.min ... Int64.max`.
    @inlinable public func saturatingAdd(_ other: Int64) -> Int64 {
        let (r, o) = addingReportingOverflow(other)
        return o ? (other > 0 ? .max : .min) : r
    }

    /// `self - other`, clamped to `Int64.min ... Int64.max`.
    @inlinable public func saturatingSubtract(_ other: Int64) -> Int64 {
        let (r, o) = subtractingReportingOverflow(other)
        return o ? (other < 0 ? .max : .min) : r
    }

    /// `self * other`, clamped to `Int64.min ... Int64.max`.
    @inlinable public func saturatingMultiply(_ other: Int64) -> Int64 {
        let (r, o) = multipliedReportingOverflow(by: other)
        return o ? ((self < 0) == (other < 0) ? .max : .min) : r
    }
}

/// Ranges that numbers entering greylag are checked against.
public enum NumericLimits {
    /// The longest duration any setting, API request or command accepts:
    /// ten years of 365.25 days.
    public static let maxDuration: Int64 = 315_576_000
}
