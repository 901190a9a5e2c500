import CoreMetrics
import Logging
import NIOCore
import Synchronization

/// Keeps the open connections of the listeners, so shutdown can let each
/// finish the request it is serving before it closes.
final class ConnectionTracker: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    /// Tracks `channel` until it closes.
    func add(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        channels.withLock { $0[id] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            _ = channels.withLock { $0.removeValue(forKey: id) }
        }
    }

    var count: Int { channels.withLock { $0.count } }

    /// Asks every connection to close after its request in flight, waits up
    /// to `timeout` for them, then closes what is left.
    func drainAll(timeout: Duration) async {
        let open = channels.withLock { Array($0.values) }
        for channel in open {
            channel.pipeline.fireUserInboundEventTriggered(PolicyServerHandler.Drain())
        }
        let deadline = ContinuousClock.now + timeout
        while count > 0 && ContinuousClock.now < deadline && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = channels.withLock { Array($0.values) }
        for channel in left { channel.close(promise: nil) }
        for channel in left { try? await channel.closeFuture.get() }
    }
}

/// The cap on open connections of one kind (policy or milter). A
/// connection over the cap is accepted and closed at once, so the MTA sees
/// a closed connection (and applies its own default action) instead of
/// waiting in the backlog. The first refusal logs a warning naming the
/// setting; further ones are summed into one line every 10 seconds.
final class ConnectionLimit: Sendable {
    let kind: String
    let max: Int
    private let open = Atomic<Int>(0)
    private let throttle = LogThrottle(every: .seconds(10))
    private let logger: Logger
    private let refusedCounter: CoreMetrics.Counter

    /// The key that sets the cap, for the warning (nil: a fixed cap).
    let setting: String?

    /// `keyed`: the cap is `KIND.max_connections`; otherwise a fixed one.
    init(kind: String, max: Int, logger: Logger, metrics: GreylagMetrics, keyed: Bool = true) {
        self.kind = kind
        self.max = max
        self.setting = keyed ? "\(kind).max_connections" : nil
        self.logger = logger
        refusedCounter = CoreMetrics.Counter(label: "greylag_connections_refused_total", dimensions: [("listener", kind)],
                                             factory: metrics.factory)
    }

    var count: Int { open.load(ordering: .relaxed) }

    /// True if `channel` may stay open (and counts it until it closes);
    /// false if it is over the cap and must be closed.
    func admit(_ channel: any Channel) -> Bool {
        let now = open.add(1, ordering: .relaxed).newValue
        guard now > max else {
            channel.closeFuture.whenComplete { [self] _ in open.subtract(1, ordering: .relaxed) }
            return true
        }
        open.subtract(1, ordering: .relaxed)
        refusedCounter.increment()
        if let held = throttle.due() {
            let n = held + 1
            let peer = channel.remoteAddress.map(GreylagDaemon.describe) ?? "a client"
            let line = "\(kind) connection from \(peer) refused: \(max) connections are open, the limit"
                + (setting.map { " set by \($0)" } ?? "") + (n > 1 ? " (\(n) refused since the last message)" : "")
            logger.warning("\(line)")
        }
        return false
    }
}
