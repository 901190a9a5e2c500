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
        /// The id of the record's row, where the flush writes it (checked
        /// there against the triplet and the generation).
        var row: Int64
        var firstSeen: Int64
        var blockExpires: Int64
        var lastSeen: Int64
        var blockedCount: Int64
        var passedCount: Int64
        var recordExpires: Int64

        init(_ r: GreylistRecord, row: Int64) {
            self.row = row
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

    /// Which of the two generations a change was made in.
    private enum Side { case current, flushing }

    private enum Undo {
        case record(Side, Triplet, Record?)
        case client(Side, String, Client?)
        case cursor(Int)
    }

    private struct State: ~Copyable {
        /// Touched since the last tick of the flush timer.
        var records: [Triplet: Record] = [:]
        var clients: [String: Client] = [:]
        /// Touched before it, being written a chunk at a time (`takeChunk`).
        var flushingRecords: [Triplet: Record] = [:]
        var flushingClients: [String: Client] = [:]
        /// The keys of `flushingRecords` in the order chunks take them, and
        /// how far they got (keys no longer there are skipped).
        var flushOrder: [Triplet] = []
        var flushCursor = 0
        /// How to return to the state before the open transaction.
        var undo: [Undo] = []
        /// Touches the open transaction writes: they stay visible until it
        /// is committed, then go if nobody touched them again meanwhile.
        var written: [Undo] = []
        /// `takeAll` ran in the open transaction: everything is being written.
        var allTaken = false

        func record(_ t: Triplet) -> Record? { records[t] ?? flushingRecords[t] }

        mutating func set(_ side: Side, _ t: Triplet, _ r: Record?) {
            switch side {
            case .current: records[t] = r
            case .flushing: flushingRecords[t] = r
            }
        }

        mutating func set(_ side: Side, _ n: String, _ c: Client?) {
            switch side {
            case .current: clients[n] = c
            case .flushing: flushingClients[n] = c
            }
        }

        /// Forgets `t` in both generations, noting how to undo it.
        mutating func drop(_ t: Triplet) {
            if let old = records.removeValue(forKey: t) { undo.append(.record(.current, t, old)) }
            if let old = flushingRecords.removeValue(forKey: t) { undo.append(.record(.flushing, t, old)) }
        }
    }

    private let state = Mutex(State())

    /// True when more than `limit` touches are held and the open
    /// transaction is not already writing them all.
    func overLimit(_ limit: Int) -> Bool {
        state.withLock {
            !$0.allTaken && $0.records.count + $0.clients.count + $0.flushingRecords.count + $0.flushingClients.count > limit
        }
    }

    /// Touches held: records and client networks, both generations.
    var count: Int {
        state.withLock { $0.records.count + $0.clients.count + $0.flushingRecords.count + $0.flushingClients.count }
    }

    /// `record` with its touch laid over it; a touch of another generation
    /// of the record is dropped (writer only).
    func overlay(_ record: GreylistRecord) -> GreylistRecord {
        state.withLock { state in
            guard let t = state.record(record.triplet) else { return record }
            guard t.belongs(to: record) else {
                state.drop(record.triplet)
                return record
            }
            return t.applied(to: record)
        }
    }

    /// Keeps `record`'s lagging columns, stored in row `row` (writer only).
    /// An older touch of it still being flushed stays: the statements keep
    /// the larger values.
    func touch(_ record: GreylistRecord, row: Int64) {
        state.withLock { state in
            let old = state.records.updateValue(Record(record, row: row), forKey: record.triplet)
            state.undo.append(.record(.current, record.triplet, old))
        }
    }

    /// Forgets the touch of `triplet`: its record was written whole or removed (writer only).
    func remove(_ triplet: Triplet) {
        state.withLock { $0.drop(triplet) }
    }

    /// The touch of a client network, if any.
    func client(_ network: String) -> Client? {
        state.withLock { $0.clients[network] ?? $0.flushingClients[network] }
    }

    /// Moves a client network's last-seen time and expiry on (writer only).
    func touchClient(_ network: String, lastSeen: Int64, expires: Int64) {
        state.withLock { state in
            let old = state.clients[network]
            let base = old ?? state.flushingClients[network]
            state.clients[network] = Client(lastSeen: max(base?.lastSeen ?? lastSeen, lastSeen),
                                            recordExpires: max(base?.recordExpires ?? expires, expires))
            state.undo.append(.client(.current, network, old))
        }
    }

    /// The touch of a client network, to be written now in the open
    /// transaction (writer only); it goes once that is committed.
    func takeClient(_ network: String) -> Client? {
        state.withLock { state in
            var taken: Client? = nil
            if let old = state.flushingClients[network] {
                state.written.append(.client(.flushing, network, old))
                taken = old
            }
            if let old = state.clients[network] {
                state.written.append(.client(.current, network, old))
                taken = Client(lastSeen: max(old.lastSeen, taken?.lastSeen ?? 0),
                               recordExpires: max(old.recordExpires, taken?.recordExpires ?? 0))
            }
            return taken
        }
    }

    /// The flush timer's tick: what was touched since the last one becomes
    /// the generation to write, unless the last is still being written.
    /// Returns whether there is anything to write.
    func tick() -> Bool {
        // Under the lock, only the swap and a copy of the new generation
        // (a reference: it is copy-on-write). Its keys are sorted outside
        // it: sorted under it, the tens of thousands of keys of a busy
        // interval held every decision's touch, and the event loop that
        // runs the writer, for the length of the sort.
        let generation = state.withLock { state -> [Triplet: Record]? in
            guard state.flushingRecords.isEmpty && state.flushingClients.isEmpty else { return nil }
            swap(&state.records, &state.flushingRecords)
            swap(&state.clients, &state.flushingClients)
            state.flushOrder = []
            state.flushCursor = 0
            return state.flushingRecords
        }
        if let generation, !generation.isEmpty {
            // In row order, a chunk's updates share leaf pages: each page is
            // written to the WAL once per chunk, not once per touch on it.
            // Keys gone meanwhile are skipped when taken; a chunk taken
            // before this order is in place sorts what is left itself.
            let order = Self.rowOrder(generation)
            state.withLock { state in
                state.flushOrder = order
                state.flushCursor = 0
            }
        }
        return state.withLock { !$0.flushingRecords.isEmpty || !$0.flushingClients.isEmpty }
    }

    /// The triplets of `records` in the order of their rows in the table.
    static func rowOrder(_ records: [Triplet: Record]) -> [Triplet] {
        records.sorted { $0.value.row < $1.value.row }.map(\.key)
    }

    /// Up to `limit` touches of the generation being written, to be written
    /// now in the open transaction (writer only); they go once it is
    /// committed. `more` says whether any are left after them.
    func takeChunk(_ limit: Int) -> (records: [(Triplet, Record)], clients: [(String, Client)], more: Bool) {
        state.withLock { state in
            var records: [(Triplet, Record)] = []
            var clients: [(String, Client)] = []
            // Client networks are few: all of them with every chunk.
            for (k, v) in state.flushingClients {
                state.written.append(.client(.flushing, k, v))
                clients.append((k, v))
            }
            if state.flushCursor >= state.flushOrder.count && !state.flushingRecords.isEmpty {
                // Touches a failed transaction left behind the cursor.
                state.flushOrder = Self.rowOrder(state.flushingRecords)
                state.flushCursor = 0
            }
            state.undo.append(.cursor(state.flushCursor))
            while records.count < limit, state.flushCursor < state.flushOrder.count {
                let k = state.flushOrder[state.flushCursor]
                state.flushCursor += 1
                guard let v = state.flushingRecords[k] else { continue }
                state.written.append(.record(.flushing, k, v))
                records.append((k, v))
            }
            return (records, clients, state.flushCursor < state.flushOrder.count)
        }
    }

    /// Every touch of both generations, to be written now in the open
    /// transaction (writer only); they go once it is committed.
    func takeAll() -> (records: [(Triplet, Record)], clients: [(String, Client)]) {
        state.withLock { state in
            var records: [(Triplet, Record)] = []
            var clients: [(String, Client)] = []
            state.allTaken = true
            for (k, v) in state.flushingRecords { state.written.append(.record(.flushing, k, v)); records.append((k, v)) }
            for (k, v) in state.records { state.written.append(.record(.current, k, v)); records.append((k, v)) }
            for (k, v) in state.flushingClients { state.written.append(.client(.flushing, k, v)); clients.append((k, v)) }
            for (k, v) in state.clients { state.written.append(.client(.current, k, v)); clients.append((k, v)) }
            return (records, clients)
        }
    }

    /// What readers lay over what they read. Taken before the read: a touch
    /// leaves memory only once its row is committed, so a read that starts
    /// after this sees either the touch here or the row.
    func snapshot() -> Snapshot {
        state.withLock { Snapshot(records: $0.records, flushingRecords: $0.flushingRecords, clients: $0.clients,
                                  flushingClients: $0.flushingClients) }
    }

    struct Snapshot: Sendable {
        let records: [Triplet: Record]
        let flushingRecords: [Triplet: Record]
        let clients: [String: Client]
        let flushingClients: [String: Client]

        func applied(_ r: GreylistRecord) -> GreylistRecord {
            var out = r
            for t in [flushingRecords[r.triplet], records[r.triplet]] {
                if let t, t.belongs(to: r) { out = t.applied(to: out) }
            }
            return out
        }

        func applied(_ rs: [GreylistRecord]) -> [GreylistRecord] {
            records.isEmpty && flushingRecords.isEmpty ? rs : rs.map(applied)
        }

        func applied(_ cs: [ClientRecord]) -> [ClientRecord] {
            guard !clients.isEmpty || !flushingClients.isEmpty else { return cs }
            return cs.map { c in
                var out = c
                for t in [flushingClients[c.network], clients[c.network]] {
                    guard let t else { continue }
                    out.lastSeen = max(out.lastSeen, t.lastSeen)
                    out.recordExpires = max(out.recordExpires, t.recordExpires)
                }
                return out
            }
        }
    }

    /// The transaction is over: committed (its changes stay) or failed
    /// (they are undone, newest first).
    func end(committed: Bool) {
        state.withLock { state in
            if committed {
                for w in state.written {
                    switch w {
                    case .record(let side, let k, let v):
                        let now = side == .current ? state.records[k] : state.flushingRecords[k]
                        if now == v { state.set(side, k, nil as Record?) }
                    case .client(let side, let k, let v):
                        let now = side == .current ? state.clients[k] : state.flushingClients[k]
                        if now == v { state.set(side, k, nil as Client?) }
                    case .cursor: break
                    }
                }
                if state.flushingRecords.isEmpty {
                    state.flushOrder = []
                    state.flushCursor = 0
                }
            } else {
                for u in state.undo.reversed() {
                    switch u {
                    case .record(let side, let k, let v): state.set(side, k, v)
                    case .client(let side, let k, let v): state.set(side, k, v)
                    case .cursor(let c): state.flushCursor = c
                    }
                }
            }
            state.undo.removeAll(keepingCapacity: true)
            state.written.removeAll(keepingCapacity: true)
            state.allTaken = false
        }
    }
}
