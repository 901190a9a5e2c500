import GreylagCore
import Synchronization

/// What a retry changes without changing a record's state, kept in memory
/// and written in bulk (`SQLiteStore`'s flush).
///
/// A retry that is still blocked adds one to the blocked count and moves
/// the time last seen; a retry of a passed triplet adds one to the passed
/// count, moves the time last seen and pushes the record's expiry on; a
/// known client network's refresh moves its last-seen time and expiry. None
/// of these changes what the next decision will be, so none is worth a
/// random page in the write-ahead log per decision: they are gathered here,
/// laid over what the store reads, and written every few seconds and at
/// shutdown. What changes a state (a first sighting, a block expiry, a
/// pass, a network's count of passed triplets) is still written in the
/// decision's own transaction, before its answer.
///
/// Only the store's writer changes the touches, inside its transactions;
/// every change of a transaction can be undone if that transaction fails.
/// Readers lay them over what they read under the same lock.
final class RetryTouches: Sendable {
    /// The lagging columns of one triplet's record, and the generation
    /// (first sighting and block expiry) they belong to: a touch of a record
    /// that has since been replaced or removed is dropped, never applied.
    struct Record: Sendable, Hashable {
        var firstSeen: Int64
        var blockExpires: Int64
        var lastSeen: Int64
        var blockedCount: Int64
        var passedCount: Int64
        var recordExpires: Int64

        init(_ r: GreylistRecord) {
            firstSeen = r.firstSeen
            blockExpires = r.blockExpires
            lastSeen = r.lastSeen
            blockedCount = r.blockedCount
            passedCount = r.passedCount
            recordExpires = r.recordExpires
        }

        func belongs(to r: GreylistRecord) -> Bool { r.firstSeen == firstSeen && r.blockExpires == blockExpires }

        /// `r` with these columns: later times and expiries win, the counts
        /// are the touch's (it was made from a record that had `r`'s).
        func applied(to r: GreylistRecord) -> GreylistRecord {
            var out = r
            out.lastSeen = max(r.lastSeen, lastSeen)
            out.blockedCount = max(r.blockedCount, blockedCount)
            out.passedCount = max(r.passedCount, passedCount)
            out.recordExpires = max(r.recordExpires, recordExpires)
            return out
        }
    }

    /// A client network's lagging columns.
    struct Client: Sendable, Hashable {
        var lastSeen: Int64
        var recordExpires: Int64
    }

    private enum Undo {
        case record(Triplet, Record?)
        case client(String, Client?)
    }

    private struct State: ~Copyable {
        var records: [Triplet: Record] = [:]
        var clients: [String: Client] = [:]
        /// How to return to the state before the open transaction.
        var undo: [Undo] = []
    }

    private let state = Mutex(State())

    /// Touches held: records and client networks.
    var count: Int { state.withLock { $0.records.count + $0.clients.count } }

    /// `record` with its touch laid over it; a touch of another generation
    /// is dropped (writer only).
    func overlay(_ record: GreylistRecord) -> GreylistRecord {
        state.withLock { state in
            guard let t = state.records[record.triplet] else { return record }
            guard t.belongs(to: record) else {
                state.undo.append(.record(record.triplet, t))
                state.records[record.triplet] = nil
                return record
            }
            return t.applied(to: record)
        }
    }

    /// `record` with its touch laid over it, for readers: changes nothing.
    func read(_ record: GreylistRecord) -> GreylistRecord {
        state.withLock { state in
            guard let t = state.records[record.triplet], t.belongs(to: record) else { return record }
            return t.applied(to: record)
        }
    }

    /// `records` with their touches laid over them, for readers.
    func read(_ records: [GreylistRecord]) -> [GreylistRecord] {
        state.withLock { state in
            guard !state.records.isEmpty else { return records }
            return records.map { r in
                guard let t = state.records[r.triplet], t.belongs(to: r) else { return r }
                return t.applied(to: r)
            }
        }
    }

    /// `clients` with their touches laid over them, for readers.
    func read(_ clients: [ClientRecord]) -> [ClientRecord] {
        state.withLock { state in
            guard !state.clients.isEmpty else { return clients }
            return clients.map { c in
                guard let t = state.clients[c.network] else { return c }
                var out = c
                out.lastSeen = max(c.lastSeen, t.lastSeen)
                out.recordExpires = max(c.recordExpires, t.recordExpires)
                return out
            }
        }
    }

    /// Keeps `record`'s lagging columns (writer only).
    func touch(_ record: GreylistRecord) {
        state.withLock { state in
            let old = state.records.updateValue(Record(record), forKey: record.triplet)
            state.undo.append(.record(record.triplet, old))
        }
    }

    /// Forgets the touch of `triplet`: its record was written whole or removed (writer only).
    func remove(_ triplet: Triplet) {
        state.withLock { state in
            guard let old = state.records.removeValue(forKey: triplet) else { return }
            state.undo.append(.record(triplet, old))
        }
    }

    /// The touch of a client network, if any.
    func client(_ network: String) -> Client? {
        state.withLock { $0.clients[network] }
    }

    /// Moves a client network's last-seen time and expiry on (writer only).
    func touchClient(_ network: String, lastSeen: Int64, expires: Int64) {
        state.withLock { state in
            let old = state.clients[network]
            state.clients[network] = Client(lastSeen: max(old?.lastSeen ?? lastSeen, lastSeen),
                                            recordExpires: max(old?.recordExpires ?? expires, expires))
            state.undo.append(.client(network, old))
        }
    }

    /// Takes the touch of a client network, to be written now (writer only).
    func takeClient(_ network: String) -> Client? {
        state.withLock { state in
            guard let old = state.clients.removeValue(forKey: network) else { return nil }
            state.undo.append(.client(network, old))
            return old
        }
    }

    /// Takes every touch, to be written now (writer only); the open
    /// transaction's undo gives them back if it fails.
    func takeAll() -> (records: [Triplet: Record], clients: [String: Client]) {
        state.withLock { state in
            let taken = (state.records, state.clients)
            for (k, v) in state.records { state.undo.append(.record(k, v)) }
            for (k, v) in state.clients { state.undo.append(.client(k, v)) }
            state.records = [:]
            state.clients = [:]
            return taken
        }
    }

    /// The transaction is over: committed (its changes stay) or failed
    /// (they are undone, newest first).
    func end(committed: Bool) {
        state.withLock { state in
            if !committed {
                for u in state.undo.reversed() {
                    switch u {
                    case .record(let k, let v): state.records[k] = v
                    case .client(let k, let v): state.clients[k] = v
                    }
                }
            }
            state.undo.removeAll(keepingCapacity: true)
        }
    }
}
