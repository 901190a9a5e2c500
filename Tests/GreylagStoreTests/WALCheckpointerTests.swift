import Dispatch
import Foundation
@testable import GreylagStore
import GRDB
import Testing

/// The checkpointer is closed when the store closes (at every shutdown):
/// a checkpoint its timer started just before must finish first, and none
/// may start after, or it runs on a closed connection (a crash inside
/// SQLite, seen once in a daemon stopping under SIGTERM).
@Suite struct WALCheckpointerTests {
    @Test func closingWhileCheckpointsRunNeverTouchesAClosedConnection() throws {
        let dir = TemporaryDirectory()
        let path = dir.path + "/wal.db"
        let writer = try DatabaseQueue(path: path)
        try writer.write { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "CREATE TABLE t (x INTEGER)")
        }
        for round in 0..<300 {
            try writer.write { db in try db.execute(sql: "INSERT INTO t VALUES (?)", arguments: [round]) }
            // A timer that fires all the time: a checkpoint is under way, or
            // about to start, whenever close() comes.
            let checkpointer = try WALCheckpointer(path: path, synchronous: "normal", interval: .microseconds(50))
            usleep(UInt32(round % 7) * 100)
            try checkpointer.close()
        }
        #expect(try writer.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM t") } == 300)
    }
}
