import Dispatch
import GRDB

/// Moves the write-ahead log into the database file from a connection of
/// its own, on a timer.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses its
/// threshold, so every decision waiting on that commit also waits for the
/// copy and its fsync: that was the slowest 1% of answers. The writer turns
/// automatic checkpoints off; this passive checkpoint runs beside it, never
/// blocking the writer or readers. A passive checkpoint cannot rewind the
/// log while the writer keeps appending, so once the log passes
/// `restartFrames` a RESTART checkpoint holds the writer back while it
/// finishes (tens of milliseconds on a store of some 100,000 records) and the
/// log starts over instead of growing without end. The threshold is high so
/// that this happens every few seconds under full load, not several times a
/// second: at 4,096 frames the restarts were the slowest 1% of answers.
final class WALCheckpointer: @unchecked Sendable {  // DispatchSource is thread-safe
    private let queue: DatabaseQueue
    private let timer: any DispatchSourceTimer
    /// Where the timer's checkpoints run, one at a time.
    private let timerQueue = DispatchQueue(label: "greylag.store.checkpoint", qos: .utility)

    init(path: String, synchronous: String, interval: DispatchTimeInterval, restartFrames: Int = 50_000) throws {
        var configuration = Configuration()
        configuration.label = "greylag.checkpointer"
        configuration.busyMode = .timeout(1)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
        }
        queue = try DatabaseQueue(path: path, configuration: configuration)
        timer = DispatchSource.makeTimerSource(queue: timerQueue)
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(20))
        timer.setEventHandler { [queue] in
            try? queue.writeWithoutTransaction { db in
                let (frames, _) = try db.checkpoint(.passive)
                if frames > restartFrames { _ = try db.checkpoint(.restart) }
            }
        }
        timer.resume()
    }

    /// Stops the timer and closes the connection. `cancel()` alone does not
    /// wait for a checkpoint already under way, which then ran on the closed
    /// connection (a crash inside SQLite at shutdown): cancelling on the
    /// timer's own serial queue waits for it, and no checkpoint starts after.
    func close() throws {
        timerQueue.sync { timer.cancel() }
        try queue.close()
    }
}
