#if MariaDB
import Foundation
import NIOConcurrencyHelpers
import NIOPosix

/// A query waited longer than the query timeout (queueing included).
public struct MariaDBTimeoutError: Error, CustomStringConvertible {
    public var seconds: Double
    public var description: String { "MySQL/MariaDB did not answer within \(seconds) s" }
}

/// Blocking connections on threads of their own: one thread per
/// connection at most, so no event loop or task-pool thread ever waits for
/// the database. A connection that fails with a connection error is
/// closed, and the next job opens a new one: the pool reconnects by itself.
final class MariaDBPool: Sendable {
    private let settings: MariaDBSettings
    private let threads: NIOThreadPool
    private let idle = NIOLockedValueBox<[MariaDBConnection]>([])

    init(settings: MariaDBSettings) {
        self.settings = settings
        threads = NIOThreadPool(numberOfThreads: settings.maxConnections)
        threads.start()
    }

    /// Runs `body` with a connection on a pool thread. The answer comes
    /// within the query timeout: a job still queued when its time is up is
    /// dropped without touching the database, and a caller whose job hangs
    /// on a dead server gets `MariaDBTimeoutError` while the thread waits for
    /// its socket timeout.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (MariaDBConnection) throws -> T) async throws -> T {
        let seconds = settings.queryTimeout
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1_000_000_000)
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask {
                try await self.threads.runIfActive {
                    guard DispatchTime.now().uptimeNanoseconds < deadline else {
                        throw MariaDBTimeoutError(seconds: seconds)
                    }
                    return try self.run(body)
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                throw MariaDBTimeoutError(seconds: seconds)
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private func run<T>(_ body: (MariaDBConnection) throws -> T) throws -> T {
        let connection = try idle.withLockedValue { $0.popLast() } ?? MariaDBConnection(settings)
        do {
            let result = try body(connection)
            idle.withLockedValue { $0.append(connection) }
            return result
        } catch let error as MariaDBError where !error.connectionLost {
            idle.withLockedValue { $0.append(connection) }
            throw error
        }
        // Any other error leaves the connection to deinit (closed).
    }

    func close() async throws {
        try await threads.shutdownGracefully()
        idle.withLockedValue { $0.removeAll() }
    }
}

/// `MariaDBConnection`s move between pool threads, one at a time.
extension MariaDBConnection: @unchecked Sendable {}
#endif
