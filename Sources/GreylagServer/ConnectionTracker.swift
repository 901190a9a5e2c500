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
