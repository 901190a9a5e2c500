import Synchronization

/// Lets a repeated log line out at most once per interval and counts the
/// ones held back, so a peer that provokes the line with every request
/// cannot flood the log.
final class LogThrottle: Sendable {
    private let interval: Duration
    private let state = Mutex<(last: ContinuousClock.Instant?, held: Int)>((nil, 0))

    init(every interval: Duration) { self.interval = interval }

    /// nil: hold this occurrence back; otherwise log it, and this many
    /// were held back since the last line.
    func due() -> Int? {
        state.withLock { s in
            let now = ContinuousClock.now
            if let last = s.last, now - last < interval {
                s.held += 1
                return nil
            }
            defer { s = (now, 0) }
            return s.held
        }
    }
}
